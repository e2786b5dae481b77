//! Upstream-identity links: the lookup item `IDENTITY#<key>` (a sign-in finds its user by
//! issuer and subject) and its copy in the user's account partition (the account page lists
//! them), with the same attributes.
use super::{Item, StoreError, account_pk, corrupt, get_n, get_s, key, n, opt_s, s};
use crate::domain::IdentityLink;
use aws_sdk_dynamodb::types::AttributeValue;

/// Sort-key prefix of a link in the account partition.
pub const IDENTITY_PREFIX: &str = "IDENTITY#";
/// The pointer item's count of links (the "last way to sign in" condition).
pub const LINKS: &str = "links";

/// Key of the lookup item of the identity whose key is `identity`.
pub fn identity_key(identity: &str) -> Item {
    key(format!("{IDENTITY_PREFIX}{identity}"), "IDENTITY")
}

/// Key of the account partition's copy of `sub`'s link `identity`.
pub fn account_identity_key(sub: &str, identity: &str) -> Item {
    key(account_pk(sub), &format!("{IDENTITY_PREFIX}{identity}"))
}

fn attributes(mut item: Item, l: &IdentityLink) -> Item {
    item.insert("issuer".into(), s(&l.issuer));
    item.insert("subject".into(), s(&l.subject));
    item.insert("sub".into(), s(&l.sub));
    item.insert("provider".into(), s(&l.provider));
    if let Some(e) = &l.email {
        item.insert("email".into(), s(e));
    }
    item.insert("email_verified".into(), AttributeValue::Bool(l.email_verified));
    item.insert("linked_at".into(), n(l.linked_at));
    item
}

/// The lookup item and the account copy of `l`.
pub fn link_items(l: &IdentityLink) -> (Item, Item) {
    let k = l.key();
    (attributes(identity_key(&k), l), attributes(account_identity_key(&l.sub, &k), l))
}

/// A link from either of its items.
///
/// # Errors
/// An attribute is missing or of the wrong type.
pub fn link_from(item: &Item) -> Result<IdentityLink, StoreError> {
    let email_verified = match item.get("email_verified") {
        Some(AttributeValue::Bool(b)) => *b,
        _ => return Err(corrupt("identity link", "email_verified missing or not a boolean")),
    };
    Ok(IdentityLink {
        issuer: get_s(item, "issuer")?,
        subject: get_s(item, "subject")?,
        sub: get_s(item, "sub")?,
        provider: get_s(item, "provider")?,
        email: opt_s(item, "email"),
        email_verified,
        linked_at: get_n(item, "linked_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_round_trips_through_both_of_its_items() -> Result<(), StoreError> {
        let l = IdentityLink {
            issuer: "https://idp.example".into(),
            subject: "248289761001".into(),
            sub: "usr_1".into(),
            provider: "idp".into(),
            email: Some("a@idp.example".into()),
            email_verified: true,
            linked_at: 7,
        };
        let (lookup, copy) = link_items(&l);
        assert_eq!(link_from(&lookup)?, l);
        assert_eq!(link_from(&copy)?, l);
        assert_eq!(copy.get("pk"), Some(&s("ACCOUNT#usr_1")));
        let mut bad = lookup;
        bad.insert("email_verified".into(), s("true"));
        assert!(matches!(link_from(&bad), Err(StoreError::Corrupt(_))));
        Ok(())
    }
}
