//! DynamoDB outcomes the emulator never produces, replayed into the real `DynamoStore`
//! through the SDK's own test HTTP client: a transaction cancelled with
//! `TransactionConflict` (another transaction in flight on the item; the SDK does not retry
//! it), a transaction cancelled by the condition of one of several items, a single write
//! refused with `TransactionConflictException`, and `BatchGetItem` leaving keys unprocessed. The responses are DynamoDB's wire format (JSON 1.0, as the API
//! reference documents them), one per call the store makes, in order.
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::test_util::{ReplayEvent, StaticReplayClient};
use aws_smithy_types::body::SdkBody;
use oauth_core::domain::{AuthCode, RefreshFamily, RefreshRecord, ScopeSet, User, Username};
use oauth_core::store::{
    CodeStore, Consume, DynamoStore, Issue, Rotate, SessionStore, StoreError, TokenStore, UserStore,
};
use serde_json::{Value, json};

/// The instant `secs` seconds after the Unix epoch (the store traits take `OffsetDateTime`).
fn at(secs: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(secs)
}

const TABLE: &str = "oauth";

fn response(status: u16, body: &Value) -> ReplayEvent {
    let request = http::Request::builder().uri("https://dynamodb.us-east-1.amazonaws.com/").body(SdkBody::empty());
    let response = http::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .body(SdkBody::from(body.to_string()));
    match (request, response) {
        (Ok(req), Ok(resp)) => ReplayEvent::new(req, resp),
        _ => unreachable!("static request and response"),
    }
}

fn ok(body: Value) -> ReplayEvent {
    response(200, &body)
}

/// `TransactionCanceledException` with one reason per item (DynamoDB API reference).
fn cancelled(reasons: &[&str]) -> ReplayEvent {
    let reasons: Vec<Value> = reasons
        .iter()
        .map(|r| match *r {
            "TransactionConflict" => json!({"Code": r, "Message": "Transaction is ongoing for the item"}),
            _ => json!({"Code": r}),
        })
        .collect();
    response(
        400,
        &json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
            "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
            "CancellationReasons": reasons,
        }),
    )
}

fn single_write_conflict() -> ReplayEvent {
    response(
        400,
        &json!({
            "__type": "com.amazonaws.dynamodb.v20120810#TransactionConflictException",
            "message": "Transaction is ongoing for the item",
        }),
    )
}

fn store(events: Vec<ReplayEvent>) -> (DynamoStore, StaticReplayClient) {
    let http = StaticReplayClient::new(events);
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDEXAMPLE", "secret", None, None, "replay"))
        .http_client(http.clone())
        .build();
    (DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(config), TABLE), http)
}

/// The X-Amz-Target operation of every request the store sent.
fn operations(http: &StaticReplayClient) -> Vec<String> {
    http.actual_requests()
        .map(|r| {
            r.headers().get("x-amz-target").unwrap_or_default().trim_start_matches("DynamoDB_20120810.").to_owned()
        })
        .collect()
}

fn code(consumed_by: Option<&str>) -> AuthCode {
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
        consumed_at: consumed_by.map(|_| 1_700_000_010),
        consumed_by: consumed_by.map(str::to_owned),
        session: None,
        resources: Vec::new(),
        amr: None,
        dpop_jkt: None,
    }
}

/// A code item as GetItem returns it, built by the store's own mapping.
async fn code_item(consumed_by: Option<&str>) -> anyhow::Result<Value> {
    let (s, http) = store(vec![ok(json!({}))]);
    s.put_code(&code(consumed_by)).await?;
    let sent = http.actual_requests().next().map(|r| r.body().bytes().unwrap_or_default().to_vec()).unwrap_or_default();
    let put: Value = serde_json::from_slice(&sent)?;
    Ok(put["Item"].clone())
}

fn refresh_record(rotated_to: Option<&str>) -> RefreshRecord {
    RefreshRecord {
        token_hash: "old".into(),
        family_id: "fam_1".into(),
        client_id: "cl_1".into(),
        sub: "usr_1".into(),
        scope: ScopeSet::parse("openid offline_access").unwrap_or_default(),
        auth_time: 1_700_000_000,
        issued_at: 1_700_000_000,
        expires_at: 4_102_444_800,
        family_expires_at: 4_102_444_800,
        rotated_at: rotated_to.map(|_| 1_700_000_020),
        rotated_to: rotated_to.map(str::to_owned),
        session: None,
        resources: Vec::new(),
        jkt: None,
    }
}

fn family() -> RefreshFamily {
    RefreshFamily {
        sub: "usr_1".into(),
        client_id: "cl_1".into(),
        family_id: "fam_1".into(),
        session: None,
        created_at: 1_700_000_010,
        expires_at: 4_102_444_800,
    }
}

/// A redemption of usr_1's code for cl_1, with a refresh family when `family` is given:
/// the transaction is the code, the grant, then the refresh token and the family's entry.
fn redeem<'a>(rt: &'a RefreshRecord, family: Option<&'a RefreshFamily>) -> Issue<'a> {
    Issue { sub: "usr_1", client_id: "cl_1", refresh: family.map(|f| (rt, f)) }
}

/// One cancellation reason per item of a redemption with a refresh family, the code's first.
fn code_reasons(code: &'static str) -> Vec<&'static str> {
    vec![code, "None", "None", "None"]
}

async fn refresh_item(rotated_to: Option<&str>) -> anyhow::Result<Value> {
    let (s, http) = store(vec![cancelled(&["None", "ConditionalCheckFailed", "None"])]);
    // A rotation's successor Put carries the record as the store maps it.
    let _ = s.rotate_refresh("x", &refresh_record(rotated_to), at(1)).await;
    let sent = http.actual_requests().next().map(|r| r.body().bytes().unwrap_or_default().to_vec()).unwrap_or_default();
    let tx: Value = serde_json::from_slice(&sent)?;
    let mut item = tx["TransactItems"][1]["Put"]["Item"].clone();
    item["pk"] = json!({"S": "RT#old"});
    Ok(item)
}

fn user() -> anyhow::Result<User> {
    let username = Username::parse("alice").map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(User {
        sub: "usr_1".into(),
        username,
        email: None,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
        created_at: 1_700_000_000,
        disabled: false,
    })
}

#[tokio::test]
async fn a_conflicted_code_exchange_is_retried_and_then_commits() -> anyhow::Result<()> {
    let (rt, fam) = (refresh_record(None), family());
    let (s, http) = store(vec![cancelled(&code_reasons("TransactionConflict")), ok(json!({}))]);
    let r = s.consume_code("h", at(1_700_000_010), at(1_700_000_010 + 3600), "req_1", redeem(&rt, Some(&fam))).await?;
    assert_eq!(r, Consume::Fresh);
    assert_eq!(operations(&http), ["TransactWriteItems", "TransactWriteItems"]);
    Ok(())
}

/// The loser of two concurrent redemptions: conflicts every time, then the code shows the
/// other request consumed it. A replay (the caller revokes the family), not a 503.
#[tokio::test]
async fn a_code_exchange_that_keeps_conflicting_is_decided_on_a_consistent_read() -> anyhow::Result<()> {
    let (rt, fam) = (refresh_record(None), family());
    let conflicts = || (0..4).map(|_| cancelled(&code_reasons("TransactionConflict"))).collect::<Vec<_>>();
    let mut events = conflicts();
    events.push(ok(json!({"Item": code_item(Some("req_other")).await?})));
    let (s, http) = store(events);
    let r = s.consume_code("h", at(1_700_000_010), at(1_700_000_010 + 3600), "req_1", redeem(&rt, Some(&fam))).await?;
    assert!(matches!(r, Consume::Replayed(c) if c.consumed_by.as_deref() == Some("req_other")), "a replay");
    let ops = operations(&http);
    assert_eq!(ops.len(), 5, "four attempts, then one read: {ops:?}");
    assert_eq!(ops.last().map(String::as_str), Some("GetItem"));
    let read: Value =
        serde_json::from_slice(http.actual_requests().last().and_then(|r| r.body().bytes()).unwrap_or_default())?;
    assert_eq!(read["ConsistentRead"], true, "decided on a consistent read");

    // Our own earlier attempt won (its response was lost): a retry, not a replay.
    let mut events = conflicts();
    events.push(ok(json!({"Item": code_item(Some("req_1")).await?})));
    let (s, _) = store(events);
    assert_eq!(
        s.consume_code("h", at(1_700_000_010), at(1_700_000_010 + 3600), "req_1", redeem(&rt, Some(&fam))).await?,
        Consume::Fresh
    );

    // Nobody consumed it (the other transaction failed too): unknown yet, so a 503.
    let mut events = conflicts();
    events.push(ok(json!({"Item": code_item(None).await?})));
    let (s, _) = store(events);
    let r = s.consume_code("h", at(1_700_000_010), at(1_700_000_010 + 3600), "req_1", redeem(&rt, Some(&fam))).await;
    assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
    Ok(())
}

/// Which item's condition cancelled a redemption or a rotation decides the answer: the code
/// (or the old refresh token) first, so a replay or a reuse is never taken for a withdrawn
/// consent; the grant or the session otherwise.
#[tokio::test]
async fn a_transaction_cancelled_by_the_grant_or_the_session_is_withdrawn_not_a_replay() -> anyhow::Result<()> {
    let (rt, fam) = (refresh_record(None), family());
    // Without a refresh family: the code and the grant.
    let (s, http) = store(vec![cancelled(&["None", "ConditionalCheckFailed"])]);
    let r = s.consume_code("h", at(1_700_000_010), at(1_700_000_010 + 3600), "req_1", redeem(&rt, None)).await?;
    assert_eq!(r, Consume::Withdrawn);
    let sent: Value =
        serde_json::from_slice(http.actual_requests().next().and_then(|r| r.body().bytes()).unwrap_or_default())?;
    assert_eq!(sent["TransactItems"][1]["Update"]["Key"]["sk"]["S"], "GRANT#cl_1", "{sent}");
    assert_eq!(sent["TransactItems"][1]["Update"]["ConditionExpression"], "attribute_exists(pk)");
    // A replay is a replay even when the grant is gone too.
    let mut reasons = vec![
        json!({"Code": "ConditionalCheckFailed", "Item": code_item(Some("req_other")).await?}),
        json!({"Code": "ConditionalCheckFailed"}),
    ];
    reasons.extend([json!({"Code": "None"}), json!({"Code": "None"})]);
    let replayed = response(
        400,
        &json!({"__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": "Transaction cancelled", "CancellationReasons": reasons}),
    );
    let (s, _) = store(vec![replayed]);
    let r = s.consume_code("h", at(1_700_000_010), at(1_700_000_010 + 3600), "req_1", redeem(&rt, Some(&fam))).await?;
    assert!(matches!(r, Consume::Replayed(_)), "{r:?}");
    // A session-bound family: the session's condition check is the last item.
    let bound_rt = RefreshRecord { session: Some("s1".into()), ..refresh_record(None) };
    let bound_fam = RefreshFamily { session: Some("s1".into()), ..family() };
    let (s, http) = store(vec![cancelled(&["None", "None", "ConditionalCheckFailed", "None", "None"])]);
    let r = s
        .consume_code("h", at(1_700_000_010), at(1_700_000_010 + 3600), "req_1", redeem(&bound_rt, Some(&bound_fam)))
        .await?;
    assert_eq!(r, Consume::Withdrawn);
    let sent: Value =
        serde_json::from_slice(http.actual_requests().next().and_then(|r| r.body().bytes()).unwrap_or_default())?;
    assert_eq!(sent["TransactItems"][2]["ConditionCheck"]["Key"]["sk"]["S"], "SESSION#s1", "{sent}");
    // A refresh token's own successor failing its put is not a withdrawal.
    let new = RefreshRecord { token_hash: "new".into(), ..bound_rt.clone() };
    let (s, _) = store(vec![cancelled(&["None", "None", "None", "ConditionalCheckFailed"])]);
    assert_eq!(s.rotate_refresh("old", &new, at(1_700_000_030)).await?, Rotate::Withdrawn, "the session ended");
    let (s, _) = store(vec![cancelled(&["None", "ConditionalCheckFailed", "None", "None"])]);
    assert!(matches!(s.rotate_refresh("old", &new, at(1_700_000_030)).await, Err(StoreError::Backend(_))));
    Ok(())
}

/// A single write to a session or grant that a redemption's transaction holds is retried,
/// not failed: `TransactionConflictException` says nothing about the item.
#[tokio::test]
async fn a_session_touch_that_meets_a_transaction_is_retried() -> anyhow::Result<()> {
    let (s, http) = store(vec![single_write_conflict(), ok(json!({}))]);
    assert!(s.touch_session("usr_1", "s1", 86_400, at(1_700_000_010)).await?);
    assert_eq!(operations(&http), ["UpdateItem", "UpdateItem"]);
    let (s, http) = store((0..4).map(|_| single_write_conflict()).collect());
    assert!(matches!(s.touch_session("usr_1", "s1", 86_400, at(1_700_000_010)).await, Err(StoreError::Backend(_))));
    assert_eq!(operations(&http).len(), 4, "the retry budget");
    Ok(())
}

#[tokio::test]
async fn concurrent_registrations_of_one_name_get_409_not_503() -> anyhow::Result<()> {
    let mut events: Vec<_> = (0..4).map(|_| cancelled(&["TransactionConflict", "TransactionConflict"])).collect();
    events.push(ok(json!({"Item": {"pk": {"S": "USERNAME#alice"}, "sk": {"S": "USER"}, "sub": {"S": "usr_0"},
        "username": {"S": "alice"}, "password_hash": {"S": "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"},
        "created_at": {"N": "1700000000"}}})));
    let (s, http) = store(events);
    let r = s.create_user(&user()?).await;
    assert!(matches!(r, Err(StoreError::AlreadyExists)), "{r:?}");
    assert_eq!(operations(&http).last().map(String::as_str), Some("GetItem"));
    // Conflict, then the retry commits.
    let (s, _) = store(vec![cancelled(&["None", "TransactionConflict"]), ok(json!({}))]);
    s.create_user(&user()?).await?;
    Ok(())
}

#[tokio::test]
async fn a_refresh_rotation_that_keeps_conflicting_is_decided_on_a_consistent_read() -> anyhow::Result<()> {
    let new = RefreshRecord { token_hash: "new".into(), ..refresh_record(None) };
    let conflicts = || (0..4).map(|_| cancelled(&["TransactionConflict", "None", "None"])).collect::<Vec<_>>();
    let mut events = conflicts();
    events.push(ok(json!({"Item": refresh_item(Some("someone-else")).await?})));
    let (s, _) = store(events);
    assert!(matches!(s.rotate_refresh("old", &new, at(1_700_000_030)).await?, Rotate::AlreadyRotated(_)), "reuse");
    let mut events = conflicts();
    events.push(ok(json!({"Item": refresh_item(Some("new")).await?})));
    let (s, _) = store(events);
    assert_eq!(s.rotate_refresh("old", &new, at(1_700_000_030)).await?, Rotate::Rotated, "our own retried write");
    Ok(())
}

/// `UnprocessedKeys` every time: the revocation check fails (503), it never answers "not
/// revoked"; once DynamoDB processes the keys, a found revocation counts.
#[tokio::test]
async fn unprocessed_revocation_keys_fail_closed() -> anyhow::Result<()> {
    let unprocessed = || {
        ok(json!({"Responses": {TABLE: []}, "UnprocessedKeys": {TABLE: {"ConsistentRead": true,
            "Keys": [{"pk": {"S": "REVOKED#jti#at_1"}, "sk": {"S": "REVOKED"}}]}}}))
    };
    let (s, http) = store((0..5).map(|_| unprocessed()).collect());
    let r = s.is_revoked("at_1", Some("fam_1"), time::OffsetDateTime::now_utc()).await;
    assert!(matches!(r, Err(StoreError::Backend(_))), "{r:?}");
    assert_eq!(operations(&http).len(), 5, "the retry budget");
    let found = ok(json!({"Responses": {TABLE: [{"pk": {"S": "REVOKED#jti#at_1"}, "sk": {"S": "REVOKED"},
        "expires_at": {"N": "4102444800"}}]}}));
    let (s, _) = store(vec![unprocessed(), found]);
    assert!(s.is_revoked("at_1", None, time::OffsetDateTime::now_utc()).await?, "revoked, once processed");
    Ok(())
}
