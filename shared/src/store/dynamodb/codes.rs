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
        issue: Issue<'_>,
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
        // The code, what it draws on and the refresh family change together: all or nothing
        // (docs/SECURITY.md R5). The code comes first: its reason decides a replay.
        let session = issue.refresh.and_then(|(rt, _)| rt.session.as_deref());
        let mut items = vec![TransactWriteItem::builder().update(update).build()];
        items.extend(self.draw_on_grant(issue.sub, issue.client_id, session, now)?);
        let anchors = 1..items.len();
        if let Some((rt, family)) = issue.refresh {
            items.push(self.put_new_item(Item::from(rt))?);
            items.push(self.put_new_item(Item::from(family))?);
        }
        match self.transact(items, "Failed to consume a code in DynamoDB").await? {
            Transacted::Done => Ok(Consume::Fresh),
            Transacted::ConditionFailed(reasons) if reason_is(reasons.first(), CONDITION_FAILED) => {
                classify_consumed(reasons.first().and_then(|r| r.item.clone()), request_id)
            }
            Transacted::ConditionFailed(reasons) if withdrawn(&reasons, anchors.clone()) => Ok(Consume::Withdrawn),
            Transacted::ConditionFailed(_) => {
                Err(StoreError::Backend(anyhow::anyhow!("the refresh token of a code exchange already exists")))
            }
            Transacted::Conflicted => self.classify_after_conflict(code_hash, request_id).await,
        }
    }
}
