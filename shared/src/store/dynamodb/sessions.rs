//! Browser sessions and consent grants (`SessionStore`, `GrantStore`), in each user's
//! account partition: a session and a grant in one `BatchGetItem`, a user's sessions or
//! grants in one `Query`, a use of a session and a consent as conditional or atomic updates.
use super::*;
use crate::domain::{ConsentGrant, RefreshFamily, ScopeSet, Session};
use aws_sdk_dynamodb::types::AttributeValue;
use item::{
    FAMILY_PREFIX, GRANT_PREFIX, IDLE_EXPIRES_AT, RESOURCES, SCOPES, SESSION_PREFIX, account_pk, family_key, grant_key,
    session_key,
};

#[async_trait]
impl SessionStore for DynamoStore {
    async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        self.put_new(Item::from(session), "Failed to store a session in DynamoDB").await
    }

    async fn session_with_grant(
        &self,
        sub: &str,
        id_hash: &str,
        grant_for: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Option<(Session, Option<ConsentGrant>)>, StoreError> {
        let skey = session_key(sub, id_hash);
        let items = match grant_for {
            None => self.get(skey, "Failed to read a session from DynamoDB").await?.into_iter().collect(),
            Some(client_id) => {
                self.batch_get(
                    vec![skey, grant_key(sub, client_id)],
                    "Failed to read a session and grant from DynamoDB",
                )
                .await?
            }
        };
        let mut session = None;
        let mut grant = None;
        for it in items {
            let is_session = matches!(it.get(item::SK), Some(AttributeValue::S(sk)) if sk.starts_with(SESSION_PREFIX));
            if is_session {
                session = Some(Session::try_from(it)?);
            } else {
                grant = Some(ConsentGrant::try_from(it)?);
            }
        }
        // TTL deletion lags: the ends are checked here.
        Ok(session.filter(|x| x.is_live(now.unix_timestamp())).map(|x| (x, grant)))
    }

    async fn touch_session(
        &self,
        sub: &str,
        id_hash: &str,
        idle_secs: i64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let t = now.unix_timestamp();
        let r = retry_conflicts(|| {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(session_key(sub, id_hash)))
                .update_expression(format!("SET last_seen = :now, {IDLE_EXPIRES_AT} = :idle"))
                .condition_expression(format!(
                    "attribute_exists(pk) AND {IDLE_EXPIRES_AT} > :now AND {EXPIRES_AT} > :now"
                ))
                .expression_attribute_values(":now", n(t))
                .expression_attribute_values(":idle", n(t.saturating_add(idle_secs)))
                .send()
        })
        .await;
        match r {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(backend("Failed to update a session in DynamoDB")(e)),
        }
    }

    async fn end_session(&self, sub: &str, id_hash: &str) -> Result<bool, StoreError> {
        self.delete(session_key(sub, id_hash), "Failed to delete a session in DynamoDB").await
    }

    async fn sessions_of(&self, sub: &str, now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
        let items = self.query_prefix(account_pk(sub), SESSION_PREFIX, "Failed to list sessions in DynamoDB").await?;
        let t = now.unix_timestamp();
        let mut sessions = Vec::new();
        for it in items {
            let x = Session::try_from(it)?;
            if x.is_live(t) {
                sessions.push(x);
            }
        }
        sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id_hash.cmp(&b.id_hash)));
        Ok(sessions)
    }

    async fn end_sessions_of(&self, sub: &str, keep: Option<&str>) -> Result<usize, StoreError> {
        let items = self.query_prefix(account_pk(sub), SESSION_PREFIX, "Failed to list sessions in DynamoDB").await?;
        let mut ended = 0;
        for it in items {
            let id_hash = get_s(&it, "id_hash")?;
            if Some(id_hash.as_str()) != keep
                && self.delete(session_key(sub, &id_hash), "Failed to delete a session in DynamoDB").await?
            {
                ended += 1;
            }
        }
        Ok(ended)
    }
}

#[async_trait]
impl GrantStore for DynamoStore {
    async fn add_grant(
        &self,
        sub: &str,
        client_id: &str,
        scope: &ScopeSet,
        resources: &[crate::domain::ResourceId],
        now: OffsetDateTime,
    ) -> Result<ConsentGrant, StoreError> {
        let set = "SET #sub = :sub, granted_at = if_not_exists(granted_at, :now), updated_at = :now";
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(grant_key(sub, client_id)))
            .expression_attribute_names("#sub", "sub")
            .expression_attribute_values(":sub", s(sub))
            .expression_attribute_values(":now", n(now.unix_timestamp()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        // `ADD` of a string set is the atomic union (DynamoDB has no empty set to add).
        let mut adds = Vec::new();
        if let Some(scopes) = item::scope_set(scope) {
            adds.push(format!("{SCOPES} :scopes"));
            update = update.expression_attribute_values(":scopes", scopes);
        }
        if let Some(ids) = item::resource_set(resources) {
            adds.push(format!("{RESOURCES} :resources"));
            update = update.expression_attribute_values(":resources", ids);
        }
        update = if adds.is_empty() {
            update.update_expression(set)
        } else {
            update.update_expression(format!("{set} ADD {}", adds.join(", ")))
        };
        let out =
            retry_conflicts(|| update.clone().send()).await.map_err(backend("Failed to write a grant to DynamoDB"))?;
        ConsentGrant::try_from(out.attributes.unwrap_or_default())
    }

    async fn grants_of(&self, sub: &str) -> Result<Vec<ConsentGrant>, StoreError> {
        let items = self.query_prefix(account_pk(sub), GRANT_PREFIX, "Failed to list grants in DynamoDB").await?;
        items.into_iter().map(ConsentGrant::try_from).collect()
    }

    async fn delete_grant(&self, sub: &str, client_id: &str) -> Result<bool, StoreError> {
        self.delete(grant_key(sub, client_id), "Failed to delete a grant in DynamoDB").await
    }

    async fn families_of(&self, sub: &str) -> Result<Vec<RefreshFamily>, StoreError> {
        let items = self.query_prefix(account_pk(sub), FAMILY_PREFIX, "Failed to list families in DynamoDB").await?;
        items.into_iter().map(RefreshFamily::try_from).collect()
    }

    async fn forget_family(&self, sub: &str, client_id: &str, family_id: &str) -> Result<(), StoreError> {
        self.delete(family_key(sub, client_id, family_id), "Failed to delete a family entry in DynamoDB").await?;
        Ok(())
    }
}
