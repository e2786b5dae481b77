//! `TestEnv`: the local server on an ephemeral 127.0.0.1 port over an in-memory SQLite
//! store, generated keys and a clock the test can move; plus client-side helpers.
use crate::faults::Faulty;
use anyhow::{Context, Result, ensure};
use oauth_core::App;
use oauth_core::aws::SecretsManagerKeys;
use oauth_core::clock::FixedClock;
use oauth_core::config::Settings;
use oauth_core::jwt::SigningAlg;
use oauth_core::keys::{KeySetDoc, KeySource, StaticKeys};
use oauth_core::store::{DynamoStore, SqliteStore, Stores};
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

/// Whether the flows run on DynamoDB and Secrets Manager (`OAUTH_TEST_BACKEND=aws`, set by
/// `scripts/test.sh` for its second run of the suite) instead of SQLite and static keys.
pub fn aws_backend() -> bool {
    std::env::var("OAUTH_TEST_BACKEND").as_deref() == Ok("aws")
}

/// What deletes expired records behind the stores' back: DynamoDB's TTL, SQLite's purge.
enum Housekeeping {
    Sqlite(Arc<SqliteStore>),
    Dynamo(aws_sdk_dynamodb::Client, String),
}

/// Fresh stores and a key source for one test environment.
async fn backend() -> Result<(Stores, Arc<dyn KeySource>, Housekeeping)> {
    if aws_backend() {
        let cfg =
            crate::aws::emulator().await?.context("OAUTH_TEST_BACKEND=aws needs the emulator (scripts/test.sh)")?;
        let (ddb, table) = crate::aws::fresh_table(&cfg).await?;
        let (sm, secret) = crate::aws::fresh_key_secret(&cfg, test_keys()?).await?;
        return Ok((
            Stores::all(Arc::new(DynamoStore::new(ddb.clone(), table.clone()))),
            Arc::new(SecretsManagerKeys::new(sm, secret)),
            Housekeeping::Dynamo(ddb, table),
        ));
    }
    let store = Arc::new(SqliteStore::in_memory()?);
    Ok((Stores::all(store.clone()), Arc::new(StaticKeys(test_keys()?.clone())), Housekeeping::Sqlite(store)))
}

/// A running server and what a test needs to drive and inspect it.
pub struct TestEnv {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The app the server runs (white-box checks go through its stores).
    pub app: Arc<App>,
    /// The app's stores, wrapped to count calls and inject faults.
    pub faults: Arc<Faulty>,
    /// The clock, to move time.
    pub clock: Arc<FixedClock>,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// `OAUTH_REGISTRATION_TOKEN` when the test configured one: [`TestEnv::register_client`]
    /// presents it, so its clients are trusted.
    pub registration_token: Option<String>,
    housekeeping: Housekeeping,
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
        Self::build(vars, None, |app| app).await
    }

    /// A server whose keys come from `source`, reloaded every `ttl` seconds.
    ///
    /// # Errors
    /// Setup failed.
    pub async fn with_keys(source: Arc<dyn KeySource>, ttl: Option<i64>) -> Result<Self> {
        Self::build(&[], Some((source, ttl)), |app| app).await
    }

    /// A server with extra variables whose app `configure` changes before it serves (a form
    /// key, a registration-token secret).
    ///
    /// # Errors
    /// Setup failed.
    pub async fn configured(vars: &[(&str, &str)], configure: impl FnOnce(App) -> App) -> Result<Self> {
        Self::build(vars, None, configure).await
    }

    async fn build(
        vars: &[(&str, &str)],
        keys: Option<(Arc<dyn KeySource>, Option<i64>)>,
        configure: impl FnOnce(App) -> App,
    ) -> Result<Self> {
        let mut map: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        map.entry("ISSUER".into()).or_insert_with(|| ISSUER.into());
        // Every test talks from 127.0.0.1: per-address limits are raised unless a test sets
        // them (tests/flows/abuse.rs does).
        for var in [
            "REGISTER_LIMIT_PER_IP",
            "REGISTER_CLIENT_LIMIT_PER_IP",
            "CLIENT_AUTH_FAILURES_PER_IP",
            "DEVICE_ENTRY_LIMIT_PER_IP",
        ] {
            map.entry(var.into()).or_insert_with(|| "100000".into());
        }
        let settings = Settings::from_lookup(|k| map.get(k).cloned())?;
        let (stores, default_source, housekeeping) = backend().await?;
        let (source, ttl) = keys.unwrap_or((default_source, None));
        let faults = Faulty::new(stores);
        let clock = Arc::new(FixedClock::now_frozen());
        let app = App::new(settings, crate::faults::stores(&faults), source, ttl, clock.clone()).await?;
        let app = Arc::new(configure(app));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(oauth_local::serve(app.clone(), listener, async move {
            let _ = rx.await;
        }));
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
        let registration_token = map.get("OAUTH_REGISTRATION_TOKEN").cloned();
        Ok(Self { base, app, faults, clock, http, registration_token, housekeeping, shutdown: Some(tx) })
    }

    /// Delete every record whose time is over at the test clock's now, as DynamoDB's TTL may
    /// at any moment after an item's `expires_at` (and SQLite's purge does). Returns how many.
    ///
    /// # Errors
    /// The backend failed.
    pub async fn expire_records(&self) -> Result<usize> {
        let now = oauth_core::clock::Clock::now(&*self.clock);
        match &self.housekeeping {
            Housekeeping::Sqlite(store) => Ok(store.purge_expired(now)?),
            Housekeeping::Dynamo(ddb, table) => {
                let t = now.unix_timestamp().to_string();
                let mut deleted = 0;
                let mut start = None;
                loop {
                    let page = ddb
                        .scan()
                        .table_name(table)
                        .filter_expression("expires_at <= :now")
                        .expression_attribute_values(":now", aws_sdk_dynamodb::types::AttributeValue::N(t.clone()))
                        .set_exclusive_start_key(start)
                        .send()
                        .await?;
                    for item in page.items() {
                        let key = ["pk", "sk"]
                            .into_iter()
                            .filter_map(|k| item.get(k).map(|v| (k.to_owned(), v.clone())))
                            .collect();
                        ddb.delete_item().table_name(table).set_key(Some(key)).send().await?;
                        deleted += 1;
                    }
                    start = page.last_evaluated_key().cloned();
                    if start.is_none() {
                        return Ok(deleted);
                    }
                }
            }
        }
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
        let mut req = self.http.post(self.url("/register_client")).json(&metadata);
        if let Some(t) = &self.registration_token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await?;
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

/// RFC 7636 Appendix B verifier.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// Its S256 challenge.
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// The test user's password.
pub const PASSWORD: &str = "correct horse battery staple";
/// The web client's redirect URI.
pub const CB: &str = "https://client.example/cb";

/// A response from `/oauth/authorize` as a browser would hold it.
#[derive(Debug)]
pub struct Page {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body.
    pub html: String,
    /// The sealed request hidden field, if the page has a form.
    pub request: Option<String>,
    /// The CSRF cookie value (set by this response, or carried over).
    pub cookie: Option<String>,
}

impl Page {
    /// The `Location` header.
    pub fn location(&self) -> Option<&str> {
        self.headers.get("location").and_then(|v| v.to_str().ok())
    }
    /// A query parameter of the `Location` header.
    pub fn location_param(&self, name: &str) -> Option<String> {
        let loc = url::Url::parse(self.location()?).ok()?;
        loc.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// The `error` an authorization error carries: in the redirect, or (for a client from
    /// open registration, before the user vouched for it) in the error page's link.
    pub fn error_code(&self) -> Option<String> {
        if self.location().is_some() {
            return self.location_param("error");
        }
        let start = self.html.find("<a href=\"")? + "<a href=\"".len();
        let end = self.html.get(start..)?.find('"')? + start;
        let link = self.html.get(start..end)?.replace("&#38;", "&").replace("&amp;", "&");
        let url = url::Url::parse(&link).ok()?;
        url.query_pairs().find(|(k, _)| k == "error").map(|(_, v)| v.into_owned())
    }
}

fn hidden_request(html: &str) -> Option<String> {
    let start = html.find("name=\"request\" value=\"")? + "name=\"request\" value=\"".len();
    let end = html.get(start..)?.find('"')? + start;
    html.get(start..end).map(str::to_owned)
}

fn set_cookie(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
        c.strip_prefix("__Host-oauth_csrf=")
            .or_else(|| c.strip_prefix("oauth_csrf="))
            .and_then(|rest| rest.split(';').next())
            .map(str::to_owned)
    })
}

/// A standard authorization request query for `client_id`.
pub fn authz_query(client_id: &str, redirect_uri: Option<&str>, scope: &str, state: &str) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code").append_pair("client_id", client_id);
    if let Some(r) = redirect_uri {
        q.append_pair("redirect_uri", r);
    }
    q.append_pair("scope", scope)
        .append_pair("state", state)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    q.finish()
}

impl TestEnv {
    async fn page(&self, resp: reqwest::Response, cookie: Option<String>) -> Result<Page> {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let html = resp.text().await?;
        let cookie = set_cookie(&headers).or(cookie);
        Ok(Page { status, request: hidden_request(&html), headers, html, cookie })
    }

    /// The `Cookie` header carrying CSRF cookie `value` under this issuer's cookie name
    /// (`__Host-oauth_csrf` on https, `oauth_csrf` on http).
    pub fn csrf_cookie(&self, value: &str) -> String {
        let name = if self.app.settings.is_https() { "__Host-oauth_csrf" } else { "oauth_csrf" };
        format!("{name}={value}")
    }

    /// `GET /oauth/authorize?<query>` with no cookie.
    ///
    /// # Errors
    /// Transport failure.
    pub async fn authorize(&self, query: &str) -> Result<Page> {
        let resp = self.http.get(format!("{}?{query}", self.url("/oauth/authorize"))).send().await?;
        self.page(resp, None).await
    }

    /// Submit a login page's form as a browser would (cookie included).
    ///
    /// # Errors
    /// Transport failure, or the page has no form.
    pub async fn submit(&self, page: &Page, username: &str, password: &str, decision: &str) -> Result<Page> {
        let request = page.request.clone().context("the page has no form")?;
        let mut req = self.http.post(self.url("/oauth/authorize")).form(&[
            ("request", request.as_str()),
            ("username", username),
            ("password", password),
            ("decision", decision),
        ]);
        if let Some(c) = &page.cookie {
            req = req.header("cookie", self.csrf_cookie(c));
        }
        let resp = req.send().await?;
        self.page(resp, page.cookie.clone()).await
    }

    /// Register alice and return her `sub`.
    ///
    /// # Errors
    /// Registration failed.
    pub async fn alice(&self) -> Result<String> {
        str_field(&self.register_user("alice", PASSWORD).await?, "sub")
    }

    /// A confidential web client (code + refresh) redirecting to [`CB`], with `scope`.
    ///
    /// # Errors
    /// Registration failed.
    pub async fn web_client(&self, scope: &str) -> Result<(String, String)> {
        let c = self.register_client(json!({"client_name": "Web app", "redirect_uris": [CB], "scope": scope})).await?;
        Ok((str_field(&c, "client_id")?, str_field(&c, "client_secret")?))
    }

    /// Log alice in for `client_id` with `scope` and return the code.
    ///
    /// # Errors
    /// Any step did not go as in a normal flow.
    pub async fn code_for(&self, client_id: &str, redirect_uri: &str, scope: &str) -> Result<String> {
        let page = self.authorize(&authz_query(client_id, Some(redirect_uri), scope, "s")).await?;
        ensure!(page.status == 200, "authorize: {} {}", page.status, page.html);
        let done = self.submit(&page, "alice", PASSWORD, "allow").await?;
        ensure!(done.status == 303, "login: {} {}", done.status, done.html);
        done.location_param("code").context("no code in the redirect")
    }

    /// Exchange a code with Basic client authentication; returns (status, body).
    ///
    /// # Errors
    /// Transport failure.
    pub async fn exchange(
        &self,
        id: &str,
        secret: &str,
        code: &str,
        verifier: &str,
        redirect_uri: Option<&str>,
    ) -> Result<(u16, Value)> {
        let mut form = vec![("grant_type", "authorization_code"), ("code", code), ("code_verifier", verifier)];
        if let Some(r) = redirect_uri {
            form.push(("redirect_uri", r));
        }
        let r = self.post_form_basic("/oauth/token", id, secret, &form).await?;
        Ok((r.status().as_u16(), r.json().await?))
    }

    /// Refresh with Basic client authentication; returns (status, body).
    ///
    /// # Errors
    /// Transport failure.
    pub async fn refresh(
        &self,
        id: &str,
        secret: &str,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<(u16, Value)> {
        let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let r = self.post_form_basic("/oauth/token", id, secret, &form).await?;
        Ok((r.status().as_u16(), r.json().await?))
    }

    /// Introspect with Basic client authentication.
    ///
    /// # Errors
    /// Transport failure.
    pub async fn introspect(&self, id: &str, secret: &str, token: &str) -> Result<Value> {
        Ok(self.post_form_basic("/oauth/introspect", id, secret, &[("token", token)]).await?.json().await?)
    }
}

impl TestEnv {
    /// A public client of the device grant (RFC 8628) with `scope`, and a device request it
    /// started: (client id, the device authorization response).
    ///
    /// # Errors
    /// Registration or the request failed.
    pub async fn device_request(&self, scope: &str) -> Result<(String, Value)> {
        let grant = "urn:ietf:params:oauth:grant-type:device_code";
        let c = self
            .register_client(json!({"client_name": "TV app", "grant_types": [grant, "refresh_token"],
                                    "token_endpoint_auth_method": "none", "scope": scope}))
            .await?;
        let id = str_field(&c, "client_id")?;
        let r = self
            .http
            .post(self.url("/oauth/device_authorization"))
            .form(&[("client_id", id.as_str()), ("scope", scope)])
            .send()
            .await?;
        ensure!(r.status() == 200, "device_authorization: {}", r.status());
        Ok((id, r.json().await?))
    }

    /// A device's poll with `device_code`: (status, body).
    ///
    /// # Errors
    /// Transport failure.
    pub async fn device_poll(&self, client_id: &str, device_code: &str) -> Result<(u16, Value)> {
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", client_id),
            ("device_code", device_code),
        ];
        let r = self.http.post(self.url("/oauth/token")).form(&form).send().await?;
        Ok((r.status().as_u16(), r.json().await?))
    }
}

/// The value of the hidden field `name` of a page's form.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let needle = format!("name=\"{name}\" value=\"");
    let start = html.find(&needle)? + needle.len();
    let end = html.get(start..)?.find('"')? + start;
    html.get(start..end).map(str::to_owned)
}

/// A browser: keeps the CSRF and session cookies the server sets (and clears), sends them
/// back, and sends the headers of a same-origin form post. Redirects are not followed.
pub struct Browser<'e> {
    env: &'e TestEnv,
    /// The CSRF cookie's value.
    pub csrf: Option<String>,
    /// The session cookie's value.
    pub session: Option<String>,
    /// The upstream sign-in's flow cookie, if one is set.
    pub flow: Option<String>,
}

impl TestEnv {
    /// A browser with no cookies.
    pub fn browser(&self) -> Browser<'_> {
        Browser { env: self, csrf: None, session: None, flow: None }
    }

    /// The session cookie's name on this issuer.
    pub fn session_cookie_name(&self) -> &'static str {
        if self.app.settings.is_https() { "__Host-session" } else { "session" }
    }
}

impl Browser<'_> {
    /// The `Cookie` header of what this browser holds.
    pub fn cookie_header(&self) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(c) = &self.csrf {
            parts.push(self.env.csrf_cookie(c));
        }
        if let Some(s) = &self.session {
            parts.push(format!("{}={s}", self.env.session_cookie_name()));
        }
        if let Some(f) = &self.flow {
            parts.push(format!("{}={f}", oauth_core::oauth::federation::flow_cookie_name(&self.env.app)));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    async fn receive(&mut self, resp: reqwest::Response) -> Result<Page> {
        let session_name = format!("{}=", self.env.session_cookie_name());
        let flow_name = format!("{}=", oauth_core::oauth::federation::flow_cookie_name(&self.env.app));
        for c in resp.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()) {
            if let Some(rest) = c.strip_prefix(&session_name) {
                let value = rest.split(';').next().unwrap_or_default();
                self.session = (!value.is_empty() && !c.contains("Max-Age=0")).then(|| value.to_owned());
            }
            if let Some(rest) = c.strip_prefix(&flow_name) {
                let value = rest.split(';').next().unwrap_or_default();
                self.flow = (!value.is_empty() && !c.contains("Max-Age=0")).then(|| value.to_owned());
            }
        }
        let page = self.env.page(resp, self.csrf.clone()).await?;
        self.csrf.clone_from(&page.cookie);
        Ok(page)
    }

    /// `GET <path>` (path and query) with this browser's cookies.
    ///
    /// # Errors
    /// Transport failure.
    pub async fn get(&mut self, path: &str) -> Result<Page> {
        let mut req = self.env.http.get(self.env.url(path));
        if let Some(c) = self.cookie_header() {
            req = req.header("cookie", c);
        }
        let resp = req.send().await?;
        self.receive(resp).await
    }

    /// POST `form` to `path` as a same-origin form would (`Origin` is the issuer's,
    /// `Sec-Fetch-Site: same-origin`), with this browser's cookies.
    ///
    /// # Errors
    /// Transport failure.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Result<Page> {
        self.post_from(path, form, &self.env.app.settings.issuer_origin(), "same-origin").await
    }

    /// POST `form` to `path` from a page at `origin` (`Sec-Fetch-Site: fetch_site`), with
    /// this browser's cookies.
    ///
    /// # Errors
    /// Transport failure.
    pub async fn post_from(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        origin: &str,
        fetch_site: &str,
    ) -> Result<Page> {
        let mut req = self
            .env
            .http
            .post(self.env.url(path))
            .form(form)
            .header("origin", origin)
            .header("sec-fetch-site", fetch_site);
        if let Some(c) = self.cookie_header() {
            req = req.header("cookie", c);
        }
        let resp = req.send().await?;
        self.receive(resp).await
    }

    /// `GET /oauth/authorize?<query>`.
    ///
    /// # Errors
    /// Transport failure.
    pub async fn authorize(&mut self, query: &str) -> Result<Page> {
        self.get(&format!("/oauth/authorize?{query}")).await
    }

    /// Submit the login page's form with credentials.
    ///
    /// # Errors
    /// Transport failure, or the page has no form.
    pub async fn login(&mut self, page: &Page, username: &str, password: &str, decision: &str) -> Result<Page> {
        let request = page.request.clone().context("the page has no form")?;
        self.post(
            "/oauth/authorize",
            &[("request", &request), ("username", username), ("password", password), ("decision", decision)],
        )
        .await
    }

    /// Submit the consent page of a signed-in user (no credentials).
    ///
    /// # Errors
    /// Transport failure, or the page has no form.
    pub async fn consent(&mut self, page: &Page, decision: &str) -> Result<Page> {
        let request = page.request.clone().context("the page has no form")?;
        self.post("/oauth/authorize", &[("request", &request), ("decision", decision)]).await
    }

    /// Tokens of `client` (id, secret; redirect [`CB`]) for `scope`, alice's, through this
    /// browser: signing in, or allowing on the consent page, as the page asks.
    ///
    /// # Errors
    /// Any step did not go as in a normal flow.
    pub async fn tokens(&mut self, client: &(String, String), scope: &str) -> Result<Value> {
        let mut p = self.authorize(&authz_query(&client.0, Some(CB), scope, "st")).await?;
        if p.html.contains("name=\"password\"") {
            p = self.login(&p, "alice", PASSWORD, "allow").await?;
        } else if p.status == 200 {
            p = self.consent(&p, "allow").await?;
        }
        let code = p.location_param("code").with_context(|| format!("no code: {} {}", p.status, p.html))?;
        let (status, body) = self.env.exchange(&client.0, &client.1, &code, VERIFIER, Some(CB)).await?;
        ensure!(status == 200, "{body}");
        Ok(body)
    }

    /// Sign alice in through the authorization endpoint of `client_id` (redirect [`CB`]) and
    /// return the code.
    ///
    /// # Errors
    /// Any step did not go as in a normal flow.
    pub async fn sign_in_for_code(&mut self, client_id: &str, scope: &str) -> Result<String> {
        let page = self.authorize(&authz_query(client_id, Some(CB), scope, "s")).await?;
        ensure!(
            page.status == 200 && page.html.contains("name=\"password\""),
            "authorize: {} {}",
            page.status,
            page.html
        );
        let done = self.login(&page, "alice", PASSWORD, "allow").await?;
        ensure!(done.status == 303, "login: {} {}", done.status, done.html);
        ensure!(self.session.is_some(), "no session cookie after the login");
        done.location_param("code").context("no code in the redirect")
    }
}
