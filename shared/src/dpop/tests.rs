//! A hostile client: every check of `verify` forged once, against a genuine proof of each
//! algorithm.
use super::*;
use crate::keys::{KeySet, KeySetDoc, SigningAlg};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

const HTU: &str = "https://as.example/oauth/token";
const NOW: i64 = 1_800_000_000;

struct Key {
    alg: Algorithm,
    jwk: Value,
    encoding: EncodingKey,
}

fn key(alg: SigningAlg) -> Key {
    let doc = KeySetDoc::generate(&[alg]).expect("keys");
    let set = KeySet::from_doc(&doc).expect("set");
    let jwk = serde_json::to_value(set.jwks().keys.first().expect("jwk")).expect("json");
    let pem = doc.keys.first().expect("key").private_key_pem.as_bytes().to_vec();
    let (alg, encoding) = match alg {
        SigningAlg::Es256 => (Algorithm::ES256, EncodingKey::from_ec_pem(&pem)),
        SigningAlg::Rs256 => (Algorithm::RS256, EncodingKey::from_rsa_pem(&pem)),
        SigningAlg::EdDsa => (Algorithm::EdDSA, EncodingKey::from_ed_pem(&pem)),
    };
    Key { alg, jwk, encoding: encoding.expect("encoding key") }
}

fn claims() -> Value {
    json!({"jti": "p-1", "htm": "POST", "htu": HTU, "iat": NOW})
}

fn proof_with(k: &Key, alg: Algorithm, typ: &str, jwk: &Value, c: &Value) -> String {
    let mut h = Header::new(alg);
    h.typ = Some(typ.to_owned());
    h.jwk = Some(serde_json::from_value(jwk.clone()).expect("jwk"));
    jsonwebtoken::encode(&h, c, &k.encoding).expect("signed")
}

fn proof(k: &Key, c: &Value) -> String {
    proof_with(k, k.alg, "dpop+jwt", &k.jwk, c)
}

fn expected() -> Expected<'static> {
    Expected { htm: "POST", htu: HTU, access_token: None, now: NOW }
}

/// A proof whose header is `header` as given (the library's typed header would drop a
/// private member of the jwk), signed by `k`.
fn signed_raw(k: &Key, header: &Value, c: &Value) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default());
    let message = format!("{}.{}", enc(header), enc(c));
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), &k.encoding, k.alg).expect("signed");
    format!("{message}.{sig}")
}

/// A header and payload put together by hand (for what the library will not sign).
fn raw(header: &Value, c: &Value, sig: &str) -> String {
    let enc = |v: &Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default());
    format!("{}.{}.{sig}", enc(header), enc(c))
}

#[test]
fn a_genuine_proof_of_each_algorithm_gives_its_keys_thumbprint() {
    for alg in [SigningAlg::Es256, SigningAlg::Rs256, SigningAlg::EdDsa] {
        let k = key(alg);
        let got = verify(&proof(&k, &claims()), expected()).expect("valid");
        assert_eq!(got.jti, "p-1");
        assert_eq!(got.jkt, thumbprint(&k.jwk).expect("thumbprint"));
        // An independent implementation agrees (EC and RSA; it has none for Ed25519).
        if alg != SigningAlg::EdDsa {
            let jwk: Jwk = serde_json::from_value(k.jwk.clone()).expect("jwk");
            assert_eq!(got.jkt, jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256).expect("thumbprint"));
        }
    }
    // The query and fragment of htu are ignored, on either side.
    let k = key(SigningAlg::Es256);
    let c = json!({"jti": "p-2", "htm": "POST", "htu": format!("{HTU}?a=1#f"), "iat": NOW});
    assert!(verify(&proof(&k, &c), expected()).is_ok());
    let at_resource = Expected { htu: "https://as.example/oauth/token?x=y", ..expected() };
    assert!(verify(&proof(&k, &claims()), at_resource).is_ok());
}

#[test]
fn the_thumbprint_uses_only_the_required_members_in_order() {
    let a = json!({"kty": "EC", "crv": "P-256", "x": "abc", "y": "def"});
    let b = json!({"y": "def", "x": "abc", "use": "sig", "kid": "k1", "crv": "P-256", "kty": "EC", "alg": "ES256"});
    assert_eq!(thumbprint(&a), thumbprint(&b));
    assert_ne!(thumbprint(&a), thumbprint(&json!({"kty": "EC", "crv": "P-256", "x": "abc", "y": "deg"})));
    assert_eq!(thumbprint(&json!({"kty": "oct", "k": "x"})), Err(DpopError::Key));
    assert_eq!(thumbprint(&json!({"kty": "EC", "crv": "P-256", "x": "abc"})), Err(DpopError::Key));
}

#[test]
fn every_forged_check_is_refused() {
    let k = key(SigningAlg::Es256);
    let other = key(SigningAlg::Es256);
    let rsa = key(SigningAlg::Rs256);
    let with = |changes: Value| {
        let mut c = claims();
        if let (Some(c), Some(ch)) = (c.as_object_mut(), changes.as_object()) {
            for (name, v) in ch {
                if v.is_null() {
                    c.remove(name);
                } else {
                    c.insert(name.clone(), v.clone());
                }
            }
        }
        c
    };
    let mut private = k.jwk.clone();
    private["d"] = json!("c2VjcmV0");
    // The same raw construction without the private member is accepted: the case below
    // fails on `d` alone.
    let plain = signed_raw(&k, &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": k.jwk}), &claims());
    assert!(verify(&plain, expected()).is_ok());
    let cases: Vec<(&str, String, DpopError)> = vec![
        ("typ JWT", proof_with(&k, k.alg, "JWT", &k.jwk, &claims()), DpopError::Type),
        ("another method", proof(&k, &with(json!({"htm": "GET"}))), DpopError::Method),
        ("another URI", proof(&k, &with(json!({"htu": "https://as.example/oauth/revoke"}))), DpopError::Uri),
        ("another host", proof(&k, &with(json!({"htu": "https://evil.example/oauth/token"}))), DpopError::Uri),
        ("stale", proof(&k, &with(json!({"iat": NOW - 61}))), DpopError::Time),
        ("from the future", proof(&k, &with(json!({"iat": NOW + 61}))), DpopError::Time),
        ("no jti", proof(&k, &with(json!({"jti": null}))), DpopError::Malformed),
        ("empty jti", proof(&k, &with(json!({"jti": ""}))), DpopError::Malformed),
        ("no iat", proof(&k, &with(json!({"iat": null}))), DpopError::Malformed),
        (
            "signed by another key",
            {
                let p = proof(&other, &claims());
                let (_, rest) = p.split_once('.').unwrap_or_default();
                let h = proof(&k, &claims());
                format!("{}.{rest}", h.split('.').next().unwrap_or_default())
            },
            DpopError::Signature,
        ),
        (
            "a private key in jwk",
            signed_raw(&k, &json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private.clone()}), &claims()),
            DpopError::Key,
        ),
        ("no jwk", raw(&json!({"typ": "dpop+jwt", "alg": "ES256"}), &claims(), "c2ln"), DpopError::Key),
        (
            "alg none",
            raw(&json!({"typ": "dpop+jwt", "alg": "none", "jwk": k.jwk}), &claims(), ""),
            DpopError::Algorithm,
        ),
        (
            "HS256 keyed with the public key",
            {
                let mut h = Header::new(Algorithm::HS256);
                h.typ = Some("dpop+jwt".into());
                h.jwk = Some(serde_json::from_value(k.jwk.clone()).expect("jwk"));
                let secret = serde_json::to_vec(&k.jwk).unwrap_or_default();
                jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_secret(&secret)).expect("signed")
            },
            DpopError::Algorithm,
        ),
        (
            "RS256 claimed for a P-256 key",
            raw(&json!({"typ": "dpop+jwt", "alg": "RS256", "jwk": k.jwk}), &claims(), "c2ln"),
            DpopError::Algorithm,
        ),
        (
            "ES256 claimed for an RSA key",
            raw(&json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": rsa.jwk}), &claims(), "c2ln"),
            DpopError::Algorithm,
        ),
        (
            "an oct key",
            raw(&json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": {"kty": "oct", "k": "c2VjcmV0"}}), &claims(), "c2ln"),
            DpopError::Key,
        ),
        ("two segments", "a.b".to_owned(), DpopError::Malformed),
        ("four segments", "a.b.c.d".to_owned(), DpopError::Malformed),
        ("not base64", "!!.!!.!!".to_owned(), DpopError::Malformed),
        ("too long", "a".repeat(MAX_PROOF_LEN + 1), DpopError::Malformed),
    ];
    for (what, p, want) in cases {
        assert_eq!(verify(&p, expected()), Err(want), "{what}");
    }
}

#[test]
fn at_a_resource_the_proof_must_carry_the_hash_of_the_token_presented() {
    let k = key(SigningAlg::Es256);
    let token = "eyJhbGciOiJFUzI1NiJ9.e30.sig";
    let at = Expected { htm: "GET", htu: "https://as.example/api/data", access_token: Some(token), now: NOW };
    let c =
        |ath: Value| json!({"jti": "r", "htm": "GET", "htu": "https://as.example/api/data", "iat": NOW, "ath": ath});
    assert!(verify(&proof(&k, &c(json!(access_token_hash(token)))), at).is_ok());
    assert_eq!(verify(&proof(&k, &c(json!(access_token_hash("another")))), at), Err(DpopError::AccessTokenHash));
    assert_eq!(verify(&proof(&k, &c(Value::Null)), at), Err(DpopError::AccessTokenHash));
    // The RFC 9449 §4.2 ath of a known value: base64url(SHA-256("abc")).
    assert_eq!(access_token_hash("abc"), "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0");
}

#[test]
fn server_nonces_hold_for_their_window_and_the_next_and_only_under_this_servers_key() {
    let key = hmac::Key::new(hmac::HMAC_SHA256, b"k");
    let other = hmac::Key::new(hmac::HMAC_SHA256, b"other");
    let n = nonce(&key, NOW);
    assert_eq!(n.len(), 22);
    let keys = [key];
    assert!(nonce_is_current(&keys, &n, NOW));
    assert!(nonce_is_current(&keys, &n, NOW + NONCE_WINDOW_SECONDS), "the next window still takes it");
    assert!(!nonce_is_current(&keys, &n, NOW + 2 * NONCE_WINDOW_SECONDS), "then it is stale");
    assert!(!nonce_is_current(&[other], &n, NOW), "another server's key");
    assert!(!nonce_is_current(&keys, "made-up", NOW));
}
