//! DynamoDB item mapping, and only that: keys and attributes of every entity in the single
//! table (`pk`, `sk`, TTL `expires_at`; key design: `README.md` beside this file). Records are
//! a JSON `data` attribute beside the attributes conditions and TTL need (never parsed there).
mod account;
pub mod device;
mod identity;
mod user;

use crate::domain::{AuthCode, Client, DataItem, RefreshRecord};
use crate::store::StoreError;
pub use account::{
    FAMILY_PREFIX, GRANT_PREFIX, IDLE_EXPIRES_AT, LAST_USED, RESOURCES, SCOPES, SESSION_PREFIX, account_pk, family_key,
    grant_key, resource_set, scope_set, session_key,
};
use aws_sdk_dynamodb::types::AttributeValue;
pub use identity::{IDENTITY_PREFIX, LINKS, account_identity_key, identity_key, link_from, link_items};
use std::collections::HashMap;
pub use user::DISABLED;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// Partition key attribute.
pub const PK: &str = "pk";
/// Sort key attribute.
pub const SK: &str = "sk";
/// TTL attribute (unix seconds); reads check it too, since TTL deletion lags.
pub const EXPIRES_AT: &str = "expires_at";

/// A string attribute.
pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The key of an item.
pub fn key(pk: String, sk: &str) -> Item {
    HashMap::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
}

/// Key of the user item, found by username (the login path: one read).
pub fn user_key(username_key: &str) -> Item {
    key(format!("USERNAME#{username_key}"), "USER")
}
/// Key of the pointer from a user's `sub` to the username item.
pub fn sub_key(sub: &str) -> Item {
    key(format!("SUB#{sub}"), "USER")
}
/// Key of a client.
pub fn client_key(client_id: &str) -> Item {
    key(format!("CLIENT#{client_id}"), "CLIENT")
}
/// Key of an authorization code (by hash).
pub fn code_key(code_hash: &str) -> Item {
    key(format!("CODE#{code_hash}"), "CODE")
}
/// Partition of the resource servers (one item each: few, always read together).
pub const RESOURCES_PK: &str = "RESOURCES";
/// Sort-key prefix of a resource server.
pub const RESOURCE_PREFIX: &str = "RESOURCE#";
/// Key of a resource server.
pub fn resource_key(id: &crate::domain::ResourceId) -> Item {
    key(RESOURCES_PK.to_owned(), &format!("{RESOURCE_PREFIX}{id}"))
}
/// Key of a refresh token (by hash).
pub fn refresh_key(token_hash: &str) -> Item {
    key(format!("RT#{token_hash}"), "RT")
}
/// Key of a revocation (`jti#…` or `fam#…`).
pub fn revocation_key(what: &str) -> Item {
    key(format!("REVOKED#{what}"), "REVOKED")
}
/// Key of a counter.
pub fn counter_key(name: &str) -> Item {
    key(format!("COUNTER#{name}"), "COUNTER")
}
/// Partition of a subject's data items.
pub fn data_pk(sub: &str) -> String {
    format!("DATA#{sub}")
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {detail}"))
}

/// A required string attribute.
///
/// # Errors
/// Missing or not a string.
pub fn get_s(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v.clone()),
        _ => Err(corrupt(name, "missing or not a string")),
    }
}

/// An optional string attribute.
pub fn opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

/// An optional number attribute.
///
/// # Errors
/// Present but not a whole number.
pub fn opt_n(item: &Item, name: &str) -> Result<Option<i64>, StoreError> {
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| corrupt(name, "not a whole number")),
        Some(_) => Err(corrupt(name, "not a number")),
    }
}

/// A required number attribute.
///
/// # Errors
/// Missing or not a whole number.
pub fn get_n(item: &Item, name: &str) -> Result<i64, StoreError> {
    opt_n(item, name)?.ok_or_else(|| corrupt(name, "missing"))
}

fn data<T: serde::Serialize>(v: &T) -> AttributeValue {
    s(serde_json::to_string(v).unwrap_or_default())
}

fn from_data<T: serde::de::DeserializeOwned>(item: &Item, what: &str) -> Result<T, StoreError> {
    serde_json::from_str(&get_s(item, "data")?).map_err(|e| corrupt(what, e))
}

impl From<&Client> for Item {
    fn from(c: &Client) -> Self {
        let mut item = client_key(&c.client_id);
        item.insert("data".into(), data(c));
        item
    }
}

impl TryFrom<Item> for Client {
    type Error = StoreError;
    fn try_from(item: Item) -> Result<Self, StoreError> {
        from_data(&item, "client")
    }
}

impl From<&AuthCode> for Item {
    fn from(c: &AuthCode) -> Self {
        let mut item = code_key(&c.code_hash);
        // State that conditions test lives in its own attributes, not in `data`.
        let stateless = AuthCode { consumed_at: None, consumed_by: None, ..c.clone() };
        item.insert("data".into(), data(&stateless));
        item.insert(EXPIRES_AT.into(), n(c.expires_at));
        if let Some(t) = c.consumed_at {
            item.insert("consumed_at".into(), n(t));
        }
        if let Some(r) = &c.consumed_by {
            item.insert("consumed_by".into(), s(r));
        }
        item
    }
}

impl TryFrom<Item> for AuthCode {
    type Error = StoreError;
    fn try_from(item: Item) -> Result<Self, StoreError> {
        let mut code: AuthCode = from_data(&item, "code")?;
        code.consumed_at = opt_n(&item, "consumed_at")?;
        code.consumed_by = opt_s(&item, "consumed_by");
        Ok(code)
    }
}

impl From<&RefreshRecord> for Item {
    fn from(r: &RefreshRecord) -> Self {
        let mut item = refresh_key(&r.token_hash);
        let stateless = RefreshRecord { rotated_at: None, rotated_to: None, ..r.clone() };
        item.insert("data".into(), data(&stateless));
        item.insert("family_id".into(), s(&r.family_id));
        // The item may go once the family can no longer be used.
        item.insert(EXPIRES_AT.into(), n(r.family_expires_at));
        if let Some(t) = r.rotated_at {
            item.insert("rotated_at".into(), n(t));
        }
        if let Some(to) = &r.rotated_to {
            item.insert("rotated_to".into(), s(to));
        }
        item
    }
}

impl TryFrom<Item> for RefreshRecord {
    type Error = StoreError;
    fn try_from(item: Item) -> Result<Self, StoreError> {
        let mut rt: RefreshRecord = from_data(&item, "refresh token")?;
        rt.rotated_at = opt_n(&item, "rotated_at")?;
        rt.rotated_to = opt_s(&item, "rotated_to");
        Ok(rt)
    }
}

impl From<&crate::domain::ResourceServer> for Item {
    fn from(r: &crate::domain::ResourceServer) -> Self {
        let mut item = resource_key(&r.id);
        item.insert("data".into(), data(r));
        item
    }
}

impl TryFrom<Item> for crate::domain::ResourceServer {
    type Error = StoreError;
    fn try_from(item: Item) -> Result<Self, StoreError> {
        from_data(&item, "resource server")
    }
}

impl From<&DataItem> for Item {
    fn from(d: &DataItem) -> Self {
        // Zero-padded time first: the sort key orders a subject's items by creation.
        let sk = format!("ITEM#{:020}#{}", d.created_at_ms.max(0), d.id);
        let mut item = key(data_pk(&d.sub), &sk);
        item.insert("id".into(), s(&d.id));
        item.insert("sub".into(), s(&d.sub));
        item.insert("value".into(), data(&d.value));
        item.insert("created_at_ms".into(), n(d.created_at_ms));
        item
    }
}

impl TryFrom<Item> for DataItem {
    type Error = StoreError;
    fn try_from(item: Item) -> Result<Self, StoreError> {
        let id = get_s(&item, "id")?;
        Ok(DataItem {
            value: serde_json::from_str(&get_s(&item, "value")?).map_err(|e| corrupt(&format!("data item {id}"), e))?,
            sub: get_s(&item, "sub")?,
            created_at_ms: get_n(&item, "created_at_ms")?,
            id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AuthMethod, Email, GrantType, RedirectUri, ScopeSet, User, Username};

    fn user() -> Result<User, &'static str> {
        Ok(User {
            sub: "usr_1".into(),
            username: Username::parse("Alice")?,
            email: Some(Email::parse("alice@example.com")?),
            password_hash: "$argon2id$x".into(),
            created_at: 1,
            disabled: false,
        })
    }

    #[test]
    fn user_maps_to_its_username_item_and_back() -> Result<(), Box<dyn std::error::Error>> {
        let u = user()?;
        let item = Item::from(&u);
        assert_eq!(item.get(PK), Some(&s("USERNAME#alice")));
        assert_eq!(item.get("password_hash"), Some(&s("$argon2id$x")));
        assert_eq!(User::try_from(item)?, u);
        Ok(())
    }

    #[test]
    fn client_maps_both_ways() -> Result<(), Box<dyn std::error::Error>> {
        let c = Client {
            client_id: "cl_1".into(),
            secret_hash: Some("h".into()),
            client_name: None,
            redirect_uris: vec![RedirectUri::parse("https://a.test/cb")?],
            grant_types: vec![GrantType::AuthorizationCode],
            auth_method: AuthMethod::ClientSecretBasic,
            scope: ScopeSet::client_default(),
            id_token_signed_response_alg: crate::domain::SigningAlg::Rs256,
            created_at: 1,
            trusted: true,
            post_logout_redirect_uris: vec![],
            dpop_bound_access_tokens: false,
        };
        let item = Item::from(&c);
        assert_eq!(item.get(PK), Some(&s("CLIENT#cl_1")));
        assert_eq!(Client::try_from(item)?, c);
        Ok(())
    }

    #[test]
    fn code_state_lives_in_attributes_and_round_trips() -> Result<(), Box<dyn std::error::Error>> {
        let c = AuthCode {
            code_hash: "h".into(),
            client_id: "cl_1".into(),
            redirect_uri: "https://a.test/cb".into(),
            redirect_uri_sent: true,
            code_challenge: "c".into(),
            scope: ScopeSet::parse("openid")?,
            nonce: None,
            sub: "usr_1".into(),
            auth_time: 1,
            family_id: "fam_1".into(),
            expires_at: 61,
            consumed_at: Some(5),
            consumed_by: Some("req_1".into()),
            session: Some(crate::domain::SessionRef { id_hash: "s1".into(), expires_at: 900 }),
            resources: vec![crate::domain::ResourceId::parse("https://orders.example").map_err(|e| e.to_owned())?],
            amr: Some(crate::domain::AuthMethodRef::Federated),
            dpop_jkt: None,
        };
        let item = Item::from(&c);
        assert_eq!(item.get(EXPIRES_AT), Some(&n(61)));
        assert_eq!(item.get("consumed_by"), Some(&s("req_1")));
        assert!(!get_s(&item, "data")?.contains("req_1"), "state must not hide in data");
        assert_eq!(AuthCode::try_from(item)?, c);
        Ok(())
    }

    #[test]
    fn refresh_record_expires_with_its_family_and_round_trips() -> Result<(), Box<dyn std::error::Error>> {
        let r = RefreshRecord {
            token_hash: "h".into(),
            family_id: "fam_1".into(),
            client_id: "cl_1".into(),
            sub: "usr_1".into(),
            scope: ScopeSet::parse("openid offline_access")?,
            auth_time: 1,
            issued_at: 2,
            expires_at: 100,
            family_expires_at: 1000,
            rotated_at: Some(50),
            rotated_to: Some("h2".into()),
            session: Some("s1".into()),
            resources: vec![crate::domain::ResourceId::parse("https://orders.example").map_err(|e| e.to_owned())?],
            jkt: None,
        };
        let item = Item::from(&r);
        assert_eq!(item.get(EXPIRES_AT), Some(&n(1000)));
        assert_eq!(RefreshRecord::try_from(item)?, r);
        Ok(())
    }

    #[test]
    fn data_items_sort_by_time_and_round_trip() -> Result<(), Box<dyn std::error::Error>> {
        let d = DataItem {
            id: "itm_1".into(),
            sub: "usr_1".into(),
            value: serde_json::json!({"a": [1]}),
            created_at_ms: 42,
        };
        let item = Item::from(&d);
        assert_eq!(item.get(SK), Some(&s("ITEM#00000000000000000042#itm_1")));
        assert_eq!(DataItem::try_from(item)?, d);
        Ok(())
    }

    #[test]
    fn schema_drift_is_an_error_not_a_panic() {
        let mut item =
            Item::from(&DataItem { id: "i".into(), sub: "s".into(), value: serde_json::json!(1), created_at_ms: 1 });
        item.insert("created_at_ms".into(), s("yesterday"));
        assert!(matches!(DataItem::try_from(item), Err(StoreError::Corrupt(_))));
        assert!(matches!(Client::try_from(client_key("x")), Err(StoreError::Corrupt(_))));
        assert!(matches!(User::try_from(Item::new()), Err(StoreError::Corrupt(_))));
    }
}
