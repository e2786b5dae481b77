//! The device authorization grant (RFC 8628; docs/API.md, "Device authorization grant"):
//! `POST /oauth/device_authorization` starts a request ([`authorize_device`]); the user
//! enters its user code at `/device` ([`verify`]), signs in and allows or denies it on the
//! authorization endpoint's login and consent page; the device polls the token endpoint
//! (`token::device_code`).
pub mod verify;

use super::client_auth::{self, Credentials};
use super::params::Params;
use super::{OAuthError, store_failure};
use crate::App;
use crate::crypto::{random_bytes, random_token, sha256_b64};
use crate::domain::{DeviceGrant, DeviceStatus, GrantType, USER_CODE_ALPHABET, USER_CODE_LEN, display_user_code};
use crate::store::StoreError;
use serde::Serialize;

/// The answer to a device authorization request (RFC 8628 §3.2).
#[derive(Debug, Serialize)]
pub struct DeviceAuthorization {
    /// The device's secret: 256 random bits, stored only as a hash.
    pub device_code: String,
    /// What the user types: two groups of four letters (`BCDF-GHJK`).
    pub user_code: String,
    /// Where the user types it.
    pub verification_uri: String,
    /// The same page with the code filled in (for a QR code or a link).
    pub verification_uri_complete: String,
    /// Seconds until both codes expire.
    pub expires_in: i64,
    /// Seconds to wait between polls.
    pub interval: i64,
}

/// How often new codes are drawn when the store finds one of them in use.
const ATTEMPTS: usize = 4;

/// A new user code in canonical form: [`USER_CODE_LEN`] letters of the alphabet, each
/// drawn uniformly (bytes at or above the largest multiple of the alphabet's size are
/// drawn again, so no letter is likelier).
///
/// # Errors
/// No randomness.
pub fn new_user_code() -> Result<String, crate::crypto::RandomError> {
    let n = USER_CODE_ALPHABET.len();
    let limit = 256 - 256 % n;
    let mut code = String::with_capacity(USER_CODE_LEN);
    while code.len() < USER_CODE_LEN {
        for b in random_bytes::<16>()? {
            if let Some(&letter) = USER_CODE_ALPHABET.get(usize::from(b) % n)
                && usize::from(b) < limit
                && code.len() < USER_CODE_LEN
            {
                code.push(char::from(letter));
            }
        }
    }
    Ok(code)
}

/// `POST /oauth/device_authorization`: authenticate the client (or name a public one),
/// check that it registered the device grant, validate `scope` and `resource` as the
/// authorization endpoint does, and store the new request.
///
/// # Errors
/// `invalid_client`, `unauthorized_client`, `invalid_scope`, `invalid_target`; a 503 when
/// the store fails.
pub async fn authorize_device(
    app: &App,
    creds: &Credentials,
    params: &Params,
    now: time::OffsetDateTime,
) -> Result<DeviceAuthorization, OAuthError> {
    let client = client_auth::authenticate(app, creds).await?;
    if !client.allows(GrantType::DeviceCode) {
        return Err(OAuthError::UnauthorizedClient("this client may not use the device authorization grant".into()));
    }
    let catalog = super::resources::catalog(app, now.unix_timestamp()).await?;
    let (scope, resources) = super::resources::scope_and_resources(&client, &catalog, params)?;
    let d = &app.settings.device;
    let now = now.unix_timestamp();
    for _ in 0..ATTEMPTS {
        let device_code = random_token().map_err(OAuthError::server)?;
        let user_code = new_user_code().map_err(OAuthError::server)?;
        let grant = DeviceGrant {
            device_hash: sha256_b64(&device_code),
            user_code_hash: sha256_b64(&user_code),
            client_id: client.client_id.clone(),
            scope: scope.clone(),
            resources: resources.clone(),
            created_at: now,
            expires_at: now + d.code_ttl,
            interval: d.interval,
            next_poll: now,
            status: DeviceStatus::Pending,
        };
        match app.devices.put_device(&grant).await {
            Ok(()) => {
                tracing::info!(event = "device_authorization_started", client_id = %client.client_id, "device authorization request stored");
                let verification_uri = app.settings.url(crate::paths::DEVICE);
                let shown = display_user_code(&user_code);
                return Ok(DeviceAuthorization {
                    device_code,
                    verification_uri_complete: crate::oauth::authorize::redirect_to(
                        &verification_uri,
                        &[("user_code", &shown)],
                    ),
                    user_code: shown,
                    verification_uri,
                    expires_in: d.code_ttl,
                    interval: d.interval,
                });
            }
            Err(StoreError::AlreadyExists) => {}
            Err(e) => return Err(store_failure(e)),
        }
    }
    Err(OAuthError::server(anyhow::anyhow!("every new device or user code drawn was in use")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_user_codes_are_canonical_and_spread_over_the_alphabet() -> Result<(), crate::crypto::RandomError> {
        let mut counts = [0u32; 20];
        for _ in 0..500 {
            let code = new_user_code()?;
            assert_eq!(crate::domain::normalize_user_code(&code).as_deref(), Some(code.as_str()));
            for b in code.bytes() {
                let i = USER_CODE_ALPHABET.iter().position(|a| *a == b).unwrap_or(usize::MAX);
                counts[i] += 1;
            }
        }
        // 4000 letters over 20: 200 expected each; a letter never or twice as often drawn
        // would mean a broken draw.
        assert!(counts.iter().all(|c| (100..=300).contains(c)), "{counts:?}");
        Ok(())
    }
}
