//! DPoP proofs for `bench/load.sh` (wrk cannot sign one per request): prints `count` ES256
//! proofs (RFC 9449 §4.2), one per line, each with a fresh `jti`, for `htm` `htu` now, with
//! the `ath` of `access_token` when given. The key is read from `key-file` (base64url
//! PKCS#8), or generated and written there when the file does not exist, so the token
//! request and the resource requests use one key.
//!
//! Usage: `dpop_proofs <key-file> <htm> <htu> <count> [access-token]`
use anyhow::{Context, Result};
use aws_lc_rs::rand::SecureRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

fn key(path: &str) -> Result<EcdsaKeyPair> {
    let pkcs8 = match std::fs::read_to_string(path) {
        Ok(text) => B64.decode(text.trim())?,
        Err(_) => {
            let doc =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &aws_lc_rs::rand::SystemRandom::new())
                    .map_err(|_| anyhow::anyhow!("key generation failed"))?;
            std::fs::write(path, B64.encode(doc.as_ref()))?;
            doc.as_ref().to_vec()
        }
    };
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8).map_err(|_| anyhow::anyhow!("bad key in {path}"))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, key_file, htm, htu, count, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: dpop_proofs <key-file> <htm> <htu> <count> [access-token]");
    };
    let pair = key(key_file)?;
    let public = pair.public_key().as_ref();
    let (x, y) = public.get(1..33).zip(public.get(33..65)).context("not an uncompressed P-256 point")?;
    let header = serde_json::json!({
        "typ": "dpop+jwt", "alg": "ES256",
        "jwk": {"kty": "EC", "crv": "P-256", "x": B64.encode(x), "y": B64.encode(y)},
    });
    let header = B64.encode(serde_json::to_vec(&header)?);
    let ath = rest.first().map(|t| B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, t.as_bytes())));
    let iat = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for _ in 0..count.parse::<usize>()? {
        let mut jti = [0u8; 16];
        rng.fill(&mut jti).map_err(|_| anyhow::anyhow!("no randomness"))?;
        let claims = match &ath {
            Some(a) => serde_json::json!({"jti": B64.encode(jti), "htm": htm, "htu": htu, "iat": iat, "ath": a}),
            None => serde_json::json!({"jti": B64.encode(jti), "htm": htm, "htu": htu, "iat": iat}),
        };
        let input = format!("{header}.{}", B64.encode(serde_json::to_vec(&claims)?));
        let sig = pair.sign(&rng, input.as_bytes()).map_err(|_| anyhow::anyhow!("signing failed"))?;
        writeln!(out, "{input}.{}", B64.encode(sig.as_ref()))?;
    }
    Ok(())
}
