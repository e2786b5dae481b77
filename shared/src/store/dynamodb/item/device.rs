//! Device authorization requests: the request item `DEVICE#<device code hash>` (the device
//! polls it, the user's decision updates it) and the pointer `USERCODE#<user code hash>` to
//! it (the verification page finds the request by the code the user types). The state the
//! conditions test (status, interval, next poll, client) is in attributes of its own.
use super::{EXPIRES_AT, Item, StoreError, corrupt, data, from_data, get_n, get_s, key, n, s};
use crate::domain::{DeviceGrant, DeviceStatus};

/// The request's status attribute (`pending`, `approved`, `denied`).
pub const STATUS: &str = "device_status";
/// The polling interval attribute (seconds).
pub const INTERVAL: &str = "poll_interval";
/// The earliest next poll that is not a `slow_down` (unix seconds).
pub const NEXT_POLL: &str = "next_poll";
/// The pointer's attribute naming the request.
pub const DEVICE: &str = "device";

/// Key of the request whose device code hashes to `device_hash`.
pub fn device_key(device_hash: &str) -> Item {
    key(format!("DEVICE#{device_hash}"), "DEVICE")
}

/// Key of the pointer from a user code's hash to its request.
pub fn user_code_key(user_code_hash: &str) -> Item {
    key(format!("USERCODE#{user_code_hash}"), "USERCODE")
}

/// The request item and its user-code pointer.
pub fn device_items(d: &DeviceGrant) -> (Item, Item) {
    let mut item = device_key(&d.device_hash);
    item.insert("data".into(), data(d));
    item.insert("client_id".into(), s(&d.client_id));
    item.insert(STATUS.into(), s(d.status.as_str()));
    item.insert(INTERVAL.into(), n(d.interval));
    item.insert(NEXT_POLL.into(), n(d.next_poll));
    item.insert(EXPIRES_AT.into(), n(d.expires_at));
    let mut pointer = user_code_key(&d.user_code_hash);
    pointer.insert(DEVICE.into(), s(&d.device_hash));
    pointer.insert(EXPIRES_AT.into(), n(d.expires_at));
    (item, pointer)
}

/// A request from its item: the record, with the state from its own attributes.
///
/// # Errors
/// An attribute is missing or malformed.
pub fn device_from(item: &Item) -> Result<DeviceGrant, StoreError> {
    let mut d: DeviceGrant = from_data(item, "device request")?;
    let status = get_s(item, STATUS)?;
    d.status = DeviceStatus::parse(&status).ok_or_else(|| corrupt("device request", format!("status {status:?}")))?;
    d.interval = get_n(item, INTERVAL)?;
    d.next_poll = get_n(item, NEXT_POLL)?;
    d.client_id = get_s(item, "client_id")?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_and_its_state_comes_from_its_own_attributes() -> Result<(), StoreError> {
        let d = DeviceGrant {
            device_hash: "dh".into(),
            user_code_hash: "uh".into(),
            client_id: "cl_1".into(),
            scope: crate::domain::ScopeSet::parse("openid data:read").map_err(|e| corrupt("scope", e))?,
            resources: vec![],
            created_at: 1,
            expires_at: 601,
            interval: 5,
            next_poll: 1,
            status: DeviceStatus::Pending,
        };
        let (mut item, pointer) = device_items(&d);
        assert_eq!(device_from(&item)?, d);
        assert_eq!(pointer.get(DEVICE), Some(&s("dh")));
        assert_eq!(pointer.get("pk"), Some(&s("USERCODE#uh")));
        item.insert(STATUS.into(), s("approved"));
        item.insert(INTERVAL.into(), n(10));
        let changed = device_from(&item)?;
        assert_eq!((changed.status, changed.interval), (DeviceStatus::Approved, 10));
        item.insert(STATUS.into(), s("lost"));
        assert!(device_from(&item).is_err());
        Ok(())
    }
}
