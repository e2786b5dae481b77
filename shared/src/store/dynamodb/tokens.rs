//! Refresh-token families and revocations (`TokenStore`): rotation as one transaction,
//! reuse detection from the returned old item.
use super::*;

#[async_trait]
impl TokenStore for DynamoStore {
    async fn refresh(&self, token_hash: &str) -> Result<Option<RefreshRecord>, StoreError> {
        self.get(item::refresh_key(token_hash), "Failed to read a refresh token from DynamoDB")
            .await?
            .map(RefreshRecord::try_from)
            .transpose()
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new: &RefreshRecord,
        now: OffsetDateTime,
    ) -> Result<Rotate, StoreError> {
        let at = now;
        let now = now.unix_timestamp();
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(item::refresh_key(old_hash)))
            .update_expression("SET rotated_at = :now, rotated_to = :to")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(rotated_at)")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":to", s(&new.token_hash))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(backend("Failed to build a refresh update"))?;
        // The old token first (its reason decides a reuse), the new one, then what the
        // family draws on.
        let mut items = vec![TransactWriteItem::builder().update(update).build(), self.put_new_item(Item::from(new))?];
        items.extend(self.draw_on_grant(&new.sub, &new.client_id, new.session.as_deref(), at)?);
        let anchors = 2..items.len();
        let old = match self.transact(items, "Failed to rotate a refresh token in DynamoDB").await? {
            Transacted::Done => return Ok(Rotate::Rotated),
            Transacted::ConditionFailed(reasons) if reason_is(reasons.first(), CONDITION_FAILED) => {
                reasons.first().and_then(|r| r.item.clone()).map(RefreshRecord::try_from).transpose()?
            }
            Transacted::ConditionFailed(reasons) if withdrawn(&reasons, anchors) => return Ok(Rotate::Withdrawn),
            Transacted::ConditionFailed(_) => {
                return Err(StoreError::Backend(anyhow::anyhow!("the successor refresh token already exists")));
            }
            // Another rotation of the same token was in flight: what it wrote decides.
            Transacted::Conflicted => match self.refresh(old_hash).await? {
                Some(old) if old.rotated_at.is_some() => Some(old),
                Some(_) => {
                    return Err(StoreError::Backend(anyhow::anyhow!("rotating a refresh token kept conflicting")));
                }
                None => None,
            },
        };
        Ok(old.map_or(Rotate::Missing, |old| Rotate::of_rotated(old, &new.token_hash)))
    }

    async fn revoke_family(&self, family_id: &str, until: OffsetDateTime) -> Result<(), StoreError> {
        self.revoke(format!("fam#{family_id}"), until).await
    }

    async fn revoke_jti(&self, jti: &str, until: OffsetDateTime) -> Result<(), StoreError> {
        self.revoke(format!("jti#{jti}"), until).await
    }

    async fn is_revoked(&self, jti: &str, family: Option<&str>, now: OffsetDateTime) -> Result<bool, StoreError> {
        let mut keys = Vec::new();
        if !jti.is_empty() {
            keys.push(item::revocation_key(&format!("jti#{jti}")));
        }
        if let Some(f) = family {
            keys.push(item::revocation_key(&format!("fam#{f}")));
        }
        if keys.is_empty() {
            return Ok(false);
        }
        // One consistent BatchGetItem for both keys; it fails rather than answer partly, so
        // "not revoked" is never assumed.
        let t = now.unix_timestamp();
        for item in self.batch_get(keys, "Failed to read revocations from DynamoDB").await? {
            if get_n(&item, EXPIRES_AT)? > t {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
