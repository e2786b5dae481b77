//! Upstream identities (`IdentityStore`): the lookup item and the account copy are written
//! and deleted together in one transaction, with the user pointer's link count, so "never
//! the last way to sign in" is a condition of the write itself.
use super::*;
use crate::domain::IdentityLink;
use crate::store::{IdentityStore, Unlink};
use aws_sdk_dynamodb::types::Delete;
use item::{IDENTITY_PREFIX, LINKS};

impl DynamoStore {
    /// The pointer's link count changed by `delta`; with `at_least`, only while it is above
    /// that (the count before the change).
    fn count_links(&self, sub: &str, delta: i64, at_least: Option<i64>) -> Result<TransactWriteItem, StoreError> {
        let mut u = Update::builder()
            .table_name(&self.table)
            .set_key(Some(item::sub_key(sub)))
            .update_expression(format!("ADD {LINKS} :d"))
            .expression_attribute_values(":d", n(delta));
        u = match at_least {
            Some(min) => u.condition_expression(format!("{LINKS} > :min")).expression_attribute_values(":min", n(min)),
            None => u.condition_expression("attribute_exists(pk)"),
        };
        let u = u.build().map_err(backend("Failed to build a link count update"))?;
        Ok(TransactWriteItem::builder().update(u).build())
    }

    pub(super) fn delete_item(
        &self,
        key: Item,
        condition: &str,
        sub: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut d = Delete::builder().table_name(&self.table).set_key(Some(key)).condition_expression(condition);
        if let Some(sub) = sub {
            d = d.expression_attribute_names("#sub", "sub").expression_attribute_values(":sub", s(sub));
        }
        let d = d.build().map_err(backend("Failed to build a transaction Delete"))?;
        Ok(TransactWriteItem::builder().delete(d).build())
    }
}

/// Whether the transaction item at `i` failed its condition.
fn failed_at(reasons: &[CancellationReason], i: usize) -> bool {
    reason_is(reasons.get(i), CONDITION_FAILED)
}

#[async_trait]
impl IdentityStore for DynamoStore {
    async fn identity(&self, key: &str) -> Result<Option<IdentityLink>, StoreError> {
        let found = self.get(item::identity_key(key), "Failed to read an identity link from DynamoDB").await?;
        found.as_ref().map(item::link_from).transpose()
    }

    async fn identities_of(&self, sub: &str) -> Result<Vec<IdentityLink>, StoreError> {
        let items = self
            .query_prefix(item::account_pk(sub), IDENTITY_PREFIX, "Failed to list identity links in DynamoDB")
            .await?;
        let mut links = items.iter().map(item::link_from).collect::<Result<Vec<_>, _>>()?;
        links.sort_by(|a, b| a.linked_at.cmp(&b.linked_at).then_with(|| a.key().cmp(&b.key())));
        Ok(links)
    }

    async fn create_federated_user(&self, user: &User, link: &IdentityLink) -> Result<(), StoreError> {
        let passwordless = User { password_hash: String::new(), ..user.clone() };
        let mut pointer = item::sub_key(&user.sub);
        pointer.insert("username_key".into(), s(user.username.key()));
        pointer.insert(LINKS.into(), n(1));
        let (lookup, copy) = item::link_items(link);
        let items = vec![
            self.put_new_item(Item::from(&passwordless))?,
            self.put_new_item(pointer)?,
            self.put_new_item(lookup)?,
            self.put_new_item(copy)?,
        ];
        match self.transact(items, "Failed to create a federated user in DynamoDB").await? {
            Transacted::Done => Ok(()),
            Transacted::ConditionFailed(_) => Err(StoreError::AlreadyExists),
            // Another first sign-in of the same identity was in flight: the caller reads the
            // link again and finds the winner's user, as after a failed condition.
            Transacted::Conflicted => Err(StoreError::AlreadyExists),
        }
    }

    async fn link_identity(&self, link: &IdentityLink) -> Result<(), StoreError> {
        let (lookup, copy) = item::link_items(link);
        let items = vec![self.put_new_item(lookup)?, self.put_new_item(copy)?, self.count_links(&link.sub, 1, None)?];
        match self.transact(items, "Failed to link an identity in DynamoDB").await? {
            Transacted::Done => Ok(()),
            Transacted::ConditionFailed(r) if failed_at(&r, 2) && !failed_at(&r, 0) => Err(StoreError::NotFound),
            Transacted::ConditionFailed(_) | Transacted::Conflicted => Err(StoreError::AlreadyExists),
        }
    }

    async fn unlink_identity(&self, sub: &str, key: &str, passwordless: bool) -> Result<Unlink, StoreError> {
        let items = vec![
            self.delete_item(item::identity_key(key), "#sub = :sub", Some(sub))?,
            self.delete_item(item::account_identity_key(sub, key), "attribute_exists(pk)", None)?,
            self.count_links(sub, -1, passwordless.then_some(1))?,
        ];
        match self.transact(items, "Failed to unlink an identity in DynamoDB").await? {
            Transacted::Done => Ok(Unlink::Removed),
            Transacted::ConditionFailed(r) if failed_at(&r, 0) || failed_at(&r, 1) => Ok(Unlink::NotFound),
            Transacted::ConditionFailed(_) => Ok(Unlink::LastMethod),
            Transacted::Conflicted => {
                Err(StoreError::Backend(anyhow::anyhow!("unlinking an identity kept conflicting in DynamoDB")))
            }
        }
    }
}
