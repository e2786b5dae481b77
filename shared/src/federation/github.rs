//! GitHub (OAuth 2.0, no OpenID Connect): the code exchanged with PKCE, then `GET /user`
//! (the identity is the numeric `id`, never the login name, which can change hands) and
//! `GET /user/emails` (the primary address and whether GitHub verified it, as stated).
use super::http::Auth;
use super::id_token::UpstreamIdentity;
use super::{Answer, Upstream, UpstreamError, Upstreams};
use crate::config::ProviderKind;
use crate::crypto::Secret;
use serde::Deserialize;

const ACCEPT: &str = "application/vnd.github+json";

#[derive(Deserialize)]
struct GithubUser {
    id: u64,
    login: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct GithubEmail {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

fn refused(why: impl Into<String>) -> UpstreamError {
    UpstreamError::Refused(why.into())
}

/// The address a GitHub account is known by: the primary one if verified, else any
/// verified one, else the primary one (unverified, and said so).
fn pick(emails: &[GithubEmail]) -> Option<&GithubEmail> {
    emails
        .iter()
        .find(|e| e.primary && e.verified)
        .or_else(|| emails.iter().find(|e| e.verified))
        .or_else(|| emails.iter().find(|e| e.primary))
}

pub(super) async fn sign_in(
    ups: &Upstreams,
    up: &Upstream,
    secret: &Secret,
    answer: Answer<'_>,
    now: i64,
) -> Result<UpstreamIdentity, UpstreamError> {
    let ProviderKind::Github { issuer, token_endpoint, api_base, .. } = &up.config.kind else {
        return Err(refused("not a GitHub provider"));
    };
    let form = [
        ("client_id", up.config.client_id.as_str()),
        ("client_secret", secret.expose()),
        ("code", answer.code),
        ("redirect_uri", answer.redirect_uri),
        ("code_verifier", answer.verifier),
    ];
    let (status, body) = ups.http()?.json(token_endpoint, Some(&form), Auth::None, "application/json").await?;
    // GitHub answers a refused code with 200 and an `error` field.
    if body.get("error").is_some() {
        return Err(super::code_refused(status, &body));
    }
    let token = body
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty() && t.len() <= 4096)
        .ok_or_else(|| refused("the token response has no access_token"))?;
    let (status, user) = ups.http()?.json(&format!("{api_base}/user"), None, Auth::Bearer(token), ACCEPT).await?;
    if status != 200 {
        return Err(refused(format!("{api_base}/user answered {status}")));
    }
    let user: GithubUser = serde_json::from_value(user).map_err(|e| refused(format!("{api_base}/user: {e}")))?;
    let (status, emails) =
        ups.http()?.json(&format!("{api_base}/user/emails"), None, Auth::Bearer(token), ACCEPT).await?;
    // No e-mail scope granted: the account is still known by its id.
    let emails: Vec<GithubEmail> =
        if status == 200 { serde_json::from_value(emails).unwrap_or_default() } else { Vec::new() };
    let email = pick(&emails);
    Ok(UpstreamIdentity {
        issuer: issuer.clone(),
        subject: user.id.to_string(),
        auth_time: now,
        email: email.map(|e| e.email.clone()),
        email_verified: email.is_some_and(|e| e.verified),
        name: user.name.filter(|n| !n.is_empty()).or(Some(user.login)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(email: &str, primary: bool, verified: bool) -> GithubEmail {
        GithubEmail { email: email.into(), primary, verified }
    }

    #[test]
    fn the_primary_verified_address_is_preferred_and_an_unverified_one_is_never_called_verified() {
        let all = [e("old@x", false, true), e("main@x", true, true), e("new@x", false, false)];
        assert_eq!(pick(&all).map(|m| m.email.as_str()), Some("main@x"));
        let unverified_primary = [e("main@x", true, false), e("work@x", false, true)];
        assert_eq!(pick(&unverified_primary).map(|m| (m.email.as_str(), m.verified)), Some(("work@x", true)));
        let none_verified = [e("main@x", true, false)];
        assert_eq!(pick(&none_verified).map(|m| (m.email.as_str(), m.verified)), Some(("main@x", false)));
        assert!(pick(&[]).is_none());
    }
}
