//! DynamoDB answers the emulator never gives, fed to the real `DynamoStore` through the
//! SDK's replay HTTP client (as `tests/flows/dynamodb_replay.rs` does with recorded ones):
//! malformed or truncated JSON, wrong attribute types, corrupt `data` documents, unknown
//! error types, cancellation reasons in any order, a conflict on every attempt. Whatever
//! DynamoDB (or something between it and the function) answers, the store returns a value
//! or a `StoreError`, never panics, and its decisions stay consistent with the item it read:
//! a code reported replayed was consumed by another request, a refresh token reported
//! already rotated was rotated to another token, a page holds at most the requested items.
//!
//! Input: one selector byte (which store call), then up to eight responses, each a status
//! byte (200, 400 or 500), a 16-bit big-endian length and that many body bytes.
#![no_main]
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, retry::RetryConfig};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use libfuzzer_sys::fuzz_target;
use oauth_core::domain::{AuthCode, RefreshFamily, RefreshRecord, ScopeSet};
use oauth_core::store::{
    ClientStore, CodeStore, Consume, DataStore, DynamoStore, Issue, Rotate, ThrottleStore, TokenStore, UserStore,
};
use std::sync::OnceLock;

/// The instant `secs` seconds after the Unix epoch (the store traits take `OffsetDateTime`).
fn at(secs: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs)
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    // Paused time: the store's conflict backoff sleeps advance at once.
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().expect("runtime")
    })
}

fn events(mut data: &[u8]) -> Vec<ReplayEvent> {
    let mut out = Vec::new();
    while let [status, hi, lo, rest @ ..] = data {
        if out.len() == 8 {
            break;
        }
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        let (body, tail) = rest.split_at(len);
        data = tail;
        let status = match status % 3 {
            0 => 200,
            1 => 400,
            _ => 500,
        };
        let request = http::Request::builder().uri("https://dynamodb.us-east-1.amazonaws.com/").body(SdkBody::empty());
        let response = http::Response::builder()
            .status(status)
            .header("content-type", "application/x-amz-json-1.0")
            .body(SdkBody::from(body.to_vec()));
        if let (Ok(req), Ok(resp)) = (request, response) {
            out.push(ReplayEvent::new(req, resp));
        }
    }
    out
}

fn refresh_record() -> RefreshRecord {
    RefreshRecord {
        token_hash: "new".into(),
        family_id: "fam_1".into(),
        client_id: "cl_1".into(),
        sub: "usr_1".into(),
        scope: ScopeSet::parse("openid offline_access").unwrap_or_default(),
        auth_time: 1_700_000_000,
        issued_at: 1_700_000_000,
        expires_at: 4_102_444_800,
        family_expires_at: 4_102_444_800,
        rotated_at: None,
        rotated_to: None,
        session: Some("s1".into()),
    }
}

fn family() -> RefreshFamily {
    RefreshFamily {
        sub: "usr_1".into(),
        client_id: "cl_1".into(),
        family_id: "fam_1".into(),
        session: Some("s1".into()),
        created_at: 1_700_000_010,
        expires_at: 1_800_000_000,
    }
}

fn code() -> AuthCode {
    AuthCode {
        code_hash: "h".into(),
        client_id: "cl_1".into(),
        redirect_uri: "https://client.example/cb".into(),
        redirect_uri_sent: true,
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into(),
        scope: ScopeSet::parse("openid").unwrap_or_default(),
        nonce: None,
        sub: "usr_1".into(),
        auth_time: 1_700_000_000,
        family_id: "fam_1".into(),
        expires_at: 4_102_444_800,
        consumed_at: None,
        consumed_by: None,
        session: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let [selector, rest @ ..] = data else { return };
    let http = StaticReplayClient::new(events(rest));
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDEXAMPLE", "secret", None, None, "fuzz"))
        .retry_config(RetryConfig::disabled())
        .http_client(http)
        .build();
    let s = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), "oauth");
    let now = at(1_700_000_010);
    runtime().block_on(async {
        match selector % 14 {
            0 => {
                let (rt, fam) = (refresh_record(), family());
                let issue = Issue { sub: "usr_1", client_id: "cl_1", refresh: Some((&rt, &fam)) };
                let r = s.consume_code("h", at(1_700_000_010), at(1_700_003_610), "req_1", issue).await;
                if let Ok(Consume::Replayed(c)) = r {
                    assert!(c.consumed_by.as_deref() != Some("req_1"), "our own retried write called a replay");
                }
            }
            1 => {
                let issue = Issue { sub: "usr_1", client_id: "cl_1", refresh: None };
                if let Ok(Consume::Replayed(c)) = s.consume_code("h", at(1_700_000_010), at(1_700_003_610), "req_1", issue).await {
                    assert!(c.consumed_by.as_deref() != Some("req_1"), "our own retried write called a replay");
                }
            }
            2 => {
                if let Ok(Rotate::AlreadyRotated(r)) = s.rotate_refresh("old", &refresh_record(), at(1_700_000_030)).await {
                    assert!(r.rotated_to.as_deref() != Some("new"), "our own retried rotation called a reuse");
                }
            }
            3 => drop(s.user_by_username("alice").await),
            4 => drop(s.user_by_sub("usr_1").await),
            5 => drop(s.client("cl_1").await),
            6 => drop(s.code("h").await),
            7 => drop(s.refresh("old").await),
            8 => drop(s.is_revoked("at_1", Some("fam_1"), now).await),
            9 => drop(s.hit("login#alice", 900, now).await),
            10 => drop(s.count("login#alice", now).await),
            11 => drop(s.forgive("login#alice", now).await),
            12 => {
                if let Ok(items) = s.items_for("usr_1", 3).await {
                    assert!(items.len() <= 3, "{} items for a page of 3", items.len());
                }
            }
            _ => {
                drop(s.put_code(&code()).await);
                drop(s.create_user(&code_user()).await);
            }
        }
    });
});

fn code_user() -> oauth_core::domain::User {
    oauth_core::domain::User {
        sub: "usr_1".into(),
        username: oauth_core::domain::Username::parse("alice").unwrap_or_else(|_| unreachable!("a valid username")),
        email: None,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
        created_at: 1_700_000_000,
        disabled: false,
    }
}
