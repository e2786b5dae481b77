//! Validating an authorization request, in the order RFC 6749 §4.1.2.1 requires: first
//! where the answer may go ([`Reply`]: the client and its redirect URI, whose errors are
//! pages and never redirects), then what is asked ([`AuthorizationRequest`]: response
//! type, grant, PKCE, scope, nonce, prompt), whose errors are redirected to the client.
//! Both steps are pure; only the client lookup before them reads the store.
use crate::catalog::Catalog;
use crate::domain::{Client, GrantType, ResourceId, ScopeSet};
use crate::oauth::params::Params;
use crate::oauth::{OAuthError, pkce};

const MAX_STATE: usize = 1024;
const MAX_NONCE: usize = 512;
/// The largest `max_age` accepted (ten years, in seconds).
const MAX_MAX_AGE: i64 = 315_360_000;
/// Longest `client_id` looked up (a metadata document's URL may be this long; registered
/// ids are short); longer ones are unknown without a read.
pub const MAX_CLIENT_ID: usize = crate::oauth::cimd::MAX_URL_LEN;

/// Where and how an answer to this request is delivered (step 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The redirect URI: the one sent (exactly registered) or the client's only one.
    pub redirect_uri: String,
    /// Whether the request named it (then the token request must repeat it, §4.1.3).
    pub redirect_uri_sent: bool,
    /// The client's `state`, echoed in every redirect.
    pub state: Option<String>,
}

/// What a valid request asks for (step 2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The scope asked for, or the client's registered scope when none is named (then
    /// narrowed to what the requested resources define).
    pub scope: ScopeSet,
    /// The resource servers asked for (RFC 8707 `resource`), or the default API.
    pub resources: Vec<ResourceId>,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    /// The OIDC `nonce`, for the ID token.
    pub nonce: Option<String>,
    /// What `prompt` asks of the sign-in.
    pub prompt: Prompt,
    /// `max_age`: the longest time since the user's last password, in seconds.
    pub max_age: Option<i64>,
    /// `id_token_hint`, not yet verified (it needs the keys).
    pub id_token_hint: Option<String>,
}

/// The `prompt` values of OIDC Core §3.1.2.1, all supported (discovery lists them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `none`: answer without showing any page, or with an error.
    pub none: bool,
    /// `login`: ask for the password even with a live session.
    pub login: bool,
    /// `consent`: show the consent page even when the request was allowed before.
    pub consent: bool,
    /// `select_account`: let the user choose the account, which is signing in again
    /// (there is one account per browser session).
    pub select_account: bool,
}

/// Every `prompt` value this server supports.
pub const PROMPT_VALUES: [&str; 4] = ["none", "login", "consent", "select_account"];

impl Prompt {
    /// Parse `prompt`: space-separated known values; `none` alone.
    ///
    /// # Errors
    /// `invalid_request` for an unknown value, or `none` with another value ("If this
    /// parameter contains none with any other value, an error is returned", §3.1.2.1).
    pub fn parse(value: Option<&str>) -> Result<Self, OAuthError> {
        let mut p = Self::default();
        for v in value.unwrap_or_default().split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                "select_account" => p.select_account = true,
                other => {
                    let other: String = other.chars().filter(char::is_ascii_graphic).take(40).collect();
                    return Err(OAuthError::InvalidRequest(format!("prompt value {other:?} is not supported").into()));
                }
            }
        }
        if p.none && (p.login || p.consent || p.select_account) {
            return Err(OAuthError::invalid_request("prompt=none cannot be combined with other values"));
        }
        Ok(p)
    }

    /// Whether the password is asked for whatever the session.
    pub fn forces_login(self) -> bool {
        self.login || self.select_account
    }
}

/// The `client_id` to look up (step 1 begins here).
///
/// # Errors
/// The text of the error page: repeated or missing `client_id`, or one too long to exist.
pub fn client_id<'a>(params: &'a Params, repeated: &[String]) -> Result<&'a str, &'static str> {
    if repeated.iter().any(|k| k == "client_id" || k == "redirect_uri") {
        return Err("The request repeats client_id or redirect_uri.");
    }
    let id = params.get("client_id").ok_or("The request has no client_id.")?;
    if id.len() > MAX_CLIENT_ID {
        return Err("Unknown client.");
    }
    Ok(id)
}

/// Step 1 for a known client: the redirect URI (exact match against the registered ones)
/// and `state`.
///
/// # Errors
/// The text of the error page.
pub fn reply(client: &Client, params: &Params) -> Result<Reply, &'static str> {
    let (redirect_uri, redirect_uri_sent) = match params.get("redirect_uri") {
        Some(requested) if client.redirect_uris.iter().any(|r| r.matches(requested)) => (requested.to_owned(), true),
        Some(_) => return Err("The redirect_uri is not registered for this client."),
        None => match client.redirect_uris.as_slice() {
            [only] => (only.as_str().to_owned(), false),
            _ => return Err("The request must name one of the client's registered redirect URIs."),
        },
    };
    let state = params.get("state");
    if state.is_some_and(|s| s.len() > MAX_STATE) {
        return Err("The state parameter is too long.");
    }
    Ok(Reply { redirect_uri, redirect_uri_sent, state: state.map(str::to_owned) })
}

/// Step 2: everything else.
///
/// # Errors
/// The OAuth error to redirect to the client.
pub fn validate(
    client: &Client,
    catalog: &Catalog,
    params: &Params,
    repeated: &[String],
) -> Result<AuthorizationRequest, OAuthError> {
    // "Request and response parameters MUST NOT be included more than once." (RFC 6749 §3.1)
    if let Some(k) = repeated.first() {
        let k: String = k.chars().filter(|c| c.is_ascii_graphic()).take(40).collect();
        return Err(OAuthError::InvalidRequest(format!("parameter {k} is repeated").into()));
    }
    match params.get("response_type") {
        None => return Err(OAuthError::invalid_request("response_type is required")),
        Some("code") => {}
        Some(_) => return Err(OAuthError::UnsupportedResponseType("only response_type=code is supported".into())),
    }
    if !client.allows(GrantType::AuthorizationCode) {
        return Err(OAuthError::UnauthorizedClient("this client may not use the authorization code grant".into()));
    }
    // PKCE is required for every client (OAuth 2.1 §4.1.1, RFC 9700 §2.1.1); a missing
    // method means "plain" (RFC 7636 §4.3), which is refused.
    match params.get("code_challenge_method") {
        Some("S256") => {}
        None => {
            return Err(OAuthError::invalid_request("code_challenge_method=S256 is required (plain is not allowed)"));
        }
        Some(_) => return Err(OAuthError::invalid_request("code_challenge_method must be S256")),
    }
    let challenge =
        params.get("code_challenge").ok_or_else(|| OAuthError::invalid_request("code_challenge is required (PKCE)"))?;
    if !pkce::valid_s256_challenge(challenge) {
        return Err(OAuthError::invalid_request("code_challenge must be 43 base64url characters"));
    }
    let (scope, resources) = crate::oauth::resources::scope_and_resources(client, catalog, params)?;
    let nonce = params.get("nonce");
    if nonce.is_some_and(|n| n.len() > MAX_NONCE) {
        return Err(OAuthError::invalid_request("nonce is too long"));
    }
    let prompt = Prompt::parse(params.get("prompt"))?;
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .ok()
                .filter(|n| (0..=MAX_MAX_AGE).contains(n) && v.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| OAuthError::invalid_request("max_age must be a whole number of seconds"))?,
        ),
    };
    let id_token_hint = params.get("id_token_hint");
    if id_token_hint.is_some_and(|h| h.len() > crate::jwt::MAX_TOKEN_LEN) {
        return Err(OAuthError::invalid_request("id_token_hint is too long"));
    }
    Ok(AuthorizationRequest {
        scope,
        resources,
        code_challenge: challenge.to_owned(),
        nonce: nonce.map(str::to_owned),
        prompt,
        max_age,
        id_token_hint: id_token_hint.map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{AuthMethod, RedirectUri};

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client(redirects: &[&str], grants: &[GrantType], scope: &str) -> Client {
        Client {
            client_id: "cl_test".into(),
            secret_hash: None,
            client_name: None,
            redirect_uris: redirects.iter().filter_map(|r| RedirectUri::parse(r).ok()).collect(),
            grant_types: grants.to_vec(),
            auth_method: AuthMethod::None,
            scope: ScopeSet::parse(scope).unwrap_or_default(),
            id_token_signed_response_alg: crate::domain::SigningAlg::Es256,
            created_at: 0,
            trusted: false,
            post_logout_redirect_uris: vec![],
            dpop_bound_access_tokens: false,
        }
    }

    /// The built-in API (`https://as.test/api`, `data:read data:write`) and an orders API.
    pub(crate) fn catalog() -> Catalog {
        use crate::domain::{ResourceServer, Scope, ScopeDef};
        let def = |s: &str| ScopeDef { scope: Scope::parse(s).expect("valid"), description: s.into() };
        let server = |id: &str, scopes: &[&str]| ResourceServer {
            id: ResourceId::parse(id).expect("valid"),
            name: id.into(),
            scopes: scopes.iter().map(|s| def(s)).collect(),
            access_token_ttl: 900,
        };
        Catalog::new(
            server("https://as.test/api", &["data:read", "data:write"]),
            vec![server("https://orders.test", &["orders:read"])],
        )
    }

    fn parse(query: &str) -> (Params, Vec<String>) {
        Params::parse_lenient(query.as_bytes()).unwrap_or_else(|_| (Params::default(), Vec::new()))
    }

    #[test]
    fn step_one_names_the_client_and_where_the_answer_goes() {
        let long_id = format!("client_id={}", "a".repeat(MAX_CLIENT_ID + 1));
        let cases: [(&str, Result<&str, &str>); 4] = [
            ("client_id=cl_test", Ok("cl_test")),
            ("", Err("The request has no client_id.")),
            ("client_id=a&client_id=b", Err("The request repeats client_id or redirect_uri.")),
            (&long_id, Err("Unknown client.")),
        ];
        for (query, want) in cases {
            let (params, repeated) = parse(query);
            assert_eq!(client_id(&params, &repeated), want, "{query}");
        }
        let one = client(&["https://app.test/cb"], &[GrantType::AuthorizationCode], "openid");
        let two = client(&["https://app.test/cb", "https://app.test/other"], &[GrantType::AuthorizationCode], "openid");
        let long_state = format!("state={}", "s".repeat(MAX_STATE + 1));
        type Want = Result<(&'static str, bool, Option<&'static str>), &'static str>;
        let cases: [(&Client, &str, Want); 7] = [
            (
                &one,
                "redirect_uri=https%3A%2F%2Fapp.test%2Fcb&state=xyz",
                Ok(("https://app.test/cb", true, Some("xyz"))),
            ),
            (&one, "", Ok(("https://app.test/cb", false, None))),
            (&two, "redirect_uri=https%3A%2F%2Fapp.test%2Fother", Ok(("https://app.test/other", true, None))),
            (&two, "", Err("The request must name one of the client's registered redirect URIs.")),
            // Exact matching: no prefix, no case folding, no trailing slash.
            (
                &one,
                "redirect_uri=https%3A%2F%2Fapp.test%2Fcb%2F",
                Err("The redirect_uri is not registered for this client."),
            ),
            (
                &one,
                "redirect_uri=https%3A%2F%2FAPP.test%2Fcb",
                Err("The redirect_uri is not registered for this client."),
            ),
            (&one, &long_state, Err("The state parameter is too long.")),
        ];
        for (c, query, want) in cases {
            let (params, _) = parse(query);
            let got = reply(c, &params).map(|r| (r.redirect_uri, r.redirect_uri_sent, r.state));
            let want = want.map(|(u, sent, s)| (u.to_owned(), sent, s.map(str::to_owned)));
            assert_eq!(got, want, "{query}");
        }
    }

    #[test]
    fn step_two_checks_in_order_and_names_the_error() {
        type Expected = Option<(&'static str, &'static str)>;
        let web =
            client(&["https://app.test/cb"], &[GrantType::AuthorizationCode], "openid profile data:read orders:read");
        let machine = client(&[], &[GrantType::ClientCredentials], "data:read");
        let ok = format!("response_type=code&code_challenge_method=S256&code_challenge={CHALLENGE}");
        let with = |extra: &str| format!("{ok}&{extra}");
        let long_nonce = with(&format!("nonce={}", "n".repeat(MAX_NONCE + 1)));
        // (client, query, expected error code and a word of its description; None = valid)
        let cases: Vec<(&Client, String, Expected)> = vec![
            (&web, ok.clone(), None),
            (&web, with("scope=openid&nonce=abc"), None),
            (&web, format!("{ok}&state=a&state=b"), Some(("invalid_request", "state is repeated"))),
            // Repetition is checked before anything else, even a missing response_type.
            (&web, "scope=a&scope=b".into(), Some(("invalid_request", "repeated"))),
            (
                &web,
                format!("code_challenge_method=S256&code_challenge={CHALLENGE}"),
                Some(("invalid_request", "response_type")),
            ),
            (
                &web,
                ok.replace("response_type=code", "response_type=token"),
                Some(("unsupported_response_type", "code")),
            ),
            (&machine, ok.clone(), Some(("unauthorized_client", "authorization code"))),
            (&web, format!("response_type=code&code_challenge={CHALLENGE}"), Some(("invalid_request", "plain"))),
            (&web, ok.replace("S256", "plain"), Some(("invalid_request", "must be S256"))),
            (
                &web,
                "response_type=code&code_challenge_method=S256".into(),
                Some(("invalid_request", "code_challenge is required")),
            ),
            (&web, ok.replace(CHALLENGE, "short"), Some(("invalid_request", "43"))),
            (&web, with("scope=admin"), Some(("invalid_scope", "unknown scope"))),
            (&web, with("scope=a%22b"), Some(("invalid_scope", "malformed"))),
            // RFC 8707: each resource known and well-formed; scopes checked per resource.
            (&web, with("resource=https%3A%2F%2Forders.test%2F&scope=orders:read"), None),
            (&web, with("resource=https%3A%2F%2Forders.test&resource=https%3A%2F%2Fas.test%2Fapi"), None),
            (&web, with("resource=https%3A%2F%2Fother.test"), Some(("invalid_target", "not one this server"))),
            (&web, with("resource=https%3A%2F%2Forders.test%23x"), Some(("invalid_target", "fragment"))),
            (&web, with("resource=%2Fapi"), Some(("invalid_target", "absolute"))),
            (&web, with("scope=orders:read"), Some(("invalid_scope", "not defined by the requested resource"))),
            (
                &web,
                with("resource=https%3A%2F%2Forders.test&scope=data:read"),
                Some(("invalid_scope", "not defined by the requested resource")),
            ),
            (&web, with("scope=data:write"), Some(("invalid_scope", "not allowed"))),
            // "Parameters sent without a value MUST be treated as if they were omitted" (§3.1).
            (&web, with("scope="), None),
            (&web, long_nonce, Some(("invalid_request", "nonce"))),
            (&web, with("prompt=none"), None),
            (&web, with("prompt=login%20consent"), None),
            (&web, with("prompt=select_account"), None),
            (&web, with("prompt=login%20none"), Some(("invalid_request", "combined"))),
            (&web, with("prompt=create"), Some(("invalid_request", "\"create\" is not supported"))),
            (&web, with("max_age=0"), None),
            (&web, with("max_age=-1"), Some(("invalid_request", "max_age"))),
            (&web, with("max_age=%2B5"), Some(("invalid_request", "max_age"))),
            (&web, with("max_age=99999999999"), Some(("invalid_request", "max_age"))),
            (&web, with(&format!("id_token_hint={}", "h".repeat(9000))), Some(("invalid_request", "id_token_hint"))),
        ];
        for (c, query, want) in cases {
            let (params, repeated) = parse(&query);
            match (validate(c, &catalog(), &params, &repeated), want) {
                (Ok(_), None) => {}
                (Err(e), Some((code, word))) => {
                    assert_eq!(e.code(), code, "{query}");
                    assert!(e.description().contains(word), "{query}: {}", e.description());
                }
                (got, want) => assert_eq!(format!("{got:?}"), format!("{want:?}"), "{query}"),
            }
        }
    }

    #[test]
    fn a_valid_request_defaults_to_the_clients_scope_and_keeps_pkce_and_nonce() {
        let web = client(&["https://app.test/cb"], &[GrantType::AuthorizationCode], "openid data:read orders:read");
        let query = format!("response_type=code&code_challenge_method=S256&code_challenge={CHALLENGE}&nonce=n-1");
        let (params, repeated) = parse(&query);
        let got = validate(&web, &catalog(), &params, &repeated).map_err(|e| e.to_string());
        assert_eq!(
            got,
            Ok(AuthorizationRequest {
                // The default API's part of the client's scope.
                scope: ScopeSet::parse("openid data:read").unwrap_or_default(),
                resources: vec![ResourceId::parse("https://as.test/api").expect("valid")],
                code_challenge: CHALLENGE.into(),
                nonce: Some("n-1".into()),
                prompt: Prompt::default(),
                max_age: None,
                id_token_hint: None,
            })
        );
    }
}
