//! A hostile upstream: every check of `validate` forged once.
use super::*;
use crate::keys::{KeySet, KeySetDoc, SigningAlg};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

const ISS: &str = "https://idp.example.test";
const CLIENT: &str = "our-client";
const NONCE: &str = "n-0123456789";
const NOW: i64 = 1_800_000_000;

fn upstream() -> KeySet {
    KeySet::from_doc(&KeySetDoc::generate(&[SigningAlg::Es256, SigningAlg::Rs256]).expect("keys")).expect("set")
}

fn claims() -> Value {
    json!({"iss": ISS, "sub": "248289761001", "aud": CLIENT, "exp": NOW + 300, "iat": NOW, "nonce": NONCE,
           "email": "alice@example.test", "email_verified": true, "name": "Alice"})
}

fn sign(keys: &KeySet, alg: SigningAlg, c: &Value) -> String {
    keys.sign_at(alg, "JWT", &serde_json::to_vec(c).unwrap_or_default(), NOW).expect("signed")
}

fn expected() -> Expected<'static> {
    Expected { issuer: ISS, client_id: CLIENT, nonce: NONCE, now: NOW }
}

fn with(changes: Value) -> Value {
    let mut c = claims();
    if let (Some(c), Some(changes)) = (c.as_object_mut(), changes.as_object()) {
        for (k, v) in changes {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
    }
    c
}

#[test]
fn a_valid_id_token_of_either_algorithm_gives_the_identity_keyed_by_issuer_and_subject() {
    let up = upstream();
    let keys = UpstreamKeys::from_jwks(up.jwks());
    for alg in [SigningAlg::Es256, SigningAlg::Rs256] {
        let got = validate(&sign(&up, alg, &claims()), &keys, expected()).expect("valid");
        assert_eq!((got.issuer.as_str(), got.subject.as_str()), (ISS, "248289761001"));
        assert!(got.email_verified && got.email.as_deref() == Some("alice@example.test"));
        assert_eq!(got.auth_time, NOW, "iat when there is no auth_time");
    }
    let multi = with(json!({"aud": [CLIENT, "another"], "azp": CLIENT, "auth_time": NOW - 30}));
    let got = validate(&sign(&up, SigningAlg::Es256, &multi), &keys, expected()).expect("valid");
    assert_eq!(got.auth_time, NOW - 30);
    let unverified = with(json!({"email_verified": null}));
    assert!(!validate(&sign(&up, SigningAlg::Es256, &unverified), &keys, expected()).expect("valid").email_verified);
}

#[test]
fn every_forged_check_is_refused() {
    let up = upstream();
    let keys = UpstreamKeys::from_jwks(up.jwks());
    let cases: Vec<(&str, Value, IdTokenError)> = vec![
        ("another issuer", with(json!({"iss": "https://evil.example.test"})), IdTokenError::WrongIssuer),
        ("issuer with a trailing slash", with(json!({"iss": format!("{ISS}/")})), IdTokenError::WrongIssuer),
        ("another audience", with(json!({"aud": "someone-else"})), IdTokenError::WrongAudience),
        ("several audiences, no azp", with(json!({"aud": [CLIENT, "other"]})), IdTokenError::WrongAudience),
        ("azp another party", with(json!({"aud": [CLIENT, "other"], "azp": "other"})), IdTokenError::WrongAudience),
        ("expired", with(json!({"exp": NOW - LEEWAY_SECONDS - 1})), IdTokenError::Expired),
        ("issued in the future", with(json!({"iat": NOW + LEEWAY_SECONDS + 1})), IdTokenError::Expired),
        ("no nonce", with(json!({"nonce": null})), IdTokenError::WrongNonce),
        ("another nonce", with(json!({"nonce": "n-other"})), IdTokenError::WrongNonce),
        ("no sub", with(json!({"sub": null})), IdTokenError::Invalid),
        ("no exp", with(json!({"exp": null})), IdTokenError::Invalid),
    ];
    for (name, c, want) in cases {
        assert_eq!(validate(&sign(&up, SigningAlg::Es256, &c), &keys, expected()), Err(want), "{name}");
    }
    // Inside the leeway is fine.
    let late = with(json!({"exp": NOW - LEEWAY_SECONDS + 1}));
    assert!(validate(&sign(&up, SigningAlg::Es256, &late), &keys, expected()).is_ok());
    // Another provider's key: an unknown kid (the caller may refresh the JWKS once).
    let other = upstream();
    assert_eq!(validate(&sign(&other, SigningAlg::Es256, &claims()), &keys, expected()), Err(IdTokenError::UnknownKey));
    // A tampered payload.
    let good = sign(&up, SigningAlg::Es256, &claims());
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&with(json!({"sub": "admin"}))).unwrap_or_default());
    assert_eq!(validate(&parts.join("."), &keys, expected()), Err(IdTokenError::Invalid));
}

#[test]
fn none_hmac_and_an_algorithm_the_key_does_not_fit_are_refused() {
    let up = upstream();
    let keys = UpstreamKeys::from_jwks(up.jwks());
    let good = sign(&up, SigningAlg::Es256, &claims());
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(good.split('.').next().unwrap_or_default()).unwrap_or_default())
            .unwrap_or_default();
    let kid = header["kid"].as_str().unwrap_or_default().to_owned();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap_or_default());
    let forge = |h: Value, secret: &[u8]| {
        let head = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&h).unwrap_or_default());
        let input = format!("{head}.{payload}");
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(aws_lc_rs::hmac::sign(&key, input.as_bytes()).as_ref()))
    };
    // HS256 keyed with the public key's own JWK text (the classic confusion).
    let public = serde_json::to_vec(&up.jwks()).unwrap_or_default();
    let hs = forge(json!({"alg": "HS256", "typ": "JWT", "kid": kid}), &public);
    assert_eq!(validate(&hs, &keys, expected()), Err(IdTokenError::AlgorithmNotAllowed));
    let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#));
    assert_eq!(validate(&none, &keys, expected()), Err(IdTokenError::AlgorithmNotAllowed));
    // RS256 claimed for the P-256 key's kid.
    let rs_on_ec = forge(json!({"alg": "RS256", "typ": "JWT", "kid": kid}), b"x");
    assert_eq!(validate(&rs_on_ec, &keys, expected()), Err(IdTokenError::AlgorithmNotAllowed));
    for bad in ["", "a.b", "a.b.c.d", &"x".repeat(MAX_ID_TOKEN_LEN + 1)] {
        assert!(validate(bad, &keys, expected()).is_err(), "{bad:.20}");
    }
}
