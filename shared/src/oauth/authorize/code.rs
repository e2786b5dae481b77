//! Issuing the authorization code once the user has signed in and allowed the request:
//! 256 random bits, stored only as a hash, bound to the client, redirect URI, PKCE
//! challenge, scope and nonce of the sealed request, single use, 60 seconds.
use super::{Outcome, redirect_to};
use crate::App;
use crate::crypto::{random_id, random_token, sha256_b64};
use crate::domain::{AuthCode, ScopeSet, Session, SessionRef};
use crate::oauth::sealed::PendingRequest;
use crate::oauth::{OAuthError, store_failure};
use time::OffsetDateTime;

/// How long an authorization code lives (RFC 6749 §4.1.2: "maximum ... of 10 minutes").
pub const CODE_TTL_SECONDS: i64 = 60;

/// Store a new code answering `pending` at `now` for the user of `session`, with the
/// session's `auth_time`; returns the code.
///
/// # Errors
/// No randomness, or the store failed.
pub async fn issue(app: &App, pending: &PendingRequest, session: &Session, now: i64) -> Result<String, OAuthError> {
    let code = random_token().map_err(OAuthError::server)?;
    let record = record(pending, session, sha256_b64(&code), now + CODE_TTL_SECONDS)?;
    app.codes.put_code(&record).await.map_err(store_failure)?;
    tracing::info!(event = "code_issued", sub = %session.sub, client_id = %pending.client_id, family_id = %record.family_id, "authorization code issued");
    Ok(code)
}

/// The code record answering `pending` for the user of `session`, keyed by `code_hash`,
/// until `expires_at`, with a new refresh family id.
///
/// # Errors
/// No randomness, or a malformed sealed scope.
pub fn record(
    pending: &PendingRequest,
    session: &Session,
    code_hash: String,
    expires_at: i64,
) -> Result<AuthCode, OAuthError> {
    Ok(AuthCode {
        code_hash,
        client_id: pending.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        redirect_uri_sent: pending.redirect_uri_sent,
        code_challenge: pending.code_challenge.clone(),
        scope: ScopeSet::parse(&pending.scope)
            .map_err(|s| OAuthError::server(anyhow::anyhow!("sealed scope {s:?} is malformed")))?,
        nonce: pending.nonce.clone(),
        sub: session.sub.clone(),
        auth_time: session.auth_time,
        family_id: random_id("fam_").map_err(OAuthError::server)?,
        expires_at,
        consumed_at: None,
        consumed_by: None,
        session: Some(SessionRef { id_hash: session.id_hash.clone(), expires_at: session.expires_at }),
        resources: pending.resources.clone(),
        amr: Some(session.method),
        dpop_jkt: pending.dpop_jkt.clone(),
    })
}

/// Answer `pending` for the user of `session`, who allowed it: approve the device it
/// stands for, or redirect to the client with a code.
pub(super) async fn answer(
    app: &App,
    pending: &PendingRequest,
    session: &Session,
    now: OffsetDateTime,
) -> Result<Outcome, Outcome> {
    match &pending.device {
        Some(device) => crate::oauth::device::verify::approve(app, pending, device, session, now).await,
        None => issue_and_redirect(app, pending, session, now).await,
    }
}

/// Issue a code for the user of `session` and redirect to the client with it.
pub(super) async fn issue_and_redirect(
    app: &App,
    pending: &PendingRequest,
    session: &Session,
    now: OffsetDateTime,
) -> Result<Outcome, Outcome> {
    let code = issue(app, pending, session, now.unix_timestamp()).await.map_err(|e| {
        tracing::error!(error = %e, "could not issue a code");
        Outcome::Unavailable
    })?;
    let mut params = vec![("code", code.as_str())];
    if let Some(st) = pending.state.as_deref() {
        params.push(("state", st));
    }
    params.push(("iss", &app.settings.issuer));
    Ok(Outcome::Redirect(redirect_to(&pending.redirect_uri, &params)))
}
