//! Conformance cases of the operator's store operations: disabling and deleting users,
//! listing and deleting clients.
use super::{Stores, link, user};
use anyhow::{Result, ensure};
use oauth_core::domain::{AuthMethod, Client, GrantType, ScopeSet, User, Username};
use oauth_core::store::StoreError;

pub async fn users_are_disabled_enabled_and_deleted_with_their_links(s: Stores) -> Result<()> {
    let dora = user("usr_d", "dora")?;
    s.users.create_user(&dora).await?;
    s.users.set_disabled("usr_d", true).await?;
    ensure!(s.users.user_by_sub("usr_d").await?.is_some_and(|u| u.disabled));
    ensure!(s.users.user_by_username(&dora.username.key()).await?.is_some_and(|u| u.disabled));
    s.users.set_disabled("usr_d", false).await?;
    ensure!(s.users.user_by_sub("usr_d").await?.is_some_and(|u| !u.disabled && u.password_hash == dora.password_hash));
    ensure!(matches!(s.users.set_disabled("usr_none", true).await, Err(StoreError::NotFound)));
    // A user with two upstream identities: deleted with both, its name free again.
    let fed = User { sub: "usr_f".into(), password_hash: String::new(), ..user("usr_f", "fed-one")? };
    s.identities.create_federated_user(&fed, &link("5001", "usr_f", 1)).await?;
    s.identities.link_identity(&link("5002", "usr_f", 2)).await?;
    ensure!(s.users.delete_user("usr_f").await?);
    ensure!(s.users.user_by_sub("usr_f").await?.is_none());
    ensure!(s.users.user_by_username(&fed.username.key()).await?.is_none());
    for subject in ["5001", "5002"] {
        ensure!(s.identities.identity(&link(subject, "", 0).key()).await?.is_none(), "{subject} kept");
    }
    ensure!(s.identities.identities_of("usr_f").await?.is_empty());
    ensure!(!s.users.delete_user("usr_f").await?, "a second delete finds nothing");
    let again = User { sub: "usr_f2".into(), username: Username::parse("FED-one").map_err(anyhow::Error::msg)?, ..fed };
    s.identities.create_federated_user(&again, &link("5001", "usr_f2", 3)).await?;
    // Another user is untouched.
    ensure!(s.users.user_by_sub("usr_d").await?.is_some());
    Ok(())
}

pub async fn clients_are_listed_and_deleted(s: Stores) -> Result<()> {
    let client = |id: &str| Client {
        client_id: id.into(),
        secret_hash: Some(format!("hash of {id}")),
        client_name: None,
        redirect_uris: vec![],
        grant_types: vec![GrantType::ClientCredentials],
        auth_method: AuthMethod::ClientSecretBasic,
        scope: ScopeSet::client_default(),
        id_token_signed_response_alg: oauth_core::domain::SigningAlg::Es256,
        created_at: 1_800_000_000,
        trusted: true,
        post_logout_redirect_uris: vec![],
        dpop_bound_access_tokens: false,
    };
    ensure!(s.clients.clients().await?.is_empty());
    for id in ["cl_b", "cl_a", "cl_c"] {
        s.clients.create_client(&client(id)).await?;
    }
    let ids: Vec<String> = s.clients.clients().await?.into_iter().map(|c| c.client_id).collect();
    ensure!(ids == ["cl_a", "cl_b", "cl_c"], "{ids:?}");
    ensure!(s.clients.clients().await?.first() == Some(&client("cl_a")));
    ensure!(s.clients.delete_client("cl_b").await?);
    ensure!(!s.clients.delete_client("cl_b").await?);
    ensure!(s.clients.client("cl_b").await?.is_none(), "a deleted client is not read back (nor from a cache)");
    ensure!(s.clients.clients().await?.len() == 2);
    // Users and other items are not clients.
    s.users.create_user(&user("usr_x", "xavier")?).await?;
    ensure!(s.clients.clients().await?.len() == 2);
    Ok(())
}
