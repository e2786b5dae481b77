//! The real `oauth-local` binary: command line, start-up lines, generated keys that are
//! private and reused, a working request, and a clean exit on SIGTERM.
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Server {
    child: Child,
    lines: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Start the binary and read stdout until the `listening on` line.
fn start(args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<Server> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oauth-local"))
        .args(args)
        .envs(envs.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut reader = BufReader::new(stdout);
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            anyhow::bail!("server exited before listening: {lines:?}");
        }
        let done = line.starts_with("listening on ");
        lines.push(line.trim_end().to_owned());
        if done {
            break;
        }
    }
    // Read the remaining start-up lines without blocking the test on later output.
    std::thread::spawn(move || for _ in reader.lines() {});
    Ok(Server { child, lines })
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("oauth-local-cli-{tag}-{}", std::process::id()))
}

#[tokio::test]
async fn starts_prints_its_addresses_serves_and_reuses_its_private_keys() -> anyhow::Result<()> {
    // Arrange
    let dir = temp_dir("keys");
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let dir_s = dir.to_string_lossy().to_string();
    // Act
    let server = start(&["--addr", &addr, "--data-dir", &dir_s], &[])?;
    // Assert: the start-up lines.
    assert_eq!(server.lines.last().map(String::as_str), Some(format!("listening on http://{addr}").as_str()));
    let _ = server
        .lines
        .iter()
        .find(|l| l.contains(&format!("issuer:    http://{addr}")))
        .ok_or_else(|| anyhow::anyhow!("no issuer line: {:?}", server.lines))?;
    assert!(server.lines.iter().any(|l| l.contains(&dir_s)), "{:?}", server.lines);
    assert!(server.lines.iter().any(|l| l.contains("registration is OPEN")), "{:?}", server.lines);
    // It serves the contract.
    let meta: serde_json::Value =
        reqwest::get(format!("http://{addr}/.well-known/oauth-authorization-server")).await?.json().await?;
    assert_eq!(meta["issuer"], format!("http://{addr}"));
    let jwks1: serde_json::Value = reqwest::get(format!("http://{addr}/.well-known/jwks.json")).await?.json().await?;
    // The keys file is private.
    let mode = std::fs::metadata(dir.join("signing-keys.json"))?.permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata(&dir)?.permissions().mode() & 0o777;
    assert_eq!(dir_mode, 0o700);
    drop(server);
    // A restart reuses the same keys.
    let server = start(&["--addr", &addr, "--data-dir", &dir_s], &[])?;
    let jwks2: serde_json::Value = reqwest::get(format!("http://{addr}/.well-known/jwks.json")).await?.json().await?;
    assert_eq!(jwks1, jwks2);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn environment_twins_and_a_registration_token_are_honoured() -> anyhow::Result<()> {
    let dir = temp_dir("env");
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let server = start(
        &[],
        &[
            ("OAUTH_ADDR", addr.as_str()),
            ("ISSUER", "https://auth.example.test"),
            ("OAUTH_DATA_DIR", &dir.to_string_lossy()),
            ("OAUTH_REGISTRATION_TOKEN", "a-registration-token-of-length"),
        ],
    )?;
    assert!(!server.lines.iter().any(|l| l.contains("registration is OPEN")));
    let meta: serde_json::Value = reqwest::get(format!("http://{addr}/")).await?.json().await?;
    assert_eq!(meta["issuer"], "https://auth.example.test");
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/register_client"))
        .json(&serde_json::json!({"grant_types": ["client_credentials"]}))
        .send()
        .await?;
    assert_eq!(r.status(), 401);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn bad_flags_and_bad_configuration_fail_fast_with_a_reason() -> anyhow::Result<()> {
    let cases: [(&[&str], &str); 8] = [
        (&["--bogus"], "unexpected argument '--bogus'"),
        (&["--addr"], "a value is required for '--addr <HOST:PORT>'"),
        (&["--addr", "not-an-addr"], "Invalid --addr"),
        (&["--issuer", "http://evil.test"], "ISSUER is invalid"),
        (&["--issuer=https://as.test/"], "ISSUER is invalid"),
        (&["--store", "dynamodb"], "TABLE_NAME is not set"),
        (&["--keys", "secretsmanager"], "SIGNING_KEYS_SECRET_ID is not set"),
        (&["--store", "redis"], "OAUTH_STORE is invalid"),
    ];
    for (args, want) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_oauth-local"))
            .args(args)
            .env("OAUTH_DATA_DIR", temp_dir("bad"))
            .output()?;
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(temp_dir("bad"));
    Ok(())
}

#[test]
fn help_lists_every_flag_with_its_environment_twin() -> anyhow::Result<()> {
    let out = Command::new(env!("CARGO_BIN_EXE_oauth-local")).arg("--help").output()?;
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for (flag, env) in [
        ("--addr", "OAUTH_ADDR"),
        ("--issuer", "ISSUER"),
        ("--data-dir", "OAUTH_DATA_DIR"),
        ("--store", "OAUTH_STORE"),
        ("--keys", "OAUTH_KEYS"),
    ] {
        let line = help.lines().find(|l| l.trim_start().starts_with(flag));
        assert!(line.is_some_and(|l| l.contains(&format!("[env: {env}"))), "{flag} / {env} in:\n{help}");
    }
    assert!(help.contains("--bootstrap"), "{help}");
    Ok(())
}

#[test]
fn sigterm_shuts_down_cleanly() -> anyhow::Result<()> {
    let dir = temp_dir("term");
    let port = free_port()?;
    let mut server = start(&["--addr", &format!("127.0.0.1:{port}"), "--data-dir", &dir.to_string_lossy()], &[])?;
    let pid = server.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status()?;
    let mut exited = None;
    for _ in 0..100 {
        if let Some(status) = server.child.try_wait()? {
            exited = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = exited.ok_or_else(|| anyhow::anyhow!("did not exit within 5 s"))?;
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[tokio::test]
async fn bootstraps_and_serves_on_dynamodb_and_secrets_manager() -> anyhow::Result<()> {
    if std::env::var("OAUTH_TEST_AWS").as_deref() != Ok("1") {
        anyhow::ensure!(std::env::var_os("CI").is_none(), "this test needs the emulator: run ./scripts/test.sh");
        eprintln!("NOTE: emulator test not run: start it with ./scripts/test.sh");
        return Ok(());
    }
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let tag = format!("{}-{port}", std::process::id());
    let (table, secret) = (format!("local-{tag}"), format!("local-keys-{tag}"));
    let server = start(
        &["--addr", &addr, "--store", "dynamodb", "--keys", "secretsmanager", "--bootstrap"],
        &[("TABLE_NAME", table.as_str()), ("SIGNING_KEYS_SECRET_ID", secret.as_str())],
    )?;
    assert!(server.lines.iter().any(|l| l.contains(&format!("DynamoDB table {table}"))), "{:?}", server.lines);
    assert!(server.lines.iter().any(|l| l.contains(&format!("Secrets Manager secret {secret}"))), "{:?}", server.lines);
    let http = reqwest::Client::new();
    let c: serde_json::Value = http
        .post(format!("http://{addr}/register_client"))
        .json(&serde_json::json!({"grant_types": ["client_credentials"], "scope": "data:read"}))
        .send()
        .await?
        .json()
        .await?;
    let (id, secret_value) =
        (c["client_id"].as_str().unwrap_or_default(), c["client_secret"].as_str().unwrap_or_default());
    let t: serde_json::Value = http
        .post(format!("http://{addr}/oauth/token"))
        .basic_auth(id, Some(secret_value))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await?
        .json()
        .await?;
    let token = t["access_token"].as_str().unwrap_or_default();
    let r = http.get(format!("http://{addr}/api/data")).bearer_auth(token).send().await?;
    assert_eq!(r.status(), 200);
    drop(server);
    // A restart without --bootstrap finds the same table and keys.
    let server = start(
        &["--addr", &addr, "--store", "dynamodb", "--keys", "secretsmanager"],
        &[("TABLE_NAME", table.as_str()), ("SIGNING_KEYS_SECRET_ID", secret.as_str())],
    )?;
    // A new client: the old one's pooled connection belonged to the stopped process.
    let r = reqwest::Client::new().get(format!("http://{addr}/api/data")).bearer_auth(token).send().await?;
    assert_eq!(r.status(), 200, "same keys, same data");
    drop(server);
    Ok(())
}
