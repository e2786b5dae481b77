//! Local accounts of upstream identities (docs/API.md, "Federation"; docs/SECURITY.md V4):
//! keyed by (issuer, subject), never by e-mail. A first sign-in creates a user without a
//! password; linking to an existing account happens only from that account's signed-in
//! page; an unlink never removes the last way to sign in (the store's atomic condition).
use crate::App;
use crate::crypto::{random_id, random_token};
use crate::domain::{Email, IdentityLink, User, Username, identity_key};
use crate::federation::Upstream;
use crate::federation::id_token::UpstreamIdentity;
use crate::store::{StoreError, Unlink};

fn link_of(up: &Upstream, sub: &str, identity: &UpstreamIdentity, now: i64) -> IdentityLink {
    IdentityLink {
        issuer: identity.issuer.clone(),
        subject: identity.subject.clone(),
        sub: sub.to_owned(),
        provider: up.config.id.clone(),
        email: identity.email.clone().filter(|e| e.len() <= 320),
        email_verified: identity.email_verified,
        linked_at: now,
    }
}

/// The local user of `identity`: the one linked to it, or a new user without a password
/// (named `<provider>-<random>`, with the provider's e-mail address when it is one this
/// server accepts). A concurrent first sign-in of the same identity finds the winner's user.
/// `None` when no user is linked and public sign-up is off (`SIGNUP_ENABLED=false`).
///
/// # Errors
/// The store failed, or no randomness.
pub async fn user_for(
    app: &App,
    up: &Upstream,
    identity: &UpstreamIdentity,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let key = identity_key(&identity.issuer, &identity.subject);
    if let Some(link) = app.identities.identity(&key).await? {
        return Ok(Some(link.sub));
    }
    if !app.settings.signup_enabled {
        return Ok(None);
    }
    let random = |e| StoreError::Backend(anyhow::anyhow!("no randomness: {e}"));
    for _ in 0..3 {
        let suffix: String = random_token().map_err(random)?.chars().take(10).collect();
        let username = Username::parse(&format!("{}-{suffix}", up.config.id))
            .map_err(|e| StoreError::Backend(anyhow::anyhow!("generated username refused: {e}")))?;
        let user = User {
            sub: random_id("usr_").map_err(random)?,
            username,
            email: identity.email.as_deref().and_then(|e| Email::parse(e).ok()),
            password_hash: String::new(),
            created_at: now,
            disabled: false,
        };
        match app.identities.create_federated_user(&user, &link_of(up, &user.sub, identity, now)).await {
            Ok(()) => {
                tracing::info!(event = "federated_user_created", sub = %user.sub, provider = %up.config.id, "user created from an upstream identity");
                return Ok(Some(user.sub));
            }
            // The identity was linked meanwhile (another first sign-in), or the name is taken.
            Err(StoreError::AlreadyExists) => {
                if let Some(link) = app.identities.identity(&key).await? {
                    return Ok(Some(link.sub));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Backend(anyhow::anyhow!("could not create a user for an upstream identity")))
}

/// What linking an identity to a signed-in user came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkOutcome {
    /// Linked.
    Linked,
    /// It was already linked to this user.
    AlreadyYours,
    /// It is linked to another user: nothing changed.
    TakenByAnother,
}

/// Link `identity` (signed in at `up`) to the signed-in user `sub`.
///
/// # Errors
/// The store failed.
pub async fn link(
    app: &App,
    up: &Upstream,
    sub: &str,
    identity: &UpstreamIdentity,
    now: i64,
) -> Result<LinkOutcome, StoreError> {
    match app.identities.link_identity(&link_of(up, sub, identity, now)).await {
        Ok(()) => {
            tracing::info!(event = "identity_linked", sub = %sub, provider = %up.config.id, "upstream identity linked");
            Ok(LinkOutcome::Linked)
        }
        Err(StoreError::AlreadyExists) => {
            let key = identity_key(&identity.issuer, &identity.subject);
            let owner = app.identities.identity(&key).await?.map(|l| l.sub);
            Ok(if owner.as_deref() == Some(sub) { LinkOutcome::AlreadyYours } else { LinkOutcome::TakenByAnother })
        }
        Err(e) => Err(e),
    }
}

/// Remove `sub`'s link `key`, unless it is the last way the user can sign in.
///
/// # Errors
/// The store failed, or the user is gone.
pub async fn unlink(app: &App, sub: &str, key: &str) -> Result<Unlink, StoreError> {
    let user = app.users.user_by_sub(sub).await?.ok_or(StoreError::NotFound)?;
    let outcome = app.identities.unlink_identity(sub, key, !user.has_password()).await?;
    if outcome == Unlink::Removed {
        tracing::info!(event = "identity_unlinked", sub = %sub, "upstream identity unlinked");
    }
    Ok(outcome)
}
