//! `grant_type=urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4–3.5): each
//! poll is one atomic step of the store (pending, `slow_down` with the interval grown,
//! denied, expired); an approved request is redeemed like an authorization code, once:
//! of concurrent polls exactly one gets the tokens.
use super::TokenResponse;
use super::authorization_code::Redeem;
use crate::App;
use crate::catalog::Catalog;
use crate::crypto::sha256_b64;
use crate::domain::{Client, DeviceGrant, Poll};
use crate::oauth::{OAuthError, store_failure};

const UNKNOWN: &str = "the device code is invalid, expired or already used";

/// Answer a poll of `client` (whose registration allows this grant) with `device_code`.
///
/// # Errors
/// `authorization_pending`, `slow_down`, `access_denied`, `expired_token`, `invalid_grant`;
/// `invalid_target` for a resource the user did not allow.
pub(super) async fn grant(
    app: &App,
    catalog: &Catalog,
    client: &Client,
    device_code: &str,
    resource: &[&str],
    dpop: Option<&str>,
    now: time::OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    if device_code.len() > crate::crypto::MAX_OPAQUE_TOKEN_LEN {
        return Err(OAuthError::InvalidGrant(UNKNOWN.into()));
    }
    let device_hash = sha256_b64(device_code);
    match app.devices.poll_device(&device_hash, &client.client_id, now).await.map_err(store_failure)? {
        Poll::Pending => return Err(OAuthError::AuthorizationPending),
        Poll::SlowDown(interval) => return Err(OAuthError::SlowDown { interval }),
        Poll::Denied => return Err(OAuthError::AccessDenied("the user denied the request".into())),
        Poll::Expired => return Err(OAuthError::ExpiredToken),
        Poll::Missing => return Err(OAuthError::InvalidGrant(UNKNOWN.into())),
        Poll::Approved => {}
    }
    let code_hash = DeviceGrant::approval_hash(&device_hash);
    let Some(record) = app.codes.code(&code_hash).await.map_err(store_failure)? else {
        return Err(OAuthError::server(anyhow::anyhow!("an approved device request has no approval")));
    };
    if record.client_id != client.client_id || record.consumed_at.is_some() {
        return Err(OAuthError::InvalidGrant(UNKNOWN.into()));
    }
    if record.expires_at <= now.unix_timestamp() {
        return Err(OAuthError::ExpiredToken);
    }
    let redeem = Redeem {
        code_hash: &code_hash,
        resource,
        dpop,
        grant_type: crate::domain::DEVICE_CODE_GRANT,
        revoke_on_replay: false,
    };
    redeem.run(app, catalog, client, record, now).await
}
