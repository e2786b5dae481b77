//! The user item `USERNAME#<key>` (the login path reads it by name); its `sub` pointer is
//! `SUB#<sub>` (`super::sub_key`).
use super::{Item, StoreError, corrupt, get_n, get_s, n, opt_s, s, user_key};
use crate::domain::{Email, User, Username};
use aws_sdk_dynamodb::types::AttributeValue;

/// The attribute of a disabled account (`true`; absent when enabled).
pub const DISABLED: &str = "disabled";

impl From<&User> for Item {
    fn from(u: &User) -> Self {
        let mut item = user_key(&u.username.key());
        item.insert("sub".into(), s(&u.sub));
        item.insert("username".into(), s(u.username.as_str()));
        if let Some(e) = &u.email {
            item.insert("email".into(), s(e.as_str()));
        }
        item.insert("password_hash".into(), s(&u.password_hash));
        item.insert("created_at".into(), n(u.created_at));
        if u.disabled {
            item.insert(DISABLED.into(), AttributeValue::Bool(true));
        }
        item
    }
}

impl TryFrom<Item> for User {
    type Error = StoreError;
    fn try_from(item: Item) -> Result<Self, StoreError> {
        let sub = get_s(&item, "sub")?;
        Ok(User {
            username: Username::parse(&get_s(&item, "username")?).map_err(|e| corrupt(&format!("user {sub}"), e))?,
            email: opt_s(&item, "email")
                .map(|e| Email::parse(&e))
                .transpose()
                .map_err(|e| corrupt(&format!("user {sub}"), e))?,
            password_hash: get_s(&item, "password_hash")?,
            created_at: get_n(&item, "created_at")?,
            // Absent in items written before accounts could be disabled: enabled.
            disabled: matches!(item.get(DISABLED), Some(AttributeValue::Bool(true))),
            sub,
        })
    }
}
