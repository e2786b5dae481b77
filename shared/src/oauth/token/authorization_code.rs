//! `grant_type=authorization_code` (RFC 6749 §4.1.3, RFC 7636 §4.5–4.6): the code must be
//! the client's, unexpired and unused, with the same redirect URI and a PKCE verifier that
//! matches. Mismatches consume nothing; a second *valid* redemption is a replay and revokes
//! everything the code produced (RFC 6749 §4.1.2, OAuth 2.1 §7.5.2).
use super::{TokenResponse, UserGrant, issue_user_tokens};
use crate::App;
use crate::catalog::Catalog;
use crate::crypto::sha256_b64;
use crate::domain::{AuthCode, Client, GrantType, RefreshFamily, RefreshRecord, Scope};
use crate::oauth::{OAuthError, pkce, store_failure};
use crate::store::{Consume, Issue};

fn invalid_grant(d: &'static str) -> OAuthError {
    OAuthError::InvalidGrant(d.into())
}

/// What the token request says besides the code.
pub(super) struct Asked<'a> {
    /// `redirect_uri`.
    pub redirect_uri: Option<&'a str>,
    /// `code_verifier`.
    pub code_verifier: Option<&'a str>,
    /// `resource` values.
    pub resource: &'a [&'a str],
    /// The key of the request's verified DPoP proof, if any.
    pub dpop: Option<&'a str>,
}

/// Redeem `code` for `client` (whose registration allows this grant).
///
/// # Errors
/// `invalid_grant`; `invalid_target` for a resource the code was not authorized for.
pub(super) async fn grant(
    app: &App,
    catalog: &Catalog,
    client: &Client,
    code: &str,
    asked: Asked<'_>,
    now_dt: time::OffsetDateTime,
) -> Result<TokenResponse, OAuthError> {
    let Asked { redirect_uri, code_verifier, resource, dpop } = asked;
    if code.len() > crate::crypto::MAX_OPAQUE_TOKEN_LEN {
        return Err(invalid_grant("the code is invalid"));
    }
    let code_hash = sha256_b64(code);
    let now = now_dt.unix_timestamp();
    let Some(record) = app.codes.code(&code_hash).await.map_err(store_failure)? else {
        return Err(invalid_grant("the code is invalid, expired or already used"));
    };
    // Binding checks first: a request that fails them proves nothing and changes nothing (docs/SECURITY.md B4, B5).
    if record.client_id != client.client_id {
        return Err(invalid_grant("the code was issued to another client"));
    }
    // "ensure that the redirect_uri parameter is present if the redirect_uri parameter was
    // included in the initial authorization request ... and if included ensure that their
    // values are identical." (RFC 6749 §4.1.3)
    let redirect_ok = match (record.redirect_uri_sent, redirect_uri) {
        (true, Some(r)) => r == record.redirect_uri,
        (true, None) => false,
        (false, Some(r)) => r == record.redirect_uri,
        (false, None) => true,
    };
    if !redirect_ok {
        return Err(invalid_grant("redirect_uri does not match the authorization request"));
    }
    // A code always carries a challenge here; the check also refuses a verifier sent for a
    // code without one (PKCE downgrade, RFC 9700 §4.8.2).
    let verifier = code_verifier.unwrap_or_default();
    if record.code_challenge.is_empty() || !pkce::verify(verifier, &record.code_challenge) {
        return Err(invalid_grant("code_verifier does not match the code_challenge"));
    }
    // A code bound to a key (`dpop_jkt`) needs a proof by it (RFC 9449 §10); refused, the
    // code is still usable.
    super::require_key(record.dpop_jkt.as_deref(), dpop)?;
    if record.consumed_at.is_some() {
        return Err(replay(app, &record.family_id, &client.client_id, now).await);
    }
    if record.expires_at <= now {
        return Err(invalid_grant("the code has expired"));
    }
    let redeem =
        Redeem { code_hash: &code_hash, resource, dpop, grant_type: "authorization_code", revoke_on_replay: true };
    redeem.run(app, catalog, client, record, now_dt).await
}

/// The redemption of a checked, unexpired approval (an authorization code, or a device
/// request's approval): one atomic write consumes it with what it issues.
pub(super) struct Redeem<'a> {
    /// The approval's key.
    pub code_hash: &'a str,
    /// `resource` values.
    pub resource: &'a [&'a str],
    /// The key of the request's verified DPoP proof, if any.
    pub dpop: Option<&'a str>,
    /// The grant, for the audit event.
    pub grant_type: &'static str,
    /// A second valid redemption revokes what the first issued (a code delivered through
    /// the browser); a device's concurrent polls only lose.
    pub revoke_on_replay: bool,
}

impl Redeem<'_> {
    /// Consume `record` for `client` and issue its tokens.
    ///
    /// # Errors
    /// `invalid_grant` (used, withdrawn); `invalid_target` for a resource it was not
    /// authorized for.
    pub(super) async fn run(
        self,
        app: &App,
        catalog: &Catalog,
        client: &Client,
        record: AuthCode,
        now_dt: time::OffsetDateTime,
    ) -> Result<TokenResponse, OAuthError> {
        let Redeem { code_hash, resource, dpop, grant_type, revoke_on_replay } = self;
        let now = now_dt.unix_timestamp();
        // The access token's one audience, among those the code was authorized for (RFC 8707
        // §2.2); checked before the code is consumed, so a wrong `resource` costs nothing.
        let audience = catalog.one_of(resource, &record.resources)?;
        let token_scope = catalog.scope_for(&audience, &record.scope);
        let refresh =
            issue_refresh(client, &record).then(|| new_refresh(app, &record, client, dpop, now)).transpose()?;
        // Identifies this redemption, so a retried write is not mistaken for a replay (docs/SECURITY.md R2).
        let request_id = crate::crypto::random_id("req_").map_err(OAuthError::server)?;
        // A used code is kept while what it issues may live, so a replay can still revoke it.
        let family_ends = refresh.as_ref().map_or(now, |(_, r)| r.family_expires_at);
        let until = crate::oauth::revoke::family_revocation_until(app, family_ends);
        let retain_until = time::OffsetDateTime::from_unix_timestamp(record.expires_at).map_or(until, |e| until.max(e));
        // The family's entry in the user's account lasts as long as its revocation would.
        let family = refresh.as_ref().map(|(_, r)| RefreshFamily {
            sub: r.sub.clone(),
            client_id: r.client_id.clone(),
            family_id: r.family_id.clone(),
            session: r.session.clone(),
            created_at: now,
            expires_at: until.unix_timestamp(),
        });
        let issue = Issue {
            sub: &record.sub,
            client_id: &record.client_id,
            refresh: refresh.as_ref().map(|(_, r)| r).zip(family.as_ref()),
        };
        let consumed = app.codes.consume_code(code_hash, now_dt, retain_until, &request_id, issue).await;
        match consumed.map_err(store_failure)? {
            Consume::Fresh => {
                let code = record;
                tracing::info!(event = "token_issued", grant_type, client_id = %client.client_id, sub = %code.sub, family_id = %code.family_id, "tokens issued");
                let g = UserGrant {
                    sub: &code.sub,
                    scope: &token_scope,
                    resource: (&audience, catalog.ttl(&audience)),
                    family_id: &code.family_id,
                    auth_time: code.auth_time,
                    amr: code.amr,
                    nonce: code.nonce.as_deref(),
                    refresh_token: refresh.map(|(t, _)| t),
                    id_token: true,
                    jkt: dpop,
                };
                issue_user_tokens(app, client, g, now)
            }
            // Lost a race with a concurrent redemption of the same valid code: also a replay.
            Consume::Replayed(code) if revoke_on_replay => {
                Err(replay(app, &code.family_id, &client.client_id, now).await)
            }
            Consume::Replayed(_) | Consume::Missing => {
                Err(invalid_grant("the code is invalid, expired or already used"))
            }
            // The user disconnected the client or signed out since the code was issued.
            Consume::Withdrawn => Err(invalid_grant("the consent or sign-in behind the code has ended")),
        }
    }
}

/// Whether a refresh token comes with the grant: the client registered the refresh grant,
/// and either `offline_access` was granted or the code came from a sign-in session, which
/// the family then ends with (docs/API.md, "Sessions and consent").
fn issue_refresh(client: &Client, code: &AuthCode) -> bool {
    client.allows(GrantType::RefreshToken) && (code.scope.contains(&Scope::OFFLINE_ACCESS) || code.session.is_some())
}

fn new_refresh(
    app: &App,
    code: &AuthCode,
    client: &Client,
    dpop: Option<&str>,
    now: i64,
) -> Result<(String, RefreshRecord), OAuthError> {
    let token = crate::crypto::random_token().map_err(OAuthError::server)?;
    // "offline_access ... requests that an OAuth 2.0 Refresh Token be issued that can be used
    // to obtain an Access Token that grants access to the End-User's UserInfo Endpoint even
    // when the End-User is not present (not logged in)" (OIDC Core §11). Without it the
    // family is the session's: it works while the session lives (the store checks it at
    // every rotation), and ends at the session's absolute end at the latest.
    let session = if code.scope.contains(&Scope::OFFLINE_ACCESS) { None } else { code.session.as_ref() };
    let mut family_expires_at = now + app.settings.refresh_absolute_ttl;
    if let Some(s) = session {
        family_expires_at = family_expires_at.min(s.expires_at);
    }
    let record = RefreshRecord {
        token_hash: sha256_b64(&token),
        family_id: code.family_id.clone(),
        client_id: client.client_id.clone(),
        sub: code.sub.clone(),
        scope: code.scope.clone(),
        auth_time: code.auth_time,
        issued_at: now,
        expires_at: (now + app.settings.refresh_idle_ttl).min(family_expires_at),
        family_expires_at,
        rotated_at: None,
        rotated_to: None,
        session: session.map(|s| s.id_hash.clone()),
        resources: code.resources.clone(),
        // A public client's refresh tokens are bound to its DPoP key (RFC 9449 §5); a
        // confidential client's are bound to its authentication already.
        jkt: dpop.filter(|_| client.auth_method == crate::domain::AuthMethod::None).map(str::to_owned),
    };
    Ok((token, record))
}

/// A valid replay: revoke the family (its refresh and access tokens) and refuse.
async fn replay(app: &App, family_id: &str, client_id: &str, now: i64) -> OAuthError {
    // The family began at the code's login, before now: it ends before now + its lifetime.
    let family_ends = now.saturating_add(app.settings.refresh_absolute_ttl);
    let until = crate::oauth::revoke::family_revocation_until(app, family_ends);
    if let Err(e) = app.tokens.revoke_family(family_id, until).await {
        return store_failure(e);
    }
    tracing::warn!(event = "code_replay_detected", client_id = %client_id, family_id = %family_id, "authorization code replayed; its tokens are revoked");
    invalid_grant("the code is invalid, expired or already used")
}
