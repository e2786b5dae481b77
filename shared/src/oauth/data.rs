//! The protected API: `GET /api/data` (scope `data:read`) lists the subject's items,
//! `POST /api/data` (scope `data:write`) stores one JSON value of at most 4 KiB.
use super::{OAuthError, store_failure};
use crate::App;
use crate::crypto::random_id;
use crate::domain::DataItem;
use crate::jwt::AccessClaims;
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

/// Largest stored value, as serialized JSON.
pub const MAX_VALUE_BYTES: usize = 4096;
/// Most items a GET returns.
pub const LIST_LIMIT: usize = 100;

/// The `POST /api/data` body.
#[derive(Debug, serde::Deserialize)]
pub struct WriteRequest {
    /// Any JSON value of at most 4 KiB, `null` included; `None` only when the field is absent.
    #[serde(default, deserialize_with = "present")]
    pub value: Option<serde_json::Value>,
}

/// A field that is present is `Some`, even when it is `null` (serde's default for an
/// `Option` would make `{"value": null}` look like a missing field).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde::Deserialize::deserialize(d).map(Some)
}

/// An item as the API shows it.
#[derive(Debug, Serialize)]
pub struct ItemView {
    /// Id.
    pub id: String,
    /// The stored value.
    pub value: serde_json::Value,
    /// RFC 3339.
    pub created_at: String,
}

/// The GET body.
#[derive(Debug, Serialize)]
pub struct DataView {
    /// "This is protected data!".
    pub data: &'static str,
    /// The token's subject.
    pub sub: String,
    /// The token's client.
    pub client_id: String,
    /// The token's scopes.
    pub scope: String,
    /// The subject's items, newest first.
    pub items: Vec<ItemView>,
}

fn view(item: DataItem) -> Result<ItemView, OAuthError> {
    let ts = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(item.created_at_ms) * 1_000_000)
        .map_err(OAuthError::server)?;
    Ok(ItemView { id: item.id, value: item.value, created_at: ts.format(&Rfc3339).map_err(OAuthError::server)? })
}

/// The subject's data.
///
/// # Errors
/// Store failures.
pub async fn read(app: &App, claims: AccessClaims) -> Result<DataView, OAuthError> {
    let items = app.data.items_for(&claims.sub, LIST_LIMIT).await.map_err(store_failure)?;
    Ok(DataView {
        data: "This is protected data!",
        items: items.into_iter().map(view).collect::<Result<_, _>>()?,
        sub: claims.sub,
        client_id: claims.client_id,
        scope: claims.scope,
    })
}

/// Store `value` for the token's subject.
///
/// # Errors
/// `ValueTooLarge` for a value over 4 KiB; store failures.
pub async fn write(
    app: &App,
    claims: &AccessClaims,
    value: serde_json::Value,
    now: time::OffsetDateTime,
) -> Result<ItemView, OAuthError> {
    let size = serde_json::to_vec(&value).map_err(OAuthError::server)?.len();
    if size > MAX_VALUE_BYTES {
        return Err(OAuthError::ValueTooLarge("value must be at most 4 KiB of JSON".into()));
    }
    let created_at_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).map_err(OAuthError::server)?;
    let item =
        DataItem { id: random_id("itm_").map_err(OAuthError::server)?, sub: claims.sub.clone(), value, created_at_ms };
    app.data.put_item(&item).await.map_err(store_failure)?;
    view(item)
}
