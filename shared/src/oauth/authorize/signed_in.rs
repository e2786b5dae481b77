//! What a request from a signed-in browser gets (docs/API.md, "Sessions and consent"):
//! the code at once, the consent page, or the password form, from the session, the
//! remembered consent, `prompt`, `max_age` and `id_token_hint`. Pure: the reads happen
//! before ([`crate::oauth::session::find`]: one read for the session and the grant).
use super::request::AuthorizationRequest;
use crate::domain::{AuthMethod, Client, ConsentGrant, ScopeSet, Session};

/// What an `id_token_hint` turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// The request had none.
    Absent,
    /// An ID token this server issued, for this user.
    User(String),
    /// Not an ID token this server issued (or signed by a key it no longer has): it names
    /// nobody, so only a fresh login can satisfy the request.
    Unverified,
}

/// The answer to an authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The password form (`login_required` under `prompt=none`).
    Login,
    /// The consent page for the signed-in user, listing `new` (the scopes not allowed
    /// before; empty when everything was, but the client cannot be answered silently):
    /// `consent_required` (something is new) or `interaction_required` under `prompt=none`.
    Consent {
        /// The scopes asked for and not granted yet.
        new: ScopeSet,
        /// Whether a resource server asked for was not allowed before (RFC 8707: consent is
        /// to scopes on named resource servers, so a new one needs the user's consent).
        new_resource: bool,
    },
    /// The code, at once: no page.
    Issue,
}

/// Whether a request may be answered without the user: only for a client that
/// authenticates at the token endpoint and redirects to an https URI, since the identity of
/// a public or native client cannot be assured (RFC 8252 §8.6, RFC 9700 §2.1).
pub fn may_answer_silently(client: &Client, redirect_uri: &str) -> bool {
    let https_host = url::Url::parse(redirect_uri)
        .ok()
        .filter(|u| u.scheme() == "https")
        .and_then(|u| u.host_str().map(|h| !crate::domain::is_loopback_host(h)))
        .unwrap_or(false);
    client.auth_method != AuthMethod::None && client.secret_hash.is_some() && https_host
}

/// Decide at `now` for `asked` (already validated) from `signed_in`, the browser's live
/// session and its user's grant to the client.
pub fn decide(
    client: &Client,
    redirect_uri: &str,
    asked: &AuthorizationRequest,
    signed_in: Option<&(Session, Option<ConsentGrant>)>,
    hint: &Hint,
    now: i64,
) -> Decision {
    let Some((session, grant)) = signed_in else { return Decision::Login };
    // "max_age ... If the elapsed time is greater than this value, the OP MUST attempt to
    // actively re-authenticate the End-User"; max_age=0 is prompt=login (OIDC Core §3.1.2.1).
    let too_old = asked.max_age.is_some_and(|m| m == 0 || now.saturating_sub(session.auth_time) > m);
    let other_user = match hint {
        Hint::Absent => false,
        Hint::User(sub) => *sub != session.sub,
        Hint::Unverified => true,
    };
    if asked.prompt.forces_login() || too_old || other_user {
        return Decision::Login;
    }
    let (new, new_resource) = match grant {
        Some(g) => (asked.scope.difference(&g.scope), asked.resources.iter().any(|r| !g.resources.contains(r))),
        None => (asked.scope.clone(), !asked.resources.is_empty()),
    };
    if new.is_empty() && !new_resource && !asked.prompt.consent && may_answer_silently(client, redirect_uri) {
        Decision::Issue
    } else {
        Decision::Consent { new, new_resource }
    }
}

#[cfg(test)]
mod tests {
    use super::super::request::Prompt;
    use super::*;
    use crate::domain::{AuthMethodRef, GrantType};

    fn client(method: AuthMethod) -> Client {
        Client {
            client_id: "cl_1".into(),
            secret_hash: (method != AuthMethod::None).then(|| "h".into()),
            client_name: None,
            redirect_uris: vec![],
            grant_types: vec![GrantType::AuthorizationCode],
            auth_method: method,
            scope: scope("openid profile data:read"),
            id_token_signed_response_alg: crate::domain::SigningAlg::Rs256,
            created_at: 0,
            trusted: false,
            post_logout_redirect_uris: vec![],
            dpop_bound_access_tokens: false,
        }
    }

    fn scope(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap_or_default()
    }

    fn asked(s: &str, prompt: Prompt, max_age: Option<i64>) -> AuthorizationRequest {
        AuthorizationRequest {
            scope: scope(s),
            resources: vec![api()],
            code_challenge: String::new(),
            nonce: None,
            prompt,
            max_age,
            id_token_hint: None,
        }
    }

    fn api() -> crate::domain::ResourceId {
        crate::domain::ResourceId::parse("https://as.test/api").expect("valid")
    }

    fn signed_in(granted: Option<&str>) -> (Session, Option<ConsentGrant>) {
        let session = Session {
            id_hash: "h".into(),
            sub: "usr_1".into(),
            auth_time: 1_000,
            method: AuthMethodRef::Password,
            created_at: 1_000,
            last_seen: 1_000,
            idle_expires_at: 9_000,
            expires_at: 9_000,
        };
        let grant = granted.map(|g| ConsentGrant {
            sub: "usr_1".into(),
            client_id: "cl_1".into(),
            scope: scope(g),
            resources: vec![api()],
            granted_at: 1_000,
            updated_at: 1_000,
            last_used: None,
        });
        (session, grant)
    }

    /// (client, redirect URI, scope asked, prompt, max_age, the session's grant (`None`: no
    /// session), hint, expected).
    type Case<'a> = (&'a Client, &'a str, &'a str, Prompt, Option<i64>, Option<Option<&'a str>>, &'a Hint, Decision);

    #[test]
    fn a_signed_in_user_gets_the_code_only_for_what_a_confidential_web_client_was_allowed() {
        let web = client(AuthMethod::ClientSecretBasic);
        let public = client(AuthMethod::None);
        let none = Prompt { none: true, ..Prompt::default() };
        let consent = Prompt { consent: true, ..Prompt::default() };
        let login = Prompt { login: true, ..Prompt::default() };
        let select = Prompt { select_account: true, ..Prompt::default() };
        let cb = "https://app.test/cb";
        let new = |s: &str| Decision::Consent { new: scope(s), new_resource: false };
        let first = |s: &str| Decision::Consent { new: scope(s), new_resource: true };
        let me = Hint::User("usr_1".into());
        let other = Hint::User("usr_2".into());
        // (client, redirect, scope asked, prompt, max_age, granted, hint, expected)
        let cases: Vec<Case<'_>> = vec![
            (&web, cb, "openid", none, None, None, &Hint::Absent, Decision::Login),
            (&web, cb, "openid", none, None, Some(None), &Hint::Absent, first("openid")),
            (&web, cb, "openid", none, None, Some(Some("openid profile")), &Hint::Absent, Decision::Issue),
            (&web, cb, "openid data:read", none, None, Some(Some("openid")), &Hint::Absent, new("data:read")),
            (&web, cb, "openid", consent, None, Some(Some("openid")), &Hint::Absent, new("")),
            (&web, cb, "openid", login, None, Some(Some("openid")), &Hint::Absent, Decision::Login),
            (&web, cb, "openid", select, None, Some(Some("openid")), &Hint::Absent, Decision::Login),
            (&public, cb, "openid", none, None, Some(Some("openid")), &Hint::Absent, new("")),
            (&web, "http://127.0.0.1:8080/cb", "openid", none, None, Some(Some("openid")), &Hint::Absent, new("")),
            (&web, "com.example.app:/cb", "openid", none, None, Some(Some("openid")), &Hint::Absent, new("")),
            // Signed in at 1000, now 1500: 500 s ago.
            (&web, cb, "openid", none, Some(500), Some(Some("openid")), &Hint::Absent, Decision::Issue),
            (&web, cb, "openid", none, Some(499), Some(Some("openid")), &Hint::Absent, Decision::Login),
            (&web, cb, "openid", none, Some(0), Some(Some("openid")), &Hint::Absent, Decision::Login),
            (&web, cb, "openid", none, None, Some(Some("openid")), &me, Decision::Issue),
            (&web, cb, "openid", none, None, Some(Some("openid")), &other, Decision::Login),
            (&web, cb, "openid", none, None, Some(Some("openid")), &Hint::Unverified, Decision::Login),
        ];
        for (i, (c, redirect, s, prompt, max_age, granted, hint, want)) in cases.into_iter().enumerate() {
            let session = granted.map(signed_in);
            let got = decide(c, redirect, &asked(s, prompt, max_age), session.as_ref(), hint, 1_500);
            assert_eq!(got, want, "case {i}: {s} {prompt:?} {max_age:?} {granted:?} {hint:?}");
        }
        // A resource server not allowed before needs the user, even with every scope granted
        // (a scopeless MCP server's tokens would otherwise be issued silently).
        let orders = crate::domain::ResourceId::parse("https://orders.test").expect("valid");
        let other_api = AuthorizationRequest { resources: vec![orders], ..asked("openid", none, None) };
        let granted = signed_in(Some("openid profile"));
        let got = decide(&web, cb, &other_api, Some(&granted), &Hint::Absent, 1_500);
        assert_eq!(got, first(""));
        let both = AuthorizationRequest { resources: vec![api()], ..other_api };
        assert_eq!(decide(&web, cb, &both, Some(&granted), &Hint::Absent, 1_500), Decision::Issue);
    }
}
