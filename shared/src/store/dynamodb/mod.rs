//! The production store: one DynamoDB table (`pk`, `sk`, TTL on `expires_at`, on-demand).
//! Same semantics as the SQLite store, proven by the same conformance suite: conditional
//! writes for uniqueness and single use, `TransactWriteItems` where two items change
//! together, `ReturnValuesOnConditionCheckFailure` to classify failures without a second
//! read, consistent reads everywhere a stale read would be a hole, and no scans.
//! Each trait call is one DynamoDB request (a transaction counts as one), except
//! `user_by_sub`/`update_password_hash` (two) and a counter restarting its window (two).
pub mod item;

use super::{ClientStore, CodeStore, Consume, DataStore, Rotate, StoreError, ThrottleStore, TokenStore, UserStore};
use crate::domain::{AuthCode, Client, DataItem, RefreshRecord, User};
use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client as Ddb;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CancellationReason, KeySchemaElement, KeyType, KeysAndAttributes, Put,
    ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, Update,
};
use item::{EXPIRES_AT, Item, get_n, get_s, n, s};
use time::OffsetDateTime;

/// DynamoDB implementation of every store trait.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Ddb,
    table: String,
}

fn backend<E: std::error::Error + Send + Sync + 'static>(what: &'static str) -> impl FnOnce(E) -> StoreError {
    move |e| StoreError::Backend(anyhow::Error::new(e).context(what))
}

fn is_condition_failure<E, R>(e: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code()) == Some("ConditionalCheckFailedException")
}

/// The cancellation reasons of a failed transaction, if it was cancelled.
fn cancellation(
    e: &SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        aws_sdk_dynamodb::config::http::HttpResponse,
    >,
) -> Option<Vec<CancellationReason>> {
    match e.as_service_error() {
        Some(
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c),
        ) => Some(c.cancellation_reasons().to_vec()),
        _ => None,
    }
}

fn reason_is(r: Option<&CancellationReason>, code: &str) -> bool {
    r.and_then(|r| r.code()) == Some(code)
}

const CONDITION_FAILED: &str = "ConditionalCheckFailed";
const TRANSACTION_CONFLICT: &str = "TransactionConflict";

/// How often a write is sent while DynamoDB cancels it for a conflict with another
/// transaction in flight on the same item. The SDK does not retry a cancelled transaction,
/// and a conflict says nothing about the item yet: retry, then re-read (consistently).
const CONFLICT_ATTEMPTS: u32 = 4;

/// What a transaction came to.
enum Transacted {
    /// Applied.
    Done,
    /// Cancelled because a condition failed (the reasons, in item order, with `ALL_OLD`).
    ConditionFailed(Vec<CancellationReason>),
    /// Still in conflict with other transactions after every attempt: nothing was applied,
    /// and the caller decides by reading the item.
    Conflicted,
}

/// Wait before retrying a conflicted write: 10, 20, 40 ms..., each with ±50% jitter so
/// two conflicting writers do not retry in lockstep.
async fn conflict_backoff(attempt: u32) {
    let base = 10u64 << attempt.min(6);
    let jitter = crate::crypto::random_bytes::<1>().map_or(128, |b| u64::from(b[0]));
    tokio::time::sleep(std::time::Duration::from_millis(base / 2 + base * jitter / 255)).await;
}

fn is_single_write_conflict<E, R>(e: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error().and_then(|s| s.code()) == Some("TransactionConflictException")
}

impl DynamoStore {
    /// A store over `table` with a shared SDK client.
    pub fn new(client: Ddb, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get(&self, key: Item, what: &'static str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend(what))?;
        Ok(out.item)
    }

    async fn put_new(&self, item: Item, what: &'static str) -> Result<(), StoreError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(backend(what)(e)),
        }
    }

    /// Run a transaction, retrying it (with jittered backoff) while DynamoDB cancels it for a
    /// `TransactionConflict`.
    async fn transact(&self, items: Vec<TransactWriteItem>, what: &'static str) -> Result<Transacted, StoreError> {
        for attempt in 0..CONFLICT_ATTEMPTS {
            let r = self.client.transact_write_items().set_transact_items(Some(items.clone())).send().await;
            let e = match r {
                Ok(_) => return Ok(Transacted::Done),
                Err(e) => e,
            };
            match cancellation(&e) {
                Some(reasons) if reasons.iter().any(|r| reason_is(Some(r), CONDITION_FAILED)) => {
                    return Ok(Transacted::ConditionFailed(reasons));
                }
                Some(reasons) if reasons.iter().any(|r| reason_is(Some(r), TRANSACTION_CONFLICT)) => {
                    tracing::warn!(attempt, what, "DynamoDB transaction conflict; retrying");
                    if attempt + 1 < CONFLICT_ATTEMPTS {
                        conflict_backoff(attempt).await;
                    }
                }
                _ => return Err(backend(what)(e)),
            }
        }
        Ok(Transacted::Conflicted)
    }

    fn put_new_item(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(backend("Failed to build a transaction Put"))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn revoke(&self, what: String, until: OffsetDateTime) -> Result<(), StoreError> {
        let until = until.unix_timestamp();
        // Never shortens an existing revocation; a newer expiry extends it.
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item::revocation_key(&what)))
            .update_expression("SET expires_at = :until")
            .condition_expression("attribute_not_exists(expires_at) OR expires_at < :until")
            .expression_attribute_values(":until", n(until))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(backend("Failed to write a revocation to DynamoDB")(e)),
        }
    }
}

/// Create the table (on-demand, TTL on `expires_at`) unless it exists. For bootstrap and tests.
///
/// # Errors
/// DynamoDB refused to create or describe the table.
pub async fn ensure_table(client: &Ddb, table: &str) -> anyhow::Result<bool> {
    let exists = client.describe_table().table_name(table).send().await;
    match exists {
        Ok(_) => return Ok(false),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {}
        Err(e) => return Err(anyhow::Error::new(e).context(format!("Failed to describe table {table}"))),
    }
    let attr =
        |name: &str| AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build();
    let key = |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
    client
        .create_table()
        .table_name(table)
        .attribute_definitions(attr("pk")?)
        .attribute_definitions(attr("sk")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .with_context(|| format!("Failed to create table {table}"))?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder().attribute_name(EXPIRES_AT).enabled(true).build()?,
        )
        .send()
        .await
        .with_context(|| format!("Failed to enable TTL on {table}"))?;
    Ok(true)
}

#[async_trait]
impl UserStore for DynamoStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let mut pointer = item::sub_key(&user.sub);
        pointer.insert("username_key".into(), s(user.username.key()));
        let items = vec![self.put_new_item(Item::from(user))?, self.put_new_item(pointer)?];
        match self.transact(items, "Failed to create a user in DynamoDB").await? {
            Transacted::Done => Ok(()),
            Transacted::ConditionFailed(_) => Err(StoreError::AlreadyExists),
            // Another registration of the same name (or sub) was in flight: if it won, this
            // one is a duplicate, as a failed condition would have said.
            Transacted::Conflicted => match self.user_by_username(&user.username.key()).await? {
                Some(_) => Err(StoreError::AlreadyExists),
                None => Err(StoreError::Backend(anyhow::anyhow!("creating a user kept conflicting in DynamoDB"))),
            },
        }
    }

    async fn user_by_username(&self, username_key: &str) -> Result<Option<User>, StoreError> {
        self.get(item::user_key(username_key), "Failed to read a user from DynamoDB")
            .await?
            .map(User::try_from)
            .transpose()
    }

    async fn user_by_sub(&self, sub: &str) -> Result<Option<User>, StoreError> {
        let Some(pointer) = self.get(item::sub_key(sub), "Failed to read a user pointer from DynamoDB").await? else {
            return Ok(None);
        };
        self.user_by_username(&get_s(&pointer, "username_key")?).await
    }

    async fn update_password_hash(&self, sub: &str, password_hash: &str) -> Result<(), StoreError> {
        let Some(pointer) = self.get(item::sub_key(sub), "Failed to read a user pointer from DynamoDB").await? else {
            return Err(StoreError::NotFound);
        };
        let r = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(item::user_key(&get_s(&pointer, "username_key")?)))
            .update_expression("SET password_hash = :h")
            .condition_expression("attribute_exists(pk) AND #sub = :sub")
            .expression_attribute_names("#sub", "sub")
            .expression_attribute_values(":h", s(password_hash))
            .expression_attribute_values(":sub", s(sub))
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::NotFound),
            Err(e) => Err(backend("Failed to update a password hash in DynamoDB")(e)),
        }
    }
}

#[async_trait]
impl ClientStore for DynamoStore {
    async fn create_client(&self, client: &Client) -> Result<(), StoreError> {
        self.put_new(Item::from(client), "Failed to create a client in DynamoDB").await
    }

    async fn client(&self, client_id: &str) -> Result<Option<Client>, StoreError> {
        self.get(item::client_key(client_id), "Failed to read a client from DynamoDB")
            .await?
            .map(Client::try_from)
            .transpose()
    }
}

/// Classify a failed single-use write from the item as it was (`ALL_OLD`).
impl DynamoStore {
    /// After conflicts only, read the code (consistently) and decide as a failed condition
    /// would have: consumed by this request (a retry), by another (a replay), or not at all
    /// (then nothing is known yet: a 503 the client may retry).
    async fn classify_after_conflict(&self, code_hash: &str, request_id: &str) -> Result<Consume, StoreError> {
        let old = self.get(item::code_key(code_hash), "Failed to read a code from DynamoDB").await?;
        match old.map(AuthCode::try_from).transpose()? {
            None => Ok(Consume::Missing),
            Some(code) if code.consumed_by.as_deref() == Some(request_id) => Ok(Consume::Fresh),
            Some(code) if code.consumed_at.is_some() => Ok(Consume::Replayed(Box::new(code))),
            Some(_) => Err(StoreError::Backend(anyhow::anyhow!("consuming a code kept conflicting in DynamoDB"))),
        }
    }
}

fn classify_consumed(old: Option<Item>, request_id: &str) -> Result<Consume, StoreError> {
    let Some(old) = old else { return Ok(Consume::Missing) };
    let code = AuthCode::try_from(old)?;
    if code.consumed_by.as_deref() == Some(request_id) {
        return Ok(Consume::Fresh);
    }
    if code.consumed_at.is_some() { Ok(Consume::Replayed(Box::new(code))) } else { Ok(Consume::Missing) }
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
        now: i64,
        retain_until: i64,
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
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":rid", s(request_id))
            .expression_attribute_values(":keep", n(retain_until))
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

#[async_trait]
impl TokenStore for DynamoStore {
    async fn refresh(&self, token_hash: &str) -> Result<Option<RefreshRecord>, StoreError> {
        self.get(item::refresh_key(token_hash), "Failed to read a refresh token from DynamoDB")
            .await?
            .map(RefreshRecord::try_from)
            .transpose()
    }

    async fn rotate_refresh(&self, old_hash: &str, new: &RefreshRecord, now: i64) -> Result<Rotate, StoreError> {
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
        let items = vec![TransactWriteItem::builder().update(update).build(), self.put_new_item(Item::from(new))?];
        let old = match self.transact(items, "Failed to rotate a refresh token in DynamoDB").await? {
            Transacted::Done => return Ok(Rotate::Rotated),
            Transacted::ConditionFailed(reasons) if reason_is(reasons.first(), CONDITION_FAILED) => {
                reasons.first().and_then(|r| r.item.clone()).map(RefreshRecord::try_from).transpose()?
            }
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
        let Some(old) = old else { return Ok(Rotate::Missing) };
        if old.rotated_to.as_deref() == Some(new.token_hash.as_str()) {
            Ok(Rotate::Rotated)
        } else {
            Ok(Rotate::AlreadyRotated(Box::new(old)))
        }
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
        // One consistent BatchGetItem for both keys (unprocessed keys are retried).
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(backend("Failed to build a batch read"))?;
        let t = now.unix_timestamp();
        for round in 0..5 {
            if round > 0 {
                conflict_backoff(round - 1).await;
            }
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(backend("Failed to read revocations from DynamoDB"))?;
            let found = out.responses.as_ref().and_then(|r| r.get(&self.table)).map(Vec::as_slice).unwrap_or_default();
            for item in found {
                if get_n(item, EXPIRES_AT)? > t {
                    return Ok(true);
                }
            }
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys.is_empty() => request = rest,
                _ => return Ok(false),
            }
        }
        // Fail closed: "not revoked" is never assumed.
        Err(StoreError::Backend(anyhow::anyhow!("DynamoDB left revocation keys unprocessed")))
    }
}

#[async_trait]
impl DataStore for DynamoStore {
    async fn put_item(&self, data: &DataItem) -> Result<(), StoreError> {
        self.put_new(Item::from(data), "Failed to store a data item in DynamoDB").await
    }

    async fn items_for(&self, sub: &str, limit: usize) -> Result<Vec<DataItem>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :item)")
            .expression_attribute_values(":pk", s(item::data_pk(sub)))
            .expression_attribute_values(":item", s("ITEM#"))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend("Failed to query data items in DynamoDB"))?;
        out.items.unwrap_or_default().into_iter().map(DataItem::try_from).collect()
    }
}

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
