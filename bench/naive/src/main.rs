//! The naive baselines of `bench/load.sh`: what a bare axum service costs when all it does
//! per request is sign one ES256 JWT (`POST /token`, like a client_credentials grant with no
//! client check, no store and no log) or verify one (`GET /verify`, like a protected
//! resource with no revocation check). The authorization server's endpoints are reported as
//! ratios to these, measured in the same run.
//!
//! Usage: `naive <ADDR>`; prints `listening on http://<addr>` and, on the next line, a token
//! `GET /verify` accepts.
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    iat: u64,
    exp: u64,
    scope: String,
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn sign(keys: &Keys) -> Result<String, jsonwebtoken::errors::Error> {
    let iat = now();
    let claims = Claims {
        iss: "https://naive.test".into(),
        sub: "cl_naive".into(),
        aud: "https://naive.test/api".into(),
        iat,
        exp: iat + 3600,
        scope: "data:read".into(),
    };
    jsonwebtoken::encode(&Header::new(Algorithm::ES256), &claims, &keys.encoding)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:0".into());
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| anyhow::anyhow!("keygen"))?;
    let pkcs8 = pair.to_pkcs8v1().map_err(|_| anyhow::anyhow!("pkcs8"))?;
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["https://naive.test/api"]);
    validation.set_issuer(&["https://naive.test"]);
    let keys = Arc::new(Keys {
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        decoding: DecodingKey::from_ec_der(pair.public_key().as_ref()),
        validation,
    });
    let sample = sign(&keys)?;
    jsonwebtoken::decode::<Claims>(&sample, &keys.decoding, &keys.validation)?;
    let (k1, k2) = (keys.clone(), keys);
    let app = axum::Router::new()
        .route(
            "/token",
            post(move || async move {
                match sign(&k1) {
                    Ok(t) => (StatusCode::OK, format!("{{\"access_token\":\"{t}\",\"token_type\":\"Bearer\"}}")),
                    Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, String::new()),
                }
            }),
        )
        .route(
            "/verify",
            get(move |headers: HeaderMap| async move {
                let token = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or_default();
                match jsonwebtoken::decode::<Claims>(token, &k2.decoding, &k2.validation) {
                    Ok(c) => (StatusCode::OK, format!("{{\"sub\":\"{}\"}}", c.claims.sub)),
                    Err(_) => (StatusCode::UNAUTHORIZED, String::new()),
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    println!("{sample}");
    axum::serve(listener, app).await?;
    Ok(())
}
