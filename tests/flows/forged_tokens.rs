//! Forged and malformed access tokens at `/api/data` and introspection: each is refused
//! with 401 `invalid_token` (inactive at introspection) and nothing is stored.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use oauth_core::jwt::SigningAlg;
use oauth_tests::harness::{ISSUER, TestEnv};
use serde_json::{Value, json};

fn header(alg: Algorithm, typ: Option<&str>, kid: Option<String>) -> Header {
    Header { typ: typ.map(str::to_owned), kid, ..Header::new(alg) }
}

fn unsigned(header: &Value, claims: &Value) -> String {
    format!("{}.{}.", B64.encode(header.to_string()), B64.encode(claims.to_string()))
}

#[tokio::test]
async fn forged_tokens_are_refused() -> anyhow::Result<()> {
    let env = TestEnv::new().await?;
    let (id, secret) = env.service_client("data:read").await?;
    let es_kid = env.kid(SigningAlg::Es256)?;
    let rs_kid = env.kid(SigningAlg::Rs256)?;
    let good = env.valid_claims(&id, &id, "data:read");
    let now = good["iat"].as_i64().unwrap_or(0);
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c
    };
    let without = |k: &str| {
        let mut c = good.clone();
        c.as_object_mut().map(|o| o.remove(k));
        c
    };
    let es = |h: Header, c: &Value| env.sign_with_server_key(SigningAlg::Es256, h, c);
    let at = |alg| header(alg, Some("at+jwt"), Some(es_kid.clone()));
    // Public key material an attacker could use as an HMAC secret.
    let jwks: Value = env.http.get(env.url("/.well-known/jwks.json")).send().await?.json().await?;
    let rsa_n = jwks["keys"]
        .as_array()
        .and_then(|ks| ks.iter().find(|k| k["kty"] == "RSA"))
        .map(|k| k["n"].to_string())
        .unwrap_or_default();
    let hs = |secret: &[u8]| {
        jsonwebtoken::encode(
            &header(Algorithm::HS256, Some("at+jwt"), Some(rs_kid.clone())),
            &good,
            &EncodingKey::from_secret(secret),
        )
    };
    let attacker = oauth_core::keys::KeySetDoc::generate(&[SigningAlg::Es256])?;
    let attacker_pem = attacker.keys.first().map(|k| k.private_key_pem.clone()).unwrap_or_default();
    let attacker_signed =
        |h: Header| jsonwebtoken::encode(&h, &good, &EncodingKey::from_ec_pem(attacker_pem.as_bytes())?);
    let real = es(at(Algorithm::ES256), &good)?;
    let mut tampered_parts: Vec<String> = real.split('.').map(str::to_owned).collect();
    if let Some(p) = tampered_parts.get_mut(1) {
        *p = B64.encode(with("scope", json!("data:read data:write")).to_string());
    }
    let cases: Vec<(&str, String)> = vec![
        ("alg none", unsigned(&json!({"alg": "none", "typ": "at+jwt", "kid": es_kid}), &good)),
        ("alg None", unsigned(&json!({"alg": "None", "typ": "at+jwt", "kid": es_kid}), &good)),
        ("alg none with signature", format!("{}sig", unsigned(&json!({"alg": "none", "typ": "at+jwt"}), &good))),
        ("HS256 with the RSA modulus", hs(rsa_n.as_bytes())?),
        ("HS256 with a JWKS key JSON", hs(jwks.to_string().as_bytes())?),
        ("header alg changed to ES384", {
            let mut parts: Vec<String> = real.split('.').map(str::to_owned).collect();
            if let Some(h) = parts.get_mut(0) {
                *h = B64.encode(json!({"alg": "ES384", "typ": "at+jwt", "kid": es_kid}).to_string());
            }
            parts.join(".")
        }),
        (
            "RS256 header on the EC kid",
            env.sign_with_server_key(
                SigningAlg::Rs256,
                header(Algorithm::RS256, Some("at+jwt"), Some(es_kid.clone())),
                &good,
            )?,
        ),
        ("tampered payload", tampered_parts.join(".")),
        ("unknown kid", es(header(Algorithm::ES256, Some("at+jwt"), Some("nope".into())), &good)?),
        ("no kid", es(header(Algorithm::ES256, Some("at+jwt"), None), &good)?),
        ("path kid", es(header(Algorithm::ES256, Some("at+jwt"), Some("../../../../dev/null".into())), &good)?),
        ("sql kid", es(header(Algorithm::ES256, Some("at+jwt"), Some("' OR 1=1 --".into())), &good)?),
        ("10 KB kid", es(header(Algorithm::ES256, Some("at+jwt"), Some("k".repeat(10_000))), &good)?),
        (
            "attacker key in jwk header",
            attacker_signed(Header {
                jwk: Some(jsonwebtoken::jwk::Jwk::from_encoding_key(
                    &EncodingKey::from_ec_pem(attacker_pem.as_bytes())?,
                    Algorithm::ES256,
                )?),
                ..header(Algorithm::ES256, Some("at+jwt"), None)
            })?,
        ),
        ("attacker key with our kid", attacker_signed(at(Algorithm::ES256))?),
        (
            "jku header",
            attacker_signed(Header {
                jku: Some("https://evil.test/jwks".into()),
                ..header(Algorithm::ES256, Some("at+jwt"), None)
            })?,
        ),
        ("typ JWT", es(header(Algorithm::ES256, Some("JWT"), Some(es_kid.clone())), &good)?),
        ("no typ", es(header(Algorithm::ES256, None, Some(es_kid.clone())), &good)?),
        ("expired beyond leeway", es(at(Algorithm::ES256), &with("exp", json!(now - 61)))?),
        ("nbf in the future", es(at(Algorithm::ES256), &with("nbf", json!(now + 120)))?),
        ("iat in the future", es(at(Algorithm::ES256), &with("iat", json!(now + 3600)))?),
        ("no exp", es(at(Algorithm::ES256), &without("exp"))?),
        ("no aud", es(at(Algorithm::ES256), &without("aud"))?),
        ("no sub", es(at(Algorithm::ES256), &without("sub"))?),
        ("wrong aud", es(at(Algorithm::ES256), &with("aud", json!("https://other-api.test/")))?),
        ("aud array without ours", es(at(Algorithm::ES256), &with("aud", json!(["https://other-api.test/"])))?),
        ("iss with trailing slash", es(at(Algorithm::ES256), &with("iss", json!(format!("{ISSUER}/"))))?),
        ("evil iss", es(at(Algorithm::ES256), &with("iss", json!("https://evil.test")))?),
        ("two dots only", "..".into()),
        ("four parts", format!("{real}.x")),
        ("not base64", "!!!.@@@.###".into()),
        ("huge token", "a".repeat(8000) + "." + &"b".repeat(8000) + ".c"),
    ];
    for (name, token) in &cases {
        let r = env.get_bearer("/api/data", token).await?;
        assert_eq!(r.status(), 401, "{name}");
        let challenge = r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(
            challenge.as_deref(),
            Some(
                "Bearer error=\"invalid_token\", resource_metadata=\"https://as.test/.well-known/oauth-protected-resource/api\""
            ),
            "{name}"
        );
        let body: Value = r.json().await?;
        assert_eq!(body["error"], "invalid_token", "{name}");
        let r = env.post_form_basic("/oauth/introspect", &id, &secret, &[("token", token)]).await?;
        assert_eq!(r.json::<Value>().await?, json!({"active": false}), "{name} at introspection");
    }
    // Controls: the same construction with valid inputs is accepted.
    let controls: Vec<(&str, String)> = vec![
        ("real", real),
        ("expired within leeway", es(at(Algorithm::ES256), &with("exp", json!(now - 30)))?),
        (
            "aud array with ours",
            es(at(Algorithm::ES256), &with("aud", json!(["https://other-api.test/", format!("{ISSUER}/api")])))?,
        ),
        (
            "typ application/at+jwt",
            es(header(Algorithm::ES256, Some("application/at+JWT"), Some(es_kid.clone())), &good)?,
        ),
    ];
    for (name, token) in controls {
        assert_eq!(env.get_bearer("/api/data", &token).await?.status(), 200, "control {name}");
    }
    Ok(())
}
