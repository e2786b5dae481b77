//! `TestEnv`: the local server on an ephemeral 127.0.0.1 port over an in-memory SQLite
//! store, generated keys and a clock the test can move; plus client-side helpers.
use anyhow::{Context, Result, ensure};
use oauth_core::App;
use oauth_core::clock::FixedClock;
use oauth_core::config::Settings;
use oauth_core::jwt::SigningAlg;
use oauth_core::keys::{KeySetDoc, StaticKeys};
use oauth_core::store::SqliteStore;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// The configured issuer of every test server (never derived from the request).
pub const ISSUER: &str = "https://as.test";

/// Keys are generated once per test binary (RSA generation is slow in debug builds).
pub fn test_keys() -> Result<&'static KeySetDoc> {
    static KEYS: OnceLock<KeySetDoc> = OnceLock::new();
    if let Some(k) = KEYS.get() {
        return Ok(k);
    }
    let doc = KeySetDoc::generate(&[SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa])?;
    Ok(KEYS.get_or_init(|| doc))
}

/// A running server and what a test needs to drive and inspect it.
pub struct TestEnv {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The app the server runs (white-box checks go through its stores).
    pub app: Arc<App>,
    /// The store behind the app.
    pub store: Arc<SqliteStore>,
    /// The clock, to move time.
    pub clock: Arc<FixedClock>,
    /// An HTTP client.
    pub http: reqwest::Client,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl TestEnv {
    /// A server with default settings.
    ///
    /// # Errors
    /// Setup failed.
    pub async fn new() -> Result<Self> {
        Self::with_vars(&[]).await
    }

    /// A server with extra configuration variables (e.g. `OAUTH_REGISTRATION_TOKEN`).
    ///
    /// # Errors
    /// Setup failed.
    pub async fn with_vars(vars: &[(&str, &str)]) -> Result<Self> {
        let mut map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        map.entry("ISSUER".into()).or_insert_with(|| ISSUER.into());
        let settings = Settings::from_lookup(|k| map.get(k).cloned())?;
        let store = Arc::new(SqliteStore::in_memory()?);
        let clock = Arc::new(FixedClock::now_frozen());
        let app = Arc::new(
            App::with_sqlite(settings, store.clone(), &StaticKeys(test_keys()?.clone()), clock.clone()).await?,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(oauth_local::serve(app.clone(), listener, async move {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        Ok(Self { base, app, store, clock, http, shutdown: Some(tx) })
    }

    /// Absolute URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /register` and return the 201 body.
    ///
    /// # Errors
    /// Any status but 201.
    pub async fn register_user(&self, username: &str, password: &str) -> Result<Value> {
        let r = self
            .http
            .post(self.url("/register"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await?;
        ensure!(r.status() == 201, "register {username}: {}", r.status());
        Ok(r.json().await?)
    }

    /// `POST /register_client` with `metadata`; returns the 201 body.
    ///
    /// # Errors
    /// Any status but 201.
    pub async fn register_client(&self, metadata: Value) -> Result<Value> {
        let r = self.http.post(self.url("/register_client")).json(&metadata).send().await?;
        let status = r.status();
        let body: Value = r.json().await?;
        ensure!(status == 201, "register_client: {status} {body}");
        Ok(body)
    }

    /// A confidential client_credentials client with `scope`; returns (id, secret).
    ///
    /// # Errors
    /// Registration failed.
    pub async fn service_client(&self, scope: &str) -> Result<(String, String)> {
        let c = self.register_client(json!({"grant_types": ["client_credentials"], "scope": scope})).await?;
        Ok((str_field(&c, "client_id")?, str_field(&c, "client_secret")?))
    }

    /// POST a form to the token endpoint family with Basic credentials.
    ///
    /// # Errors
    /// Transport failure.
    pub async fn post_form_basic(
        &self,
        path: &str,
        id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> Result<reqwest::Response> {
        Ok(self.http.post(self.url(path)).basic_auth(id, Some(secret)).form(form).send().await?)
    }

    /// A client_credentials access token.
    ///
    /// # Errors
    /// Any status but 200.
    pub async fn cc_token(&self, id: &str, secret: &str, scope: Option<&str>) -> Result<String> {
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let r = self.post_form_basic("/oauth/token", id, secret, &form).await?;
        let status = r.status();
        let body: Value = r.json().await?;
        ensure!(status == 200, "token: {status} {body}");
        str_field(&body, "access_token")
    }

    /// GET `path` with a bearer token.
    ///
    /// # Errors
    /// Transport failure.
    pub async fn get_bearer(&self, path: &str, token: &str) -> Result<reqwest::Response> {
        Ok(self.http.get(self.url(path)).bearer_auth(token).send().await?)
    }

    /// Sign arbitrary claims with the server's real key of `alg`, with a custom header.
    /// For forged-token tests.
    ///
    /// # Errors
    /// Key parsing or signing failed.
    pub fn sign_with_server_key(
        &self,
        alg: SigningAlg,
        header: jsonwebtoken::Header,
        claims: &Value,
    ) -> Result<String> {
        let m = test_keys()?.keys.iter().find(|k| k.alg == alg).context("no key for alg")?;
        let key = match alg {
            SigningAlg::Es256 => jsonwebtoken::EncodingKey::from_ec_pem(m.private_key_pem.as_bytes())?,
            SigningAlg::Rs256 => jsonwebtoken::EncodingKey::from_rsa_pem(m.private_key_pem.as_bytes())?,
            SigningAlg::EdDsa => jsonwebtoken::EncodingKey::from_ed_pem(m.private_key_pem.as_bytes())?,
        };
        Ok(jsonwebtoken::encode(&header, claims, &key)?)
    }

    /// The `kid` of the server's key for `alg`.
    ///
    /// # Errors
    /// No such key.
    pub fn kid(&self, alg: SigningAlg) -> Result<String> {
        Ok(test_keys()?.keys.iter().find(|k| k.alg == alg).context("no key for alg")?.kid.clone())
    }

    /// Claims of a valid access token at the server's current time.
    pub fn valid_claims(&self, sub: &str, client_id: &str, scope: &str) -> Value {
        let now = oauth_core::clock::Clock::now(&*self.clock).unix_timestamp();
        json!({"iss": ISSUER, "sub": sub, "aud": format!("{ISSUER}/api"), "client_id": client_id, "scope": scope,
               "iat": now, "exp": now + 900, "jti": format!("at_forged{now}")})
    }
}

/// A string field of a JSON object.
///
/// # Errors
/// Missing or not a string.
pub fn str_field(v: &Value, name: &str) -> Result<String> {
    v.get(name).and_then(Value::as_str).map(str::to_owned).with_context(|| format!("no string {name:?} in {v}"))
}

/// Decode a JWT's header and payload without verifying (inspection in tests).
///
/// # Errors
/// Not a three-part base64url JWT.
pub fn decode_unverified(token: &str) -> Result<(Value, Value)> {
    use base64::Engine;
    let mut parts = token.split('.');
    let mut next = || -> Result<Value> {
        let p = parts.next().context("missing part")?;
        Ok(serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(p)?)?)
    };
    Ok((next()?, next()?))
}
