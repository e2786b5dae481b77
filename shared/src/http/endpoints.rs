//! One adapter per endpoint: parse, call one `oauth::` function, build the response.
use super::request::{has_media_type, header_values, json_response, single_header, source_ip};
use super::{Request, Response};
use crate::App;
use crate::domain::Scope;
use crate::oauth::client_auth::{self, Credentials};
use crate::oauth::params::Params;
use crate::oauth::{
    OAuthError, access, client_registration, data, discovery, introspect as intro, register, revoke as rev,
    token as tok,
};
use axum::body::Body;
use http::{HeaderValue, StatusCode, header};

/// Decode a JSON body straight into its typed request: a repeated field, wrong shape or
/// invalid UTF-8 is refused by the decoder (no "last key wins" differentials).
fn json_body<T: serde::de::DeserializeOwned>(
    req: &Request,
    bad: fn(&'static str) -> OAuthError,
) -> Result<T, OAuthError> {
    if !has_media_type(req, "application/json")? {
        return Err(bad("the body must be application/json"));
    }
    serde_json::from_slice(req.body().as_ref()).map_err(|e| {
        if e.is_data() {
            bad("the body is not a JSON object with the expected fields")
        } else {
            bad("the body is not valid JSON")
        }
    })
}

fn form_body(req: &Request) -> Result<Params, OAuthError> {
    if !has_media_type(req, "application/x-www-form-urlencoded")? {
        return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    Params::parse(req.body().as_ref())
}

fn credentials(req: &Request, params: &Params) -> Result<Credentials, OAuthError> {
    Ok(Credentials {
        authorization: single_header(req, header::AUTHORIZATION)?.map(str::to_owned),
        client_id: params.get("client_id").map(str::to_owned),
        client_secret: params.get("client_secret").map(str::to_owned),
    })
}

fn no_cache(mut resp: Response) -> Response {
    resp.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    resp
}

pub(super) async fn register_user(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let now = app.clock.now();
    register::admit(app, source_ip(req), now).await?;
    let input: register::RegisterUser = json_body(req, OAuthError::invalid_request)?;
    let out = register::register_user(app, input, now).await?;
    Ok(json_response(StatusCode::CREATED, &out))
}

pub(super) async fn register_client(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let now = app.clock.now();
    let authorization = header_values(req, header::AUTHORIZATION);
    let registrant = client_registration::admit(app, access::bearer_token(&authorization), source_ip(req), now).await?;
    let body: client_registration::ClientMetadata = json_body(req, |d| OAuthError::InvalidClientMetadata(d.into()))?;
    let out = client_registration::register_client(app, &registrant, &body, now).await?;
    Ok(json_response(StatusCode::CREATED, &out))
}

/// The request's one `DPoP` header (RFC 9449 §4.1), if any.
fn dpop_proof(req: &Request) -> Result<Option<&str>, OAuthError> {
    crate::oauth::dpop::proof_header(&header_values(req, header::HeaderName::from_static("dpop")))
}

pub(super) async fn token(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let now = app.clock.now();
    let proof = dpop_proof(req)?;
    let out = client_auth::counting_failures(app, source_ip(req), now, async {
        let params = form_body(req)?;
        let jkt = crate::oauth::dpop::at_token_endpoint(app, proof, now).await?;
        tok::token(app, &credentials(req, &params)?, &params, jkt.as_deref(), now).await
    })
    .await?;
    let mut resp = no_cache(json_response(StatusCode::OK, &out));
    // With nonces required, each answer to a proof names the nonce to use next (RFC 9449 §8.2).
    if app.settings.dpop_nonce_required
        && proof.is_some()
        && let Ok(v) = HeaderValue::from_str(&crate::dpop::nonce(&app.form_key(), now.unix_timestamp()))
    {
        resp.headers_mut().insert(header::HeaderName::from_static("dpop-nonce"), v);
    }
    Ok(resp)
}

/// `POST /oauth/device_authorization` (RFC 8628 §3.1–3.2).
pub(super) async fn device_authorization(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let now = app.clock.now();
    let out = client_auth::counting_failures(app, source_ip(req), now, async {
        let params = form_body(req)?;
        crate::oauth::device::authorize_device(app, &credentials(req, &params)?, &params, now).await
    })
    .await?;
    Ok(no_cache(json_response(StatusCode::OK, &out)))
}

pub(super) async fn revoke(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let now = app.clock.now();
    client_auth::counting_failures(app, source_ip(req), now, async {
        let params = form_body(req)?;
        let client = client_auth::authenticate(app, &credentials(req, &params)?).await?;
        rev::revoke(app, &client, params.require("token")?, params.get("token_type_hint"), now).await
    })
    .await?;
    // RFC 7009 §2.2: 200 with no content to process.
    let mut resp = no_cache(json_response(StatusCode::OK, &()));
    *resp.body_mut() = Body::empty();
    resp.headers_mut().remove(header::CONTENT_TYPE);
    Ok(resp)
}

pub(super) async fn introspect(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let now = app.clock.now();
    let out = client_auth::counting_failures(app, source_ip(req), now, async {
        let params = form_body(req)?;
        let client = client_auth::authenticate(app, &credentials(req, &params)?).await?;
        intro::introspect(app, &client, params.require("token")?, params.get("token_type_hint"), now).await
    })
    .await?;
    Ok(no_cache(json_response(StatusCode::OK, &out)))
}

/// The access token of `req` for `audience`: verified, not revoked, and presented as its
/// binding requires (Bearer, or DPoP with a proof for this request: RFC 9449 §7).
async fn access_token(
    app: &App,
    req: &Request,
    audience: access::Audience<'_>,
    now: time::OffsetDateTime,
) -> Result<crate::jwt::AccessClaims, OAuthError> {
    let presented = access::presented(&header_values(req, header::AUTHORIZATION))?;
    let claims = access::authenticate(app, presented.token, audience, now).await?;
    let htu = || app.settings.url(req.uri().path());
    crate::oauth::dpop::check_binding(app, &claims, presented, dpop_proof(req)?, (req.method().as_str(), htu), now)
        .await?;
    Ok(claims)
}

/// The access token of `req`, for the built-in API (its audience) with `scope`.
async fn bearer(
    app: &App,
    req: &Request,
    scope: &Scope,
    now: time::OffsetDateTime,
) -> Result<crate::jwt::AccessClaims, OAuthError> {
    let claims = access_token(app, req, access::Audience::Of(app.settings.audience.as_str()), now).await?;
    access::require_scope(&claims, scope)?;
    Ok(claims)
}

/// A protected resource's answer: its bearer refusals carry the challenge that names its
/// metadata (`error::protected_resource_response`).
fn challenged(app: &App, scope: &Scope, r: Result<Response, OAuthError>) -> Result<Response, OAuthError> {
    match r {
        Err(
            e @ (OAuthError::MissingToken
            | OAuthError::InvalidToken(_)
            | OAuthError::InsufficientScope { .. }
            | OAuthError::InvalidDpopToken(_)
            | OAuthError::InvalidDpopProof(_)
            | OAuthError::UseDpopNonce { .. }),
        ) => {
            let metadata = discovery::resource_metadata_url(&app.settings.audience);
            Ok(super::error::protected_resource_response(e, &metadata, scope.as_str()))
        }
        other => other,
    }
}

pub(super) async fn read_data(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let r = async {
        let claims = bearer(app, req, &Scope::DATA_READ, app.clock.now()).await?;
        Ok(json_response(StatusCode::OK, &data::read(app, claims).await?))
    };
    challenged(app, &Scope::DATA_READ, r.await)
}

pub(super) async fn write_data(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let r = async {
        let now = app.clock.now();
        let claims = bearer(app, req, &Scope::DATA_WRITE, now).await?;
        let body: data::WriteRequest = json_body(req, OAuthError::invalid_request)?;
        let value = body.value.ok_or_else(|| OAuthError::invalid_request("value is required"))?;
        Ok(json_response(StatusCode::CREATED, &data::write(app, &claims, value, now).await?))
    };
    challenged(app, &Scope::DATA_WRITE, r.await)
}

pub(super) async fn userinfo(app: &App, req: &Request) -> Result<Response, OAuthError> {
    let r = async {
        let claims = access_token(app, req, access::Audience::AnyOfThisIssuer, app.clock.now()).await?;
        Ok(json_response(StatusCode::OK, &crate::oauth::userinfo::userinfo(app, &claims).await?))
    };
    challenged(app, &Scope::OPENID, r.await)
}

pub(super) async fn resource_metadata(app: &App, _: &Request) -> Result<Response, OAuthError> {
    Ok(public_cache(json_response(StatusCode::OK, &discovery::protected_resource_metadata(&app.settings))))
}

fn public_cache(mut resp: Response) -> Response {
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    resp
}

pub(super) async fn welcome(app: &App, _: &Request) -> Result<Response, OAuthError> {
    Ok(public_cache(json_response(StatusCode::OK, &discovery::welcome(&app.settings))))
}

pub(super) async fn metadata(app: &App, _: &Request) -> Result<Response, OAuthError> {
    Ok(public_cache(json_response(StatusCode::OK, &discovery::metadata(&app.settings))))
}

pub(super) async fn jwks(app: &App, _: &Request) -> Result<Response, OAuthError> {
    // Publish the previous keys too: tokens they signed are still valid.
    if !app.key_ring.ensure_complete(app.clock.now().unix_timestamp()).await {
        return Err(OAuthError::TemporarilyUnavailable(anyhow::anyhow!("the previous keys could not be loaded")));
    }
    Ok(public_cache(json_response(StatusCode::OK, app.keys().jwks())))
}

/// The OpenAPI description of this API (`openapi.yaml` at the repository root).
const OPENAPI: &str = include_str!("../../../openapi.yaml");

pub(super) async fn openapi(_: &App, _: &Request) -> Result<Response, OAuthError> {
    let mut resp = Response::new(Body::from(OPENAPI));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/yaml"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(resp)
}
