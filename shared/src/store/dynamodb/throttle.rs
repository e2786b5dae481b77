//! Counters for throttles and single-use markers (`ThrottleStore`): atomic increments
//! whose returned value is the decision.
use super::*;

#[async_trait]
impl ThrottleStore for DynamoStore {
    async fn hit(&self, key: &str, window_secs: i64, now: OffsetDateTime) -> Result<u32, StoreError> {
        let t = now.unix_timestamp();
        for _ in 0..4 {
            // A live window: ADD one atomically and read the new value back.
            let r = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(item::counter_key(key)))
                .update_expression("ADD #count :one SET expires_at = :exp")
                .condition_expression("expires_at > :now")
                .expression_attribute_names("#count", "count")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":exp", n(t + window_secs))
                .expression_attribute_values(":now", n(t))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
                .send()
                .await;
            match r {
                Ok(out) => {
                    let count = out.attributes.as_ref().map(|a| get_n(a, "count")).transpose()?.unwrap_or(1);
                    return Ok(u32::try_from(count).unwrap_or(u32::MAX));
                }
                Err(e) if is_condition_failure(&e) => {}
                Err(e) => return Err(backend("Failed to count in DynamoDB")(e)),
            }
            // Missing or expired: start a new window, unless someone else just did.
            let mut fresh = item::counter_key(key);
            fresh.insert("count".into(), n(1));
            fresh.insert(EXPIRES_AT.into(), n(t + window_secs));
            let r = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(fresh))
                .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
                .expression_attribute_values(":now", n(t))
                .send()
                .await;
            match r {
                Ok(_) => return Ok(1),
                Err(e) if is_condition_failure(&e) => {}
                Err(e) => return Err(backend("Failed to start a counter in DynamoDB")(e)),
            }
        }
        Err(StoreError::Backend(anyhow::anyhow!("counter {key} kept changing under contention")))
    }

    async fn count(&self, key: &str, now: OffsetDateTime) -> Result<u32, StoreError> {
        let Some(item) = self.get(item::counter_key(key), "Failed to read a counter from DynamoDB").await? else {
            return Ok(0);
        };
        if get_n(&item, EXPIRES_AT)? <= now.unix_timestamp() {
            return Ok(0);
        }
        Ok(u32::try_from(get_n(&item, "count")?).unwrap_or(u32::MAX))
    }

    async fn reset(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(item::counter_key(key)))
            .send()
            .await
            .map_err(backend("Failed to delete a counter in DynamoDB"))?;
        Ok(())
    }

    async fn forgive(&self, key: &str, now: OffsetDateTime) -> Result<(), StoreError> {
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item::counter_key(key)))
            .update_expression("ADD #count :minus")
            .condition_expression("expires_at > :now AND #count > :zero")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            // Missing, expired or already zero: nothing to take back.
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(backend("Failed to update a counter in DynamoDB")(e)),
        }
    }
}
