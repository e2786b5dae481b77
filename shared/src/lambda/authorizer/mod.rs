//! The API Gateway Lambda authorizer for other services' APIs: one handler for HTTP API
//! (payload 2.0, simple responses with `context`) and REST API TOKEN/REQUEST events (IAM
//! policy, `principalId` = `sub`). Tokens are checked exactly as `/api/data` checks them
//! (`oauth::access`: signature, claims, revocation), then the scopes the route requires.
//! Never panics and fails closed: anything unexpected is a Deny or `Unauthorized`.
use crate::App;
use crate::config::ConfigError;
use crate::domain::ScopeSet;
use crate::jwt::AccessClaims;
use crate::oauth::access;
use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerRequest, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayV2CustomAuthorizerV2Request,
};
use serde_json::{Value, json};

/// Which scopes each route needs: `AUTHORIZER_REQUIRED_SCOPES`, e.g.
/// `GET /api/data=data:read;POST /api/data=data:write;GET /whoami=`. A route is the API
/// Gateway route key (`METHOD /path`, `ANY /{proxy+}`, `$default`) or, for REST events, the
/// method and resource. Matching is exact, and a route without a rule is denied: there is no
/// catch-all, so a route added to an API later, a greedy or `$default` route and a path
/// variant (`/api/data/`) are closed until a rule names them. A rule with no scope admits any
/// valid token of this issuer on that route, and the process warns about each at start.
#[derive(Debug, Clone, Default)]
pub struct ScopeRules {
    routes: Vec<(String, ScopeSet)>,
    revocation: Revocation,
}

/// Whether the authorizer checks revocation (`AUTHORIZER_REVOCATION`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Revocation {
    /// `on` (the default): a revoked token is refused; needs the issuer's table.
    #[default]
    Checked,
    /// `off`: a copy in another account without access to the table. A revoked token
    /// keeps passing until it expires; logged as a warning at start.
    Off,
}

impl Revocation {
    /// Whether an authorizer may start with this mode over `store`: checking revocation
    /// needs the issuer's table.
    ///
    /// # Errors
    /// `Checked` without a store, naming what to set.
    pub fn check_store(self, store: &crate::config::StoreChoice) -> Result<(), String> {
        if self == Self::Checked && *store == crate::config::StoreChoice::None {
            return Err("the revocation check needs the issuer's table (TABLE_NAME); \
                        set AUTHORIZER_REVOCATION=off to run without it"
                .into());
        }
        Ok(())
    }

    /// `AUTHORIZER_REVOCATION`: `on` (default) or `off`.
    ///
    /// # Errors
    /// Another value.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        match get("AUTHORIZER_REVOCATION").as_deref().map(str::trim) {
            None | Some("" | "on") => Ok(Self::Checked),
            Some("off") => Ok(Self::Off),
            Some(v) => {
                Err(ConfigError::Invalid { name: "AUTHORIZER_REVOCATION", reason: format!("{v:?} is not on or off") })
            }
        }
    }
}

impl ScopeRules {
    /// Parse the rules.
    ///
    /// # Errors
    /// A rule without `=`, a malformed scope, a route named twice, a `*` catch-all, or no rule.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid { name: "AUTHORIZER_REQUIRED_SCOPES", reason };
        let mut rules = Self::default();
        for rule in s.split(';').map(str::trim).filter(|r| !r.is_empty()) {
            let (route, scopes) =
                rule.split_once('=').ok_or_else(|| invalid(format!("{rule:?} is not ROUTE=SCOPES")))?;
            let scopes = ScopeSet::parse(scopes).map_err(|bad| invalid(format!("malformed scope {bad:?}")))?;
            let route = route.trim();
            if route == "*" {
                return Err(invalid(
                    "a `*` catch-all would admit tokens on every route nobody wrote a rule for; name each route \
                     (an empty scope list admits any valid token there)"
                        .into(),
                ));
            }
            if route.is_empty() || rules.routes.iter().any(|(r, _)| r == route) {
                return Err(invalid(format!("route {route:?} is empty or has two rules")));
            }
            rules.routes.push((route.to_owned(), scopes));
        }
        if rules.routes.is_empty() {
            return Err(invalid("no rule: every request would be denied".into()));
        }
        Ok(rules)
    }

    /// The same rules with this revocation mode.
    #[must_use]
    pub fn with_revocation(mut self, revocation: Revocation) -> Self {
        if revocation == Revocation::Off {
            tracing::warn!("AUTHORIZER_REVOCATION=off: revoked tokens pass until they expire (no revocation check)");
        }
        self.revocation = revocation;
        self
    }

    /// The scopes `route` needs, if it may be reached at all.
    pub fn required(&self, route: &str) -> Option<&ScopeSet> {
        self.routes.iter().find(|(r, _)| r == route).map(|(_, s)| s)
    }

    /// The routes any valid token may call (rules with no scope).
    pub fn open_routes(&self) -> impl Iterator<Item = &str> {
        self.routes.iter().filter(|(_, s)| s.is_empty()).map(|(r, _)| r.as_str())
    }

    /// Warn, once at start, about every route that requires no scope.
    pub fn warn_about_open_routes(&self) {
        for route in self.open_routes() {
            tracing::warn!(route, "authorizer rule requires no scope: any valid token of this issuer may call it");
        }
    }
}

/// The outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A valid token with the route's scopes.
    Allow(AccessClaims),
    /// A valid token without the scopes the route needs (403).
    Forbidden(AccessClaims),
    /// No token, or a bad, expired or revoked one (401).
    Unauthorized,
}

/// What the authorizer sees of the request a token came with.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// Every `Authorization` value.
    pub authorization: Vec<&'a str>,
    /// Every `DPoP` value.
    pub dpop: Vec<&'a str>,
    /// The method.
    pub method: String,
    /// The URL the client called, as a DPoP proof's `htu` names it (`https://<host><path>`),
    /// when the event says it.
    pub url: Option<String>,
}

/// Decide for a route: the token of `req` (Bearer, or DPoP with a proof for this request,
/// RFC 9449 §7), for this authorizer's resource, with the route's scopes.
pub async fn decide(app: &App, rules: &ScopeRules, req: &Request<'_>, route: &str) -> Decision {
    // Each refusal logs why (docs/OPERATIONS.md, "Why was this request denied"), never the token.
    let denied = |reason: &str, claims: Option<&AccessClaims>| {
        let (sub, client_id) = claims.map_or((None, None), |c| (Some(c.sub.as_str()), Some(c.client_id.as_str())));
        tracing::info!(event = "authorizer_denied", route = %&route[..route.floor_char_boundary(200)], reason, sub, client_id, "request denied");
    };
    let Ok(presented) = access::presented(&req.authorization) else {
        denied("no access token, or a malformed Authorization header", None);
        return Decision::Unauthorized;
    };
    let token = presented.token;
    let now = app.clock.now();
    // Only tokens for the resource this authorizer guards (`API_AUDIENCE`, RFC 8707): a
    // token another API was given is refused here.
    let audience = access::Audience::Of(app.settings.audience.as_str());
    let verified = match rules.revocation {
        Revocation::Checked => access::authenticate(app, token, audience, now).await,
        Revocation::Off => access::verify_cached(app, token, audience, now).await,
    };
    let claims = match verified {
        Ok(c) => c,
        Err(e) => {
            denied(&e.description(), None);
            return Decision::Unauthorized;
        }
    };
    // A bound token needs its proof, for the URL the client called; a REST TOKEN event has
    // no headers, so no proof: such a token is refused there.
    let proof = match req.dpop.as_slice() {
        [] => None,
        [one] => Some(*one),
        _ => {
            denied("two DPoP headers", Some(&claims));
            return Decision::Unauthorized;
        }
    };
    let url = || req.url.clone().unwrap_or_default();
    if let Err(e) = crate::oauth::dpop::check_binding(app, &claims, presented, proof, (&req.method, url), now).await {
        denied(&e.description(), Some(&claims));
        return Decision::Unauthorized;
    }
    let Some(required) = rules.required(route) else {
        denied("no rule for this route in AUTHORIZER_REQUIRED_SCOPES", Some(&claims));
        return Decision::Forbidden(claims);
    };
    let granted = ScopeSet::parse(&claims.scope).unwrap_or_default();
    if required.is_subset_of(&granted) {
        Decision::Allow(claims)
    } else {
        denied("the token lacks the route's scope", Some(&claims));
        Decision::Forbidden(claims)
    }
}

fn context(c: &AccessClaims) -> Value {
    json!({"sub": c.sub, "client_id": c.client_id, "scope": c.scope})
}

/// The answer to API Gateway: a response document, or the `Unauthorized` error that makes
/// a REST API answer 401.
pub type Answer = Result<Value, Unauthorized>;

/// The error a REST API authorizer returns for a 401 (API Gateway matches the message).
#[derive(Debug, thiserror::Error)]
#[error("Unauthorized")]
pub struct Unauthorized;

fn header_values<'h>(headers: &'h http::HeaderMap, name: &str) -> Vec<&'h str> {
    headers.get_all(name).iter().map(|v| v.to_str().unwrap_or("")).collect()
}

/// `<scheme>://<host><path>`: the URL a client called, from the event's host and path; the
/// scheme is `X-Forwarded-Proto` as API Gateway sets it (`https`; `http` only when it says so,
/// as the local stack does).
fn called_url(headers: &http::HeaderMap, host: Option<&str>, path: Option<&str>) -> Option<String> {
    let (host, path) = (host.filter(|h| !h.is_empty())?, path.filter(|p| p.starts_with('/'))?);
    let proto = headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok());
    let scheme = if proto == Some("http") { "http" } else { "https" };
    Some(format!("{scheme}://{host}{path}"))
}

/// The route of a REST method ARN: `arn:aws:execute-api:REGION:ACCOUNT:API/STAGE/METHOD/path…`.
fn route_of_method_arn(arn: &str) -> Option<String> {
    let resource = arn.splitn(6, ':').nth(5)?;
    let mut parts = resource.splitn(4, '/');
    let (_api, _stage, method) = (parts.next()?, parts.next()?, parts.next()?);
    Some(format!("{method} /{}", parts.next().unwrap_or("")))
}

fn iam_policy(effect: &str, method_arn: &str, claims: &AccessClaims) -> Value {
    json!({
        "principalId": claims.sub,
        "policyDocument": {
            "Version": "2012-10-17",
            // Only this method: a cached decision never covers another route (docs/SECURITY.md E9).
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": [method_arn]}]
        },
        "context": context(claims),
    })
}

/// Handle one authorizer event of any supported kind, its log lines in a span naming API
/// Gateway's request id (`requestContext.requestId`) beside the runtime's Lambda request id.
pub async fn handle_event(app: &App, rules: &ScopeRules, event: Value) -> Answer {
    use tracing::Instrument;
    let gateway_id = event
        .pointer("/requestContext/requestId")
        .and_then(Value::as_str)
        .map(|id| id[..id.floor_char_boundary(64)].to_owned());
    let span = tracing::info_span!("request", apigw_request_id = gateway_id.as_deref());
    let answer = handle(app, rules, event).instrument(span).await;
    let allowed = answer.as_ref().is_ok_and(|v| {
        v.get("isAuthorized") == Some(&Value::Bool(true))
            || v.pointer("/policyDocument/Statement/0/Effect").and_then(Value::as_str) == Some("Allow")
    });
    crate::telemetry::metrics::authorizer_decision(allowed);
    answer
}

async fn handle(app: &App, rules: &ScopeRules, event: Value) -> Answer {
    // Like every HTTP function: reload the keys when their TTL has passed, so a key retired
    // from the (public) key document stops verifying here too.
    app.key_ring.refresh_if_stale(app.clock.now().unix_timestamp()).await;
    let is_v2 = event.get("version").and_then(Value::as_str) == Some("2.0");
    let kind = event.get("type").and_then(Value::as_str).map(str::to_ascii_uppercase);
    if is_v2 {
        let Ok(ev) = serde_json::from_value::<ApiGatewayV2CustomAuthorizerV2Request>(event) else {
            return Ok(json!({"isAuthorized": false}));
        };
        // The route key as API Gateway matched it, `$default` included: a rule must name it.
        let route = ev.route_key.clone().unwrap_or_default();
        let req = Request {
            authorization: header_values(&ev.headers, "authorization"),
            dpop: header_values(&ev.headers, "dpop"),
            method: ev.request_context.http.method.to_string(),
            url: called_url(&ev.headers, ev.request_context.domain_name.as_deref(), ev.raw_path.as_deref()),
        };
        return Ok(match decide(app, rules, &req, &route).await {
            Decision::Allow(c) => json!({"isAuthorized": true, "context": context(&c)}),
            Decision::Forbidden(_) | Decision::Unauthorized => json!({"isAuthorized": false}),
        });
    }
    match kind.as_deref() {
        Some("TOKEN") => {
            let ev = serde_json::from_value::<ApiGatewayCustomAuthorizerRequest>(event).map_err(|_| Unauthorized)?;
            let arn = ev.method_arn.unwrap_or_default();
            let route = route_of_method_arn(&arn).ok_or(Unauthorized)?;
            let token = ev.authorization_token.unwrap_or_default();
            let req = Request { authorization: vec![token.as_str()], ..Request::default() };
            respond_rest(decide(app, rules, &req, &route).await, &arn)
        }
        Some("REQUEST") => {
            let ev = serde_json::from_value::<ApiGatewayCustomAuthorizerRequestTypeRequest>(event)
                .map_err(|_| Unauthorized)?;
            let arn = ev.method_arn.clone().unwrap_or_default();
            let route = match (&ev.http_method, &ev.resource) {
                (Some(m), Some(r)) => format!("{} {r}", m.as_str()),
                _ => route_of_method_arn(&arn).ok_or(Unauthorized)?,
            };
            // Every value the client sent: REST events carry repeats in multiValueHeaders.
            let values = |name: &str| {
                let multi = header_values(&ev.multi_value_headers, name);
                if multi.is_empty() { header_values(&ev.headers, name) } else { multi }
            };
            let host = ev.headers.get(http::header::HOST).and_then(|v| v.to_str().ok());
            let path = ev.request_context.path.as_deref().or(ev.path.as_deref());
            let req = Request {
                authorization: values("authorization"),
                dpop: values("dpop"),
                method: ev.http_method.as_ref().map(ToString::to_string).unwrap_or_default(),
                url: called_url(&ev.headers, host, path),
            };
            respond_rest(decide(app, rules, &req, &route).await, &arn)
        }
        _ => Err(Unauthorized),
    }
}

fn respond_rest(decision: Decision, method_arn: &str) -> Answer {
    match decision {
        Decision::Allow(c) => Ok(iam_policy("Allow", method_arn, &c)),
        Decision::Forbidden(c) => Ok(iam_policy("Deny", method_arn, &c)),
        Decision::Unauthorized => Err(Unauthorized),
    }
}

#[cfg(test)]
mod tests;
