//! The Secrets Manager rotation function for the signing keys: the four steps of a rotation
//! (createSecret, setSecret, testSecret, finishSecret). Each new version is a fresh key set;
//! when it becomes `AWSCURRENT`, the old one becomes `AWSPREVIOUS` and stays in the JWKS.
//! Every step is idempotent, as Secrets Manager may call it more than once.
use crate::jwt::SigningAlg;
use crate::keys::{KeySet, KeySetDoc};
use anyhow::{Context, bail};
use aws_sdk_secretsmanager::Client as Sm;

/// Run one rotation step for version `token` of `secret_id`.
///
/// # Errors
/// An unknown step, a version that is not pending, a pending key set that does not work, or
/// Secrets Manager failing.
pub async fn step(sm: &Sm, secret_id: &str, token: &str, step: &str, algs: &[SigningAlg]) -> anyhow::Result<()> {
    let meta = sm
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await
        .with_context(|| format!("Failed to describe {secret_id}"))?;
    let stages = meta.version_ids_to_stages().and_then(|v| v.get(token)).cloned().unwrap_or_default();
    if stages.iter().any(|s| s == "AWSCURRENT") {
        tracing::info!(secret_id, step, "version is already AWSCURRENT; nothing to do");
        return Ok(());
    }
    if step != "createSecret" && !stages.iter().any(|s| s == "AWSPENDING") {
        bail!("version {token} of {secret_id} is not AWSPENDING");
    }
    match step {
        "createSecret" => {
            if pending(sm, secret_id, token).await?.is_some() {
                return Ok(());
            }
            let doc = KeySetDoc::generate(algs)?;
            sm.put_secret_value()
                .secret_id(secret_id)
                .client_request_token(token)
                .secret_string(serde_json::to_string(&doc)?)
                .version_stages("AWSPENDING")
                .send()
                .await
                .with_context(|| format!("Failed to store the pending key set of {secret_id}"))?;
            tracing::info!(event = "key_rotation_created", secret_id, kid = ?doc.keys.first().map(|k| &k.kid), "new key set pending");
        }
        // The keys live only in this secret: there is no other system to update.
        "setSecret" => {}
        "testSecret" => {
            let json =
                pending(sm, secret_id, token).await?.with_context(|| format!("{secret_id} has no pending value"))?;
            let set = KeySet::from_doc(&serde_json::from_str::<KeySetDoc>(&json)?)?;
            for alg in algs {
                let kid =
                    set.signing_kid(*alg).with_context(|| format!("pending key set cannot sign {}", alg.as_str()))?;
                let token = set.sign(*alg, "JWT", br#"{"test":true}"#)?;
                let vk = set.verify_key(kid).context("pending key set cannot verify its own kid")?;
                let mut v = jsonwebtoken::Validation::new(vk.alg);
                v.required_spec_claims.clear();
                v.validate_exp = false;
                jsonwebtoken::decode::<serde_json::Value>(&token, &vk.key, &v)
                    .context("pending key set failed a sign/verify round trip")?;
            }
        }
        "finishSecret" => {
            let current = meta
                .version_ids_to_stages()
                .and_then(|v| v.iter().find(|(_, s)| s.iter().any(|x| x == "AWSCURRENT")).map(|(id, _)| id.clone()));
            let mut update = sm
                .update_secret_version_stage()
                .secret_id(secret_id)
                .version_stage("AWSCURRENT")
                .move_to_version_id(token);
            if let Some(current) = current {
                update = update.remove_from_version_id(current);
            }
            update.send().await.with_context(|| format!("Failed to make {token} AWSCURRENT"))?;
            tracing::info!(
                event = "key_rotated",
                secret_id,
                "new key set is AWSCURRENT; the previous one stays AWSPREVIOUS"
            );
        }
        other => bail!("unknown rotation step {other:?}"),
    }
    Ok(())
}

async fn pending(sm: &Sm, secret_id: &str, token: &str) -> anyhow::Result<Option<String>> {
    match sm.get_secret_value().secret_id(secret_id).version_id(token).version_stage("AWSPENDING").send().await {
        Ok(out) => Ok(out.secret_string),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context(format!("Failed to read the pending version of {secret_id}"))),
    }
}
