//! The production store: one DynamoDB table (`pk`, `sk`, TTL on `expires_at`, on-demand).
//! Same semantics as the SQLite store, proven by the same conformance suite: conditional
//! writes for uniqueness and single use, `TransactWriteItems` where two items change
//! together, `ReturnValuesOnConditionCheckFailure` to classify failures without a second
//! read, consistent reads everywhere a stale read would be a hole, and no scans.
//! Each trait call is one DynamoDB request (a transaction counts as one), except
//! `user_by_sub`/`update_password_hash` (two) and a counter restarting its window (two).
mod codes;
mod data;
mod devices;
mod identities;
pub mod item;
mod resources;
mod sessions;
mod throttle;
mod tokens;
mod users;

use super::{
    ClientStore, CodeStore, Consume, DataStore, GrantStore, Issue, Rotate, SessionStore, StoreError, ThrottleStore,
    TokenStore, UserStore,
};
use crate::domain::{AuthCode, Client, DataItem, RefreshRecord, User};
use anyhow::Context;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client as Ddb;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CancellationReason, ConditionCheck, KeySchemaElement, KeyType, KeysAndAttributes,
    Put, ReturnValuesOnConditionCheckFailure, ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, Update,
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

/// Whether a cancelled transaction failed on what it draws on (the items at `anchors`:
/// [`DynamoStore::draw_on_grant`]).
fn withdrawn(reasons: &[CancellationReason], anchors: std::ops::Range<usize>) -> bool {
    reasons.get(anchors).is_some_and(|r| r.iter().any(|r| reason_is(Some(r), CONDITION_FAILED)))
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

/// Send a single write (`send`) again, with jittered backoff, while DynamoDB refuses it
/// because its item is in a transaction in flight (`TransactionConflictException`, which the
/// SDK does not retry): a session or grant touched, or deleted, while a code redemption or a
/// refresh checks it. The writes sent this way are idempotent.
async fn retry_conflicts<T, E, R, F, Fut>(mut send: F) -> Result<T, SdkError<E, R>>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SdkError<E, R>>>,
{
    let mut attempt = 0;
    loop {
        match send().await {
            Err(e) if is_single_write_conflict(&e) && attempt + 1 < CONFLICT_ATTEMPTS => {
                conflict_backoff(attempt).await;
                attempt += 1;
            }
            r => return r,
        }
    }
}

impl DynamoStore {
    /// A store over `table` with a shared SDK client.
    pub fn new(client: Ddb, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
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

    /// One consistent `BatchGetItem` for `keys` (unprocessed keys retried with backoff): the
    /// items found, in no particular order. Fails, never answers partly, when DynamoDB keeps
    /// keys unprocessed.
    async fn batch_get(&self, keys: Vec<Item>, what: &'static str) -> Result<Vec<Item>, StoreError> {
        let mut request = KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(backend("Failed to build a batch read"))?;
        let mut found = Vec::new();
        for round in 0..5 {
            if round > 0 {
                conflict_backoff(round - 1).await;
            }
            let out =
                self.client.batch_get_item().request_items(&self.table, request).send().await.map_err(backend(what))?;
            if let Some(items) = out.responses.and_then(|mut r| r.remove(&self.table)) {
                found.extend(items);
            }
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys.is_empty() => request = rest,
                _ => return Ok(found),
            }
        }
        Err(StoreError::Backend(anyhow::anyhow!("DynamoDB left keys unprocessed ({what})")))
    }

    /// Delete one item; whether it existed.
    async fn delete(&self, key: Item, what: &'static str) -> Result<bool, StoreError> {
        let out = retry_conflicts(|| {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
                .send()
        })
        .await
        .map_err(backend(what))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    /// Every item of partition `pk` whose sort key starts with `prefix` (consistent, all pages).
    async fn query_prefix(&self, pk: String, prefix: &str, what: &'static str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk.clone()))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(backend(what))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(items),
            }
        }
    }

    /// The transaction items of what a token issue draws on (`CodeStore::consume_code`,
    /// `TokenStore::rotate_refresh`): the grant of `sub` to `client_id` must exist and gets
    /// `last_used = now`; a family bound to `session` needs that session to be live (there,
    /// and neither its idle nor its absolute end reached).
    fn draw_on_grant(
        &self,
        sub: &str,
        client_id: &str,
        session: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let now = n(now.unix_timestamp());
        let grant = Update::builder()
            .table_name(&self.table)
            .set_key(Some(item::grant_key(sub, client_id)))
            .update_expression(format!("SET {} = :now", item::LAST_USED))
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", now.clone())
            .build()
            .map_err(backend("Failed to build a grant update"))?;
        let mut items = vec![TransactWriteItem::builder().update(grant).build()];
        if let Some(id_hash) = session {
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(item::session_key(sub, id_hash)))
                .condition_expression(format!(
                    "attribute_exists(pk) AND {} > :now AND {EXPIRES_AT} > :now",
                    item::IDLE_EXPIRES_AT
                ))
                .expression_attribute_values(":now", now)
                .build()
                .map_err(backend("Failed to build a session check"))?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        Ok(items)
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
        Err(e) if crate::aws::is_not_found(&e) => {}
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
