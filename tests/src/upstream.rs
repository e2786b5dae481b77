//! An upstream identity provider on 127.0.0.1 for the federation tests: an OpenID provider
//! (discovery, authorization endpoint that signs the configured user in at once, token
//! endpoint checking the client secret, the code, the redirect URI and PKCE, JWKS), or a
//! GitHub-shaped server (`/login/oauth/authorize`, `/login/oauth/access_token`, `/user`,
//! `/user/emails`). It can be made hostile: each ID-token check forged, its `iss` answer
//! wrong, or its keys rotated. It records what it was asked, so tests can see what went
//! upstream.
use anyhow::Result;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oauth_core::keys::{KeySet, KeySetDoc, SigningAlg};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The client id our server has at the upstream.
pub const CLIENT_ID: &str = "our-rp";
/// Its secret there.
pub const CLIENT_SECRET: &str = "upstream-client-secret-0123456789";

/// What the ID token gets wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forge {
    /// Nothing: a valid token.
    None,
    /// `iss` of another provider.
    Issuer,
    /// `aud` of another client.
    Audience,
    /// No `nonce`.
    NoNonce,
    /// Another `nonce`.
    WrongNonce,
    /// Expired an hour ago.
    Expired,
    /// `alg: none`, no signature.
    AlgNone,
    /// HS256 keyed with the provider's public JWKS.
    Hs256WithPublicKey,
    /// Signed by a key whose `kid` the JWKS does not have.
    UnknownKid,
}

/// The user the provider signs in.
#[derive(Debug, Clone)]
pub struct UpUser {
    /// `sub` (GitHub: the numeric id).
    pub sub: String,
    /// GitHub's login name.
    pub login: String,
    /// `email`.
    pub email: String,
    /// `email_verified`.
    pub email_verified: bool,
}

/// The provider's state, changed by the tests.
pub struct UpState {
    /// Its base URL (and OIDC issuer).
    pub base: String,
    /// GitHub-shaped rather than OpenID.
    pub github: bool,
    /// The user signed in.
    pub user: UpUser,
    /// The ID token's forgery.
    pub forge: Forge,
    /// Answer the authorization request with `error=access_denied`.
    pub deny: bool,
    /// The `iss` its authorization responses carry (RFC 9207); `None`: none.
    pub iss: Option<String>,
    /// What discovery says of `authorization_response_iss_parameter_supported`.
    pub advertise_iss: bool,
    /// The authorization requests it received (their parameters).
    pub authorize_requests: Vec<HashMap<String, String>>,
    /// How often its JWKS was fetched.
    pub jwks_fetches: u32,
    /// How often its token endpoint was called.
    pub token_calls: u32,
    keys: KeySet,
    other_keys: KeySet,
    codes: HashMap<String, (String, String, Option<String>)>,
}

impl UpState {
    /// Serve the other key set from now on (the provider rotated its keys).
    pub fn rotate_keys(&mut self) {
        std::mem::swap(&mut self.keys, &mut self.other_keys);
    }
}

/// A running upstream.
pub struct Upstream {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    state: Arc<Mutex<UpState>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

type Shared = Arc<Mutex<UpState>>;

fn lock(s: &Shared) -> MutexGuard<'_, UpState> {
    s.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Upstream {
    /// Start an OpenID provider (`github: false`) or a GitHub-shaped server.
    ///
    /// # Errors
    /// No port, or no keys.
    pub async fn start(github: bool) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let keys = || -> Result<KeySet> {
            Ok(KeySet::from_doc(&KeySetDoc::generate(&[SigningAlg::Rs256, SigningAlg::Es256])?)?)
        };
        let state = Arc::new(Mutex::new(UpState {
            base: base.clone(),
            github,
            user: UpUser {
                sub: "248289761001".into(),
                login: "octo".into(),
                email: "fed@idp.example".into(),
                email_verified: true,
            },
            forge: Forge::None,
            deny: false,
            iss: (!github).then(|| base.clone()),
            advertise_iss: !github,
            authorize_requests: Vec::new(),
            jwks_fetches: 0,
            token_calls: 0,
            keys: keys()?,
            other_keys: keys()?,
            codes: HashMap::new(),
        }));
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/authorize", get(authorize))
            .route("/login/oauth/authorize", get(authorize))
            .route("/token", post(token))
            .route("/login/oauth/access_token", post(token))
            .route("/jwks", get(jwks))
            .route("/user", get(user))
            .route("/user/emails", get(emails))
            .with_state(state.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self { base, state, shutdown: Some(tx) })
    }

    /// The provider's state, to change or inspect.
    pub fn state(&self) -> MutexGuard<'_, UpState> {
        lock(&self.state)
    }

    /// The `FEDERATION_PROVIDERS` entry of this provider as `id`, its secret in `secret_file`.
    pub fn provider_json(&self, id: &str, name: &str, secret_file: &str) -> Value {
        if lock(&self.state).github {
            json!({"id": id, "name": name, "kind": "github", "issuer": self.base, "client_id": CLIENT_ID,
                   "client_secret_file": secret_file,
                   "authorization_endpoint": format!("{}/login/oauth/authorize", self.base),
                   "token_endpoint": format!("{}/login/oauth/access_token", self.base), "api_base": self.base})
        } else {
            json!({"id": id, "name": name, "kind": "oidc", "issuer": self.base, "client_id": CLIENT_ID,
                   "client_secret_file": secret_file})
        }
    }
}

async fn discovery(State(s): State<Shared>) -> Response {
    let s = lock(&s);
    let b = &s.base;
    axum::Json(json!({
        "issuer": b, "authorization_endpoint": format!("{b}/authorize"), "token_endpoint": format!("{b}/token"),
        "jwks_uri": format!("{b}/jwks"), "response_types_supported": ["code"], "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"], "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "authorization_response_iss_parameter_supported": s.advertise_iss,
    }))
    .into_response()
}

fn redirect(to: &str) -> Response {
    (StatusCode::FOUND, [(axum::http::header::LOCATION, to.to_owned())]).into_response()
}

async fn authorize(State(s): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut s = lock(&s);
    s.authorize_requests.push(q.clone());
    let Some(redirect_uri) = q.get("redirect_uri") else {
        return (StatusCode::BAD_REQUEST, "no redirect_uri").into_response();
    };
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    if s.deny {
        out.append_pair("error", "access_denied");
    } else {
        let code = oauth_core::crypto::random_token().unwrap_or_default();
        let challenge = q.get("code_challenge").cloned().unwrap_or_default();
        s.codes.insert(code.clone(), (redirect_uri.clone(), challenge, q.get("nonce").cloned()));
        out.append_pair("code", &code);
    }
    if let Some(st) = q.get("state") {
        out.append_pair("state", st);
    }
    if let Some(iss) = &s.iss {
        out.append_pair("iss", iss);
    }
    redirect(&format!("{redirect_uri}?{}", out.finish()))
}

fn s256(verifier: &str) -> String {
    oauth_core::oauth::pkce::s256(verifier)
}

/// The client's id and secret: HTTP Basic (OIDC) or form fields (GitHub).
fn client_auth(headers: &HeaderMap, form: &HashMap<String, String>) -> Option<(String, String)> {
    if let Some(basic) =
        headers.get("authorization").and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(basic).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let dec =
            |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
        return Some((dec(id)?, dec(secret)?));
    }
    Some((form.get("client_id")?.clone(), form.get("client_secret")?.clone()))
}

async fn token(State(s): State<Shared>, headers: HeaderMap, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut s = lock(&s);
    s.token_calls += 1;
    let refuse = |github: bool, error: &str| {
        let status = if github { StatusCode::OK } else { StatusCode::BAD_REQUEST };
        (status, axum::Json(json!({"error": error}))).into_response()
    };
    if client_auth(&headers, &form) != Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())) {
        return refuse(s.github, "invalid_client");
    }
    let code = form.get("code").cloned().unwrap_or_default();
    let Some((redirect_uri, challenge, nonce)) = s.codes.remove(&code) else {
        return refuse(s.github, "invalid_grant");
    };
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if form.get("redirect_uri") != Some(&redirect_uri) || s256(&verifier) != challenge {
        return refuse(s.github, "invalid_grant");
    }
    if s.github {
        return axum::Json(
            json!({"access_token": format!("gho_{code}"), "token_type": "bearer", "scope": "read:user,user:email"}),
        )
        .into_response();
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let id_token = forge(&s, nonce, now);
    axum::Json(json!({"access_token": "upstream-at", "token_type": "Bearer", "expires_in": 300, "id_token": id_token}))
        .into_response()
}

fn forge(s: &UpState, nonce: Option<String>, now: i64) -> String {
    let mut c = json!({"iss": s.base, "sub": s.user.sub, "aud": CLIENT_ID, "exp": now + 300, "iat": now,
                       "auth_time": now - 5, "email": s.user.email, "email_verified": s.user.email_verified,
                       "name": "Fed User"});
    if let Some(n) = nonce {
        c["nonce"] = json!(n);
    }
    match s.forge {
        Forge::Issuer => c["iss"] = json!("https://another-idp.example"),
        Forge::Audience => c["aud"] = json!("another-client"),
        Forge::NoNonce => {
            if let Some(o) = c.as_object_mut() {
                o.remove("nonce");
            }
        }
        Forge::WrongNonce => c["nonce"] = json!("not-the-nonce-sent"),
        Forge::Expired => {
            c["exp"] = json!(now - 3600);
            c["iat"] = json!(now - 7200);
        }
        _ => {}
    }
    let payload = serde_json::to_vec(&c).unwrap_or_default();
    let kid = oauth_core::keys::jwks_kids(s.keys.jwks()).into_iter().next().unwrap_or_default();
    match s.forge {
        Forge::AlgNone => {
            let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!({"alg": "none", "kid": kid})).unwrap_or_default());
            format!("{h}.{}.", URL_SAFE_NO_PAD.encode(&payload))
        }
        Forge::Hs256WithPublicKey => {
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            header.kid = Some(kid);
            let secret = serde_json::to_vec(s.keys.jwks()).unwrap_or_default();
            jsonwebtoken::encode(&header, &c, &jsonwebtoken::EncodingKey::from_secret(&secret)).unwrap_or_default()
        }
        Forge::UnknownKid => s.other_keys.sign_at(SigningAlg::Rs256, "JWT", &payload, now).unwrap_or_default(),
        _ => s.keys.sign_at(SigningAlg::Rs256, "JWT", &payload, now).unwrap_or_default(),
    }
}

async fn jwks(State(s): State<Shared>) -> Response {
    let mut s = lock(&s);
    s.jwks_fetches += 1;
    axum::Json(serde_json::to_value(s.keys.jwks()).unwrap_or_default()).into_response()
}

fn bearer_ok(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Bearer gho_"))
}

async fn user(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if !bearer_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let s = lock(&s);
    let id: u64 = s.user.sub.parse().unwrap_or(1);
    axum::Json(json!({"id": id, "login": s.user.login, "name": null})).into_response()
}

async fn emails(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if !bearer_ok(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let s = lock(&s);
    axum::Json(json!([
        {"email": "old@gh.example", "primary": false, "verified": true, "visibility": null},
        {"email": s.user.email, "primary": true, "verified": s.user.email_verified, "visibility": "public"},
    ]))
    .into_response()
}
