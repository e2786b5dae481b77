//! Items of a user's account partition (`ACCOUNT#<sub>`): browser sessions
//! (`SESSION#<id hash>`), consent grants (`GRANT#<client id>`) and refresh-family entries
//! (`FAMILY#<client id>#<family id>`). One partition per user, so a session and a grant are
//! read together in one `BatchGetItem` and each kind is listed with one `Query`.
use super::{EXPIRES_AT, Item, PK, SK, corrupt, get_n, get_s, key, n, opt_n, opt_s, s};
use crate::domain::{AuthMethodRef, ConsentGrant, RefreshFamily, ScopeSet, Session};
use crate::store::StoreError;
use aws_sdk_dynamodb::types::AttributeValue;

/// The partition of a user's sessions and grants.
pub fn account_pk(sub: &str) -> String {
    format!("ACCOUNT#{sub}")
}
/// Sort-key prefix of sessions.
pub const SESSION_PREFIX: &str = "SESSION#";
/// Sort-key prefix of grants.
pub const GRANT_PREFIX: &str = "GRANT#";
/// Sort-key prefix of refresh-family entries.
pub const FAMILY_PREFIX: &str = "FAMILY#";

/// Key of a session.
pub fn session_key(sub: &str, id_hash: &str) -> Item {
    key(account_pk(sub), &format!("{SESSION_PREFIX}{id_hash}"))
}
/// Key of a grant.
pub fn grant_key(sub: &str, client_id: &str) -> Item {
    key(account_pk(sub), &format!("{GRANT_PREFIX}{client_id}"))
}

/// Key of a refresh-family entry.
pub fn family_key(sub: &str, client_id: &str, family_id: &str) -> Item {
    key(account_pk(sub), &format!("{FAMILY_PREFIX}{client_id}#{family_id}"))
}

/// Attribute of a grant's last use (set by code redemptions and refreshes).
pub const LAST_USED: &str = "last_used";
/// Attribute of the idle end (conditions test it).
pub const IDLE_EXPIRES_AT: &str = "idle_expires_at";
/// Attribute of a grant's scopes (a string set, so consents are added with `ADD`).
pub const SCOPES: &str = "scopes";
/// The grant's resource servers, a string set.
pub const RESOURCES: &str = "resources";

impl From<&Session> for Item {
    fn from(x: &Session) -> Self {
        let mut item = session_key(&x.sub, &x.id_hash);
        item.insert("sub".into(), s(&x.sub));
        item.insert("id_hash".into(), s(&x.id_hash));
        item.insert("auth_time".into(), n(x.auth_time));
        item.insert("method".into(), s(x.method.as_str()));
        item.insert("created_at".into(), n(x.created_at));
        item.insert("last_seen".into(), n(x.last_seen));
        item.insert(IDLE_EXPIRES_AT.into(), n(x.idle_expires_at));
        // The absolute end is the TTL: the item may go once the session cannot be used.
        item.insert(EXPIRES_AT.into(), n(x.expires_at));
        item
    }
}

impl TryFrom<Item> for Session {
    type Error = StoreError;
    fn try_from(item: Item) -> Result<Self, StoreError> {
        let sub = get_s(&item, "sub")?;
        let method = AuthMethodRef::parse(&get_s(&item, "method")?)
            .ok_or_else(|| corrupt(&format!("session of {sub}"), "unknown method"))?;
        let expires_at = get_n(&item, EXPIRES_AT)?;
        Ok(Session {
            id_hash: get_s(&item, "id_hash")?,
            auth_time: get_n(&item, "auth_time")?,
            method,
            created_at: get_n(&item, "created_at")?,
            last_seen: get_n(&item, "last_seen")?,
            // A touch writes `last_seen + idle` (an update expression has no `min`); the idle
            // end never passes the absolute one.
            idle_expires_at: get_n(&item, IDLE_EXPIRES_AT)?.min(expires_at),
            expires_at,
            sub,
        })
    }
}

/// The scopes as a string set (DynamoDB has no empty sets: `None` for none).
pub fn scope_set(scope: &ScopeSet) -> Option<AttributeValue> {
    let v: Vec<String> = scope.iter().map(|x| x.as_str().to_owned()).collect();
    (!v.is_empty()).then_some(AttributeValue::Ss(v))
}

/// Resource identifiers as a string set (`None` for none).
pub fn resource_set(resources: &[crate::domain::ResourceId]) -> Option<AttributeValue> {
    let v: Vec<String> = resources.iter().map(ToString::to_string).collect();
    (!v.is_empty()).then_some(AttributeValue::Ss(v))
}

impl TryFrom<Item> for ConsentGrant {
    type Error = StoreError;
    fn try_from(item: Item) -> Result<Self, StoreError> {
        let sub = get_s(&item, "sub")?;
        let scope = match item.get(SCOPES) {
            None => ScopeSet::default(),
            Some(AttributeValue::Ss(v)) => ScopeSet::parse(&v.join(" "))
                .map_err(|bad| corrupt(&format!("grant of {sub}"), format!("scope {bad:?}")))?,
            Some(_) => return Err(corrupt(SCOPES, "not a string set")),
        };
        let mut resources = match item.get(RESOURCES) {
            None => Vec::new(),
            Some(AttributeValue::Ss(v)) => v
                .iter()
                .map(|r| crate::domain::ResourceId::parse(r))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|why| corrupt(&format!("grant of {sub}"), why))?,
            Some(_) => return Err(corrupt(RESOURCES, "not a string set")),
        };
        resources.sort();
        let client_id = match item.get(SK) {
            Some(AttributeValue::S(sk)) => sk.strip_prefix(GRANT_PREFIX).map(str::to_owned),
            _ => None,
        }
        .ok_or_else(|| corrupt(SK, "not a grant key"))?;
        if item.get(PK) != Some(&s(account_pk(&sub))) {
            return Err(corrupt(PK, "not this user's partition"));
        }
        Ok(ConsentGrant {
            sub,
            client_id,
            scope,
            resources,
            granted_at: get_n(&item, "granted_at")?,
            updated_at: get_n(&item, "updated_at")?,
            last_used: opt_n(&item, LAST_USED)?,
        })
    }
}

impl From<&RefreshFamily> for Item {
    fn from(x: &RefreshFamily) -> Self {
        let mut item = family_key(&x.sub, &x.client_id, &x.family_id);
        item.insert("sub".into(), s(&x.sub));
        item.insert("client_id".into(), s(&x.client_id));
        item.insert("family_id".into(), s(&x.family_id));
        if let Some(session) = &x.session {
            item.insert("session".into(), s(session));
        }
        item.insert("created_at".into(), n(x.created_at));
        item.insert(EXPIRES_AT.into(), n(x.expires_at));
        item
    }
}

impl TryFrom<Item> for RefreshFamily {
    type Error = StoreError;
    fn try_from(item: Item) -> Result<Self, StoreError> {
        let x = RefreshFamily {
            sub: get_s(&item, "sub")?,
            client_id: get_s(&item, "client_id")?,
            family_id: get_s(&item, "family_id")?,
            session: opt_s(&item, "session"),
            created_at: get_n(&item, "created_at")?,
            expires_at: get_n(&item, EXPIRES_AT)?,
        };
        // The key is derived from the attributes: an item under another user's or another
        // family's key is corrupt, not a family of this user.
        let want = family_key(&x.sub, &x.client_id, &x.family_id);
        if item.get(PK) != want.get(PK) || item.get(SK) != want.get(SK) {
            return Err(corrupt(SK, "not this family's key"));
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            id_hash: "h1".into(),
            sub: "usr_1".into(),
            auth_time: 10,
            method: AuthMethodRef::Password,
            created_at: 10,
            last_seen: 20,
            idle_expires_at: 100,
            expires_at: 1000,
        }
    }

    #[test]
    fn a_session_maps_to_its_users_partition_and_back() -> Result<(), StoreError> {
        let x = session();
        let item = Item::from(&x);
        assert_eq!(item.get(PK), Some(&s("ACCOUNT#usr_1")));
        assert_eq!(item.get(SK), Some(&s("SESSION#h1")));
        assert_eq!(item.get(EXPIRES_AT), Some(&n(1000)));
        assert_eq!(Session::try_from(item)?, x);
        // An idle end written past the absolute end reads as the absolute end.
        let mut item = Item::from(&x);
        item.insert(IDLE_EXPIRES_AT.into(), n(5000));
        assert_eq!(Session::try_from(item)?.idle_expires_at, 1000);
        let mut item = Item::from(&x);
        item.insert("method".into(), s("otp"));
        assert!(matches!(Session::try_from(item), Err(StoreError::Corrupt(_))));
        Ok(())
    }

    #[test]
    fn a_grant_reads_its_client_from_the_sort_key_and_its_scopes_from_a_set() -> Result<(), StoreError> {
        let mut item = grant_key("usr_1", "cl_1");
        item.insert("sub".into(), s("usr_1"));
        item.insert(SCOPES.into(), AttributeValue::Ss(vec!["openid".into(), "data:read".into()]));
        item.insert("granted_at".into(), n(1));
        item.insert("updated_at".into(), n(2));
        let g = ConsentGrant::try_from(item.clone())?;
        assert_eq!(g.client_id, "cl_1");
        assert_eq!(g.last_used, None, "never used yet");
        let mut used = item.clone();
        used.insert(LAST_USED.into(), n(7));
        assert_eq!(ConsentGrant::try_from(used)?.last_used, Some(7));
        assert_eq!(g.scope.to_string(), ScopeSet::parse("openid data:read").map(|x| x.to_string()).unwrap_or_default());
        let mut foreign = item.clone();
        foreign.insert("sub".into(), s("usr_2"));
        assert!(matches!(ConsentGrant::try_from(foreign), Err(StoreError::Corrupt(_))));
        let mut unknown = item;
        // A scope no resource defines any more is still a scope; a malformed one is corruption.
        unknown.insert(SCOPES.into(), AttributeValue::Ss(vec!["no\\pe".into()]));
        assert!(matches!(ConsentGrant::try_from(unknown), Err(StoreError::Corrupt(_))));
        assert_eq!(scope_set(&ScopeSet::default()), None);
        Ok(())
    }

    #[test]
    fn a_family_entry_maps_under_its_users_partition_and_back_and_a_moved_one_is_corrupt() -> Result<(), StoreError> {
        let bound = RefreshFamily {
            sub: "usr_1".into(),
            client_id: "cl_1".into(),
            family_id: "fam_1".into(),
            session: Some("h1".into()),
            created_at: 10,
            expires_at: 5000,
        };
        let offline = RefreshFamily { session: None, ..bound.clone() };
        for x in [&bound, &offline] {
            let item = Item::from(x);
            assert_eq!(item.get(PK), Some(&s("ACCOUNT#usr_1")));
            assert_eq!(item.get(SK), Some(&s("FAMILY#cl_1#fam_1")));
            assert_eq!(item.get(EXPIRES_AT), Some(&n(5000)));
            assert_eq!(RefreshFamily::try_from(item)?, *x);
        }
        let mut moved = Item::from(&bound);
        moved.insert(PK.into(), s("ACCOUNT#usr_2"));
        assert!(matches!(RefreshFamily::try_from(moved), Err(StoreError::Corrupt(_))));
        let mut renamed = Item::from(&bound);
        renamed.insert("family_id".into(), s("fam_2"));
        assert!(matches!(RefreshFamily::try_from(renamed), Err(StoreError::Corrupt(_))));
        Ok(())
    }
}
