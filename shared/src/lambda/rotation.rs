//! The Secrets Manager rotation function for the signing keys: the four steps of a rotation
//! (createSecret, setSecret, testSecret, finishSecret). Each new version is a fresh key set;
//! when it becomes `AWSCURRENT`, the old one becomes `AWSPREVIOUS` and stays in the JWKS.
//! Every step is idempotent, as Secrets Manager may call it more than once.
//!
//! With a public key document (`PUBLIC_KEYS_SECRET_ID`, read by the processes that only
//! verify), the steps keep it in step: setSecret publishes the pending keys there before
//! they can sign (with the current and previous ones), testSecret checks they are there,
//! and finishSecret leaves exactly the new current and previous keys.
use crate::aws::{public_kids, publish_public_keys, stage_doc};
use crate::keys::SigningAlg;
use crate::keys::{KeySet, KeySetDoc, jwks_kids};
use anyhow::{Context, bail};
use aws_sdk_secretsmanager::Client as Sm;

/// Run one rotation step for version `token` of `secret_id`; `public_secret_id` is the
/// public key document to keep in step, if any (without one, nothing but `secret_id` is
/// read or written).
///
/// # Errors
/// An unknown step, a version that is not pending, a pending key set that does not work or
/// is missing from the public key document, or Secrets Manager failing.
pub async fn step(
    sm: &Sm,
    secret_id: &str,
    token: &str,
    step: &str,
    algs: &[SigningAlg],
    public_secret_id: Option<&str>,
    publish_delay: i64,
) -> anyhow::Result<()> {
    let meta = sm
        .describe_secret()
        .secret_id(secret_id)
        .send()
        .await
        .with_context(|| format!("Failed to describe {secret_id}"))?;
    let stages = meta.version_ids_to_stages().and_then(|v| v.get(token)).cloned().unwrap_or_default();
    if stages.iter().any(|s| s == "AWSCURRENT") {
        // A finishSecret retried after the stage moved: the public document may not have.
        if let ("finishSecret", Some(public)) = (step, public_secret_id) {
            let (current, previous) =
                tokio::join!(stage_doc(sm, secret_id, "AWSCURRENT"), stage_doc(sm, secret_id, "AWSPREVIOUS"));
            let docs: Vec<KeySetDoc> = [current?, previous?].into_iter().flatten().collect();
            publish_public_keys(sm, public, &docs, false).await?;
        }
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
            // Published from setSecret on, signing only `publish_delay` later: by then every
            // verifier has reloaded the public keys and every JWKS cache has expired.
            let current = stage_doc(sm, secret_id, "AWSCURRENT").await?;
            let doc = crate::keys::next_key_set(current.as_ref(), algs, unix_now(), publish_delay)?;
            sm.put_secret_value()
                .secret_id(secret_id)
                .client_request_token(token)
                .secret_string(serde_json::to_string(&doc)?)
                .version_stages("AWSPENDING")
                .send()
                .await
                .with_context(|| format!("Failed to store the pending key set of {secret_id}"))?;
            tracing::info!(event = "key_rotation_created", secret_id, kid = ?doc.keys.first().map(|k| &k.kid), signs_from = ?doc.keys.first().map(|k| k.not_before), "new key set pending");
        }
        // The private keys live only in this secret; their public halves are published
        // before they can sign (AWSCURRENT has not moved yet), next to the keys that sign
        // now and the previous ones, whose tokens are still valid.
        "setSecret" => {
            if let Some(public) = public_secret_id {
                let pending = pending_doc(sm, secret_id, token).await?;
                let (current, previous) =
                    tokio::join!(stage_doc(sm, secret_id, "AWSCURRENT"), stage_doc(sm, secret_id, "AWSPREVIOUS"));
                let docs: Vec<KeySetDoc> = [Some(pending), current?, previous?].into_iter().flatten().collect();
                publish_public_keys(sm, public, &docs, false).await?;
            }
        }
        "testSecret" => {
            let set = KeySet::from_doc(&pending_doc(sm, secret_id, token).await?)?;
            for alg in algs {
                let kid = set
                    .signing_kid_at(*alg, i64::MAX)
                    .with_context(|| format!("pending key set cannot sign {}", alg.as_str()))?;
                // The newest keys, whenever they start signing.
                let token = set.sign_at(*alg, "JWT", br#"{"test":true}"#, i64::MAX)?;
                let vk = set.verify_key(kid).context("pending key set cannot verify its own kid")?;
                let mut v = jsonwebtoken::Validation::new(vk.alg);
                v.required_spec_claims.clear();
                v.validate_exp = false;
                jsonwebtoken::decode::<serde_json::Value>(&token, &vk.key, &v)
                    .context("pending key set failed a sign/verify round trip")?;
            }
            if let Some(public) = public_secret_id {
                let published = public_kids(sm, public).await?.unwrap_or_default();
                if let Some(missing) = jwks_kids(set.jwks()).into_iter().find(|k| !published.contains(k)) {
                    bail!(
                        "the public key document {public} lacks pending kid {missing}: verifiers would refuse its tokens"
                    );
                }
            }
        }
        "finishSecret" => {
            let current = meta
                .version_ids_to_stages()
                .and_then(|v| v.iter().find(|(_, s)| s.iter().any(|x| x == "AWSCURRENT")).map(|(id, _)| id.clone()));
            // Read before the stage moves: the new AWSCURRENT and the new AWSPREVIOUS.
            let published = match public_secret_id {
                Some(_) => Some([
                    Some(pending_doc(sm, secret_id, token).await?),
                    stage_doc(sm, secret_id, "AWSCURRENT").await?,
                ]),
                None => None,
            };
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
            if let (Some(public), Some(docs)) = (public_secret_id, published) {
                let docs: Vec<KeySetDoc> = docs.into_iter().flatten().collect();
                publish_public_keys(sm, public, &docs, false).await?;
            }
        }
        other => bail!("unknown rotation step {other:?}"),
    }
    Ok(())
}

/// The pending version's key set, which must be one.
fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn pending_doc(sm: &Sm, secret_id: &str, token: &str) -> anyhow::Result<KeySetDoc> {
    let json = pending(sm, secret_id, token).await?.with_context(|| format!("{secret_id} has no pending value"))?;
    serde_json::from_str::<KeySetDoc>(&json)
        .with_context(|| format!("the pending value of {secret_id} is not a key set"))
}

async fn pending(sm: &Sm, secret_id: &str, token: &str) -> anyhow::Result<Option<String>> {
    match sm.get_secret_value().secret_id(secret_id).version_id(token).version_stage("AWSPENDING").send().await {
        Ok(out) => Ok(out.secret_string),
        Err(e) if crate::aws::is_not_found(&e) => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context(format!("Failed to read the pending version of {secret_id}"))),
    }
}
