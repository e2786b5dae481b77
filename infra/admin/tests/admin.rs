//! The admin CLI against the local emulator: bootstrap is idempotent, rotation moves the
//! stages, clients are created in the table; and an oauth-local bootstrapped on the same
//! emulator serves them.
use serde_json::Value;
use std::process::Command;

fn emulator() -> anyhow::Result<bool> {
    if std::env::var("OAUTH_TEST_AWS").as_deref() == Ok("1") {
        return Ok(true);
    }
    if std::env::var_os("CI").is_some() {
        anyhow::bail!("the admin tests need the emulator: run ./scripts/test.sh");
    }
    eprintln!("NOTE: admin tests not run: start them with ./scripts/test.sh");
    Ok(false)
}

fn admin(args: &[&str]) -> anyhow::Result<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_oauth-admin")).args(args).output()?;
    anyhow::ensure!(out.status.success(), "oauth-admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[test]
fn bootstrap_rotate_and_create_client_work_against_the_emulator() -> anyhow::Result<()> {
    if !emulator()? {
        return Ok(());
    }
    let tag = std::process::id();
    let (table, keys, reg) = (format!("admin-{tag}"), format!("admin-keys-{tag}"), format!("admin-reg-{tag}"));
    let first = admin(&["bootstrap", "--table", &table, "--keys-secret", &keys, "--registration-secret", &reg])?;
    assert_eq!(first["table"]["created"], true);
    assert_eq!(first["signing_keys"]["created"], true);
    assert_eq!(first["registration_token"]["created"], true);
    let again = admin(&["bootstrap", "--table", &table, "--keys-secret", &keys, "--registration-secret", &reg])?;
    assert_eq!(again["table"]["created"], false, "idempotent");
    assert_eq!(again["signing_keys"]["created"], false);
    assert!(first["public_keys"].is_null() && first["form_key"].is_null(), "not asked for");
    let token = admin(&["registration-token", "--registration-secret", &reg])?;
    assert_eq!(token["token"].as_str().map(str::len), Some(43));
    let rotated = admin(&["rotate-keys", "--keys-secret", &keys])?;
    assert!(rotated["new_es256_kid"].as_str().is_some_and(|k| k.len() == 43));
    // The public key document of the verify-only functions, and the login form's MAC key.
    let (public, form) = (format!("admin-public-{tag}"), format!("admin-form-{tag}"));
    let with_public = [
        "bootstrap",
        "--table",
        &table,
        "--keys-secret",
        &keys,
        "--public-keys-secret",
        &public,
        "--form-key-secret",
        &form,
    ];
    let published = admin(&with_public)?;
    assert_eq!(published["public_keys"]["result"], "created", "{published}");
    assert_eq!(published["form_key"]["created"], true);
    let again = admin(&with_public)?;
    assert_eq!(again["public_keys"]["result"], "unchanged");
    assert_eq!(again["form_key"]["created"], false);
    let rotated = admin(&["rotate-keys", "--keys-secret", &keys, "--public-keys-secret", &public])?;
    assert_eq!(rotated["public_keys_secret"], public.as_str());
    assert_eq!(admin(&with_public)?["public_keys"]["result"], "unchanged", "rotate-keys kept it in step");
    let client = admin(&[
        "create-client",
        "--table",
        &table,
        "--name",
        "CLI app",
        "--grant-type",
        "client_credentials",
        "--scope",
        "data:read",
    ])?;
    assert!(client["client_id"].as_str().is_some_and(|c| c.starts_with("cl_")));
    assert_eq!(client["client_secret"].as_str().map(str::len), Some(43));
    let bad = Command::new(env!("CARGO_BIN_EXE_oauth-admin"))
        .args(["create-client", "--table", &table, "--redirect-uri", "http://evil.test/cb"])
        .output()?;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid_redirect_uri"));
    Ok(())
}

#[test]
fn unknown_commands_and_options_are_refused() -> anyhow::Result<()> {
    for args in [&["frobnicate"][..], &["rotate-keys", "--tabel", "x"][..], &["bootstrap", "--table"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_oauth-admin")).args(args).env("AWS_REGION", "us-east-1").output()?;
        assert!(!out.status.success(), "{args:?}");
    }
    Ok(())
}

#[test]
fn help_lists_the_commands_and_each_flag_with_its_environment_twin() -> anyhow::Result<()> {
    let help = |args: &[&str]| -> anyhow::Result<String> {
        let out = Command::new(env!("CARGO_BIN_EXE_oauth-admin")).args(args).output()?;
        anyhow::ensure!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let top = help(&["--help"])?;
    for command in [
        "bootstrap",
        "rotate-keys",
        "create-client",
        "registration-token",
        "create-user",
        "disable-user",
        "enable-user",
        "delete-user",
        "reset-password",
        "list-clients",
        "delete-client",
    ] {
        assert!(top.lines().any(|l| l.trim_start().starts_with(command)), "{command} in:\n{top}");
    }
    let rotate = help(&["rotate-keys", "--help"])?;
    for (flag, env) in [
        ("--keys-secret", "SIGNING_KEYS_SECRET_ID"),
        ("--public-keys-secret", "PUBLIC_KEYS_SECRET_ID"),
        ("--publish-delay", "KEY_PUBLISH_DELAY_SECONDS"),
    ] {
        // The flag's entry: from its name to the next flag (clap may put the text on the next line).
        let entry = rotate.split_once(&format!("      {flag} ")).and_then(|(_, rest)| rest.split("\n      -").next());
        assert!(entry.is_some_and(|e| e.contains(&format!("[env: {env}="))), "{flag} / {env} in:\n{rotate}");
    }
    Ok(())
}

/// `oauth-admin` with `stdin` given on its standard input.
fn admin_with_stdin(args: &[&str], stdin: &str) -> anyhow::Result<Value> {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_oauth-admin"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    child.stdin.take().ok_or_else(|| anyhow::anyhow!("no stdin"))?.write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    anyhow::ensure!(out.status.success(), "oauth-admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    Ok(serde_json::from_slice(&out.stdout)?)
}

#[test]
fn users_and_clients_are_created_disabled_reset_deleted_and_listed_against_the_emulator() -> anyhow::Result<()> {
    if !emulator()? {
        return Ok(());
    }
    let table = format!("admin-users-{}", std::process::id());
    admin(&["bootstrap", "--table", &table, "--keys-secret", &format!("admin-users-keys-{}", std::process::id())])?;
    // A generated password is printed once; one from stdin is not printed.
    let made = admin(&["create-user", "--table", &table, "--username", "Dora", "--email", "dora@example.com"])?;
    let sub = made["sub"].as_str().unwrap_or_default().to_owned();
    assert!(sub.starts_with("usr_") && made["password"].as_str().map(str::len) == Some(43), "{made}");
    let other = admin_with_stdin(
        &["create-user", "--table", &table, "--username", "eve", "--password-stdin"],
        "eve's long passphrase\n",
    )?;
    assert!(other["password"].is_null(), "{other}");
    let taken = Command::new(env!("CARGO_BIN_EXE_oauth-admin"))
        .args(["create-user", "--table", &table, "--username", "DORA"])
        .output()?;
    assert!(!taken.status.success() && String::from_utf8_lossy(&taken.stderr).contains("username_taken"));
    let weak =
        admin_with_stdin(&["reset-password", "--table", &table, "--user", "dora", "--password-stdin"], "short\n");
    assert!(weak.is_err_and(|e| e.to_string().contains("invalid_request")));
    // Disable by name, enable by sub, reset, delete.
    let disabled = admin(&["disable-user", "--table", &table, "--user", "dora"])?;
    assert_eq!((disabled["sub"].as_str(), disabled["disabled"].as_bool()), (Some(sub.as_str()), Some(true)));
    assert_eq!(disabled["ended"], serde_json::json!({"sessions": 0, "families": 0, "consents": 0}));
    assert_eq!(admin(&["enable-user", "--table", &table, "--user", &sub])?["disabled"], false);
    let reset = admin(&["reset-password", "--table", &table, "--user", "Dora"])?;
    assert_eq!(reset["password"].as_str().map(str::len), Some(43));
    assert_eq!(admin(&["delete-user", "--table", &table, "--user", &sub])?["deleted"], true);
    let gone = Command::new(env!("CARGO_BIN_EXE_oauth-admin"))
        .args(["delete-user", "--table", &table, "--user", &sub])
        .output()?;
    assert!(!gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("no user"));
    let again = admin(&["create-user", "--table", &table, "--username", "dora"])?;
    assert_ne!(again["sub"], made["sub"], "the name is free again");
    // Clients: listed without their secret hashes, deleted once.
    let client =
        admin(&["create-client", "--table", &table, "--grant-type", "client_credentials", "--scope", "data:read"])?;
    let id = client["client_id"].as_str().unwrap_or_default().to_owned();
    let listed = admin(&["list-clients", "--table", &table])?;
    let listed = listed.as_array().cloned().unwrap_or_default();
    assert!(
        listed.iter().any(|c| c["client_id"] == id.as_str()) && listed.iter().all(|c| c["secret_hash"].is_null()),
        "{listed:?}"
    );
    assert_eq!(admin(&["delete-client", "--table", &table, "--client-id", &id])?["deleted"], true);
    assert_eq!(admin(&["delete-client", "--table", &table, "--client-id", &id])?["deleted"], false);
    assert!(
        admin(&["list-clients", "--table", &table])?
            .as_array()
            .is_some_and(|l| l.iter().all(|c| c["client_id"] != id.as_str()))
    );
    Ok(())
}
