//! Authorization codes (`CodeStore`): put once, consumed once by a conditional write whose
//! returned old item tells a retry of this request from a replay.
use super::*;

/// Classify a failed single-use write from the item as it was (`ALL_OLD`).
impl DynamoStore {
    /// After conflicts only, read the code (consistently) and decide as a failed condition
    /// would have: consumed by this request (a retry), by another (a replay), or not at all
    /// (then nothing is known yet: a 503 the client may retry).
    async fn classify_after_conflict(&self, code_hash: &str, request_id: &str) -> Result<Consume, StoreError> {
        let old = self.get(item::code_key(code_hash), "Failed to read a code from DynamoDB").await?;
        let Some(code) = old.map(AuthCode::try_from).transpose()? else { return Ok(Consume::Missing) };
        Consume::of_consumed(code, request_id)
            .ok_or_else(|| StoreError::Backend(anyhow::anyhow!("consuming a code kept conflicting in DynamoDB")))
    }
}

fn classify_consumed(old: Option<Item>, request_id: &str) -> Result<Consume, StoreError> {
    let Some(old) = old else { return Ok(Consume::Missing) };
    Ok(Consume::of_consumed(AuthCode::try_from(old)?, request_id).unwrap_or(Consume::Missing))
}

#[async_trait]
impl CodeStore for DynamoStore {
    async fn put_code(&self, code: &AuthCode) -> Result<(), StoreError> {
        self.put_new(Item::from(code), "Failed to store a code in DynamoDB").await
    }

    async fn code(&self, code_hash: &str) -> Result<Option<AuthCode>, StoreError> {
        self.get(item::code_key(code_hash), "Failed to read a code from DynamoDB")
            .await?
            .map(AuthCode::try_from)
            .transpose()
    }

    async fn consume_code(
        &self,
        code_hash: &str,
        now: OffsetDateTime,
        retain_until: OffsetDateTime,
        request_id: &str,
        refresh: Option<&RefreshRecord>,
    ) -> Result<Consume, StoreError> {
        // The TTL attribute moves out to `retain_until`: DynamoDB may delete an expired item
        // at any time, and a replay that finds nothing cannot revoke what the code issued.
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(item::code_key(code_hash)))
            .update_expression(format!("SET consumed_at = :now, consumed_by = :rid, {} = :keep", item::EXPIRES_AT))
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(consumed_at)")
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .expression_attribute_values(":rid", s(request_id))
            .expression_attribute_values(":keep", n(retain_until.unix_timestamp()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(backend("Failed to build a code update"))?;
        let Some(rt) = refresh else {
            // One conditional update; on failure the old item says why, without a second read.
            for attempt in 0..CONFLICT_ATTEMPTS {
                let r = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .set_key(Some(update.key.clone()))
                    .update_expression(update.update_expression.clone())
                    .set_condition_expression(update.condition_expression.clone())
                    .set_expression_attribute_values(update.expression_attribute_values.clone())
                    .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                    .send()
                    .await;
                match r {
                    Ok(_) => return Ok(Consume::Fresh),
                    Err(e) if is_condition_failure(&e) => {
                        let old = match e.as_service_error() {
                            Some(
                                aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(
                                    c,
                                ),
                            ) => c.item.clone(),
                            _ => None,
                        };
                        return classify_consumed(old, request_id);
                    }
                    // The code is in another request's transaction (its redemption with a
                    // refresh token): retry, then decide on what the item says.
                    Err(e) if is_single_write_conflict(&e) => {
                        if attempt + 1 < CONFLICT_ATTEMPTS {
                            conflict_backoff(attempt).await;
                        }
                    }
                    Err(e) => return Err(backend("Failed to consume a code in DynamoDB")(e)),
                }
            }
            return self.classify_after_conflict(code_hash, request_id).await;
        };
        // The code and the refresh token change together: both or neither (docs/SECURITY.md R5).
        let items = vec![TransactWriteItem::builder().update(update).build(), self.put_new_item(Item::from(rt))?];
        match self.transact(items, "Failed to consume a code in DynamoDB").await? {
            Transacted::Done => Ok(Consume::Fresh),
            Transacted::ConditionFailed(reasons) if reason_is(reasons.first(), CONDITION_FAILED) => {
                classify_consumed(reasons.first().and_then(|r| r.item.clone()), request_id)
            }
            Transacted::ConditionFailed(_) => {
                Err(StoreError::Backend(anyhow::anyhow!("the refresh token of a code exchange already exists")))
            }
            Transacted::Conflicted => self.classify_after_conflict(code_hash, request_id).await,
        }
    }
}
