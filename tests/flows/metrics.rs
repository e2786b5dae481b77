//! Operations (docs/OPERATIONS.md): the embedded-metric-format lines a flow really writes
//! are valid EMF, and the template's alarms and dashboard read only metrics and dimensions
//! the code emits. (The request ids on log lines: `tests/audit.rs`, whose binary captures
//! the log.)
use anyhow::{Context, Result, ensure};
use oauth_core::lambda::authorizer::{ScopeRules, handle_event};
use oauth_core::telemetry::metrics;
use oauth_tests::harness::{CB, PASSWORD, TestEnv, VERIFIER, str_field};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

const TEMPLATE: &str = include_str!("../../template.yaml");

/// (metric, its dimension names) → the values seen of each non-`Function` dimension.
type Emitted = BTreeMap<(String, Vec<String>), BTreeSet<String>>;

/// Parse EMF lines strictly: `_aws` with a timestamp and one directive naming the namespace,
/// one dimension set (`Function` first) and the metrics with units; every dimension a string
/// member, every metric a number member.
fn parse(lines: &[String]) -> Result<Emitted> {
    let mut out = Emitted::new();
    for line in lines {
        ensure!(line.ends_with('\n') && !line.trim_end().contains('\n'), "one line each: {line:?}");
        let v: Value = serde_json::from_str(line)?;
        let aws = &v["_aws"];
        ensure!(aws["Timestamp"].as_u64().is_some_and(|t| t > 1_600_000_000_000), "{line}");
        let directives = aws["CloudWatchMetrics"].as_array().context("CloudWatchMetrics")?;
        ensure!(directives.len() == 1, "{line}");
        let d = &directives[0];
        ensure!(d["Namespace"].as_str().is_some_and(|n| !n.is_empty()), "{line}");
        let sets = d["Dimensions"].as_array().context("Dimensions")?;
        ensure!(sets.len() == 1, "{line}");
        let dims: Vec<String> =
            sets[0].as_array().context("dimension set")?.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect();
        ensure!(dims.first().map(String::as_str) == Some("Function"), "{line}");
        for dim in &dims {
            ensure!(v[dim].as_str().is_some_and(|s| !s.is_empty()), "dimension {dim} missing: {line}");
        }
        for m in d["Metrics"].as_array().context("Metrics")? {
            let name = m["Name"].as_str().context("Name")?;
            ensure!(matches!(m["Unit"].as_str(), Some("Count" | "Milliseconds")), "{line}");
            ensure!(v[name].as_f64().is_some(), "metric {name} has no value: {line}");
            let seen = out.entry((name.to_owned(), dims.clone())).or_default();
            seen.extend(dims.iter().skip(1).filter_map(|d| v[d].as_str().map(str::to_owned)));
        }
    }
    Ok(out)
}

/// A flow that passes every place a metric is written: a failed login, a code exchange and
/// a refresh, client credentials, a device's poll, the authorizer allowing and denying.
async fn flow(env: &TestEnv) -> Result<()> {
    env.alice().await?;
    let (id, secret) = env.web_client("openid offline_access data:read").await?;
    let page = env.authorize(&oauth_tests::harness::authz_query(&id, Some(CB), "openid", "s")).await?;
    ensure!(env.submit(&page, "alice", "wrong password", "allow").await?.status == 401);
    let code = env.code_for(&id, CB, "openid offline_access data:read").await?;
    let (status, tokens) = env.exchange(&id, &secret, &code, VERIFIER, Some(CB)).await?;
    ensure!(status == 200, "{tokens}");
    ensure!(env.refresh(&id, &secret, &str_field(&tokens, "refresh_token")?, None).await?.0 == 200);
    let (svc, svc_secret) = env.service_client("data:read").await?;
    let token = env.cc_token(&svc, &svc_secret, None).await?;
    let (tv, started) = env.device_request("openid").await?;
    let mut b = env.browser();
    b.get("/device").await?;
    let page = b.post("/device", &[("user_code", &str_field(&started, "user_code")?)]).await?;
    ensure!(b.login(&page, "alice", PASSWORD, "allow").await?.status == 303);
    ensure!(env.device_poll(&tv, &str_field(&started, "device_code")?).await?.0 == 200);
    let rules = ScopeRules::parse("GET /api/data=data:read")?;
    let raw = include_str!("../../events/authorizer-v2-valid.json");
    for (t, allowed) in [(token.as_str(), true), ("not-a-token", false)] {
        let ev: Value = serde_json::from_str(&raw.replace("REPLACE_ACCESS_TOKEN", t))?;
        let answer = handle_event(&env.app, &rules, ev).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        ensure!(answer["isAuthorized"] == allowed, "{answer}");
    }
    Ok(())
}

/// A metric the template reads: its name, its dimension names, the values of its
/// non-`Function` dimensions.
type Reference = (String, Vec<String>, Vec<String>);

/// The template's metric references in the stack's namespace, from the alarms and the
/// dashboard.
fn template_references() -> Result<Vec<Reference>> {
    let t: serde_yaml::Value = serde_yaml::from_str(TEMPLATE)?;
    let mut refs = Vec::new();
    for (id, res) in t["Resources"].as_mapping().context("Resources")? {
        match res["Type"].as_str() {
            Some("AWS::CloudWatch::Alarm") => {
                for m in res["Properties"]["Metrics"].as_sequence().context("alarm Metrics")? {
                    let metric = &m["MetricStat"]["Metric"];
                    let ours = matches!(&metric["Namespace"], serde_yaml::Value::Tagged(tag)
                        if tag.value.as_str() == Some("AWS::StackName"));
                    if !ours {
                        continue;
                    }
                    let name = metric["MetricName"].as_str().with_context(|| format!("{id:?}"))?.to_owned();
                    let mut dims = Vec::new();
                    let mut values = Vec::new();
                    for d in metric["Dimensions"].as_sequence().into_iter().flatten() {
                        dims.push(d["Name"].as_str().unwrap_or_default().to_owned());
                        if d["Name"].as_str() != Some("Function") {
                            values.push(d["Value"].as_str().unwrap_or_default().to_owned());
                        }
                    }
                    refs.push((name, dims, values));
                }
            }
            Some("AWS::CloudWatch::Dashboard") => {
                let body = match &res["Properties"]["DashboardBody"] {
                    serde_yaml::Value::Tagged(tag) => tag.value.as_str().context("!Sub body")?.to_owned(),
                    other => other.as_str().context("body")?.to_owned(),
                };
                let body: Value = serde_json::from_str(&body)?;
                for w in body["widgets"].as_array().context("widgets")? {
                    for m in w["properties"]["metrics"].as_array().context("widget metrics")? {
                        let parts: Vec<&str> =
                            m.as_array().context("metric")?.iter().filter_map(Value::as_str).collect();
                        if parts.first() != Some(&"${AWS::StackName}") {
                            continue;
                        }
                        let pairs: Vec<&[&str]> = parts[2..].chunks(2).collect();
                        let dims = pairs.iter().map(|p| p[0].to_owned()).collect();
                        let values = pairs.iter().filter(|p| p[0] != "Function").map(|p| p[1].to_owned()).collect();
                        refs.push((parts[1].to_owned(), dims, values));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(refs)
}

#[tokio::test]
async fn every_metric_line_is_emf_and_the_alarms_and_dashboard_read_only_what_the_code_emits() -> Result<()> {
    ensure!(metrics::capture("test"), "metric lines already go to stdout in this process");
    let env = TestEnv::new().await?;
    flow(&env).await?;
    let emitted = parse(&metrics::captured())?;
    // The declared list is exactly what the code writes.
    let declared: BTreeSet<(String, Vec<String>)> =
        metrics::METRICS.iter().map(|(n, d)| ((*n).to_owned(), d.iter().map(|s| (*s).to_owned()).collect())).collect();
    let seen: BTreeSet<(String, Vec<String>)> = emitted.keys().cloned().collect();
    ensure!(seen == declared, "emitted {seen:?}, declared {declared:?}");
    ensure!(
        emitted.get(&("TokensIssued".into(), vec!["Function".into(), "GrantType".into()])).is_some_and(|g| {
            ["authorization_code", "refresh_token", "client_credentials", "device_code"].iter().all(|x| g.contains(*x))
        }),
        "{emitted:?}"
    );
    let refs = template_references()?;
    ensure!(refs.len() >= 20, "{refs:?}");
    for (name, dims, values) in &refs {
        let seen = emitted.get(&(name.clone(), dims.clone()));
        ensure!(seen.is_some(), "the template reads {name} by {dims:?}, which no line carries");
        for v in values {
            ensure!(seen.is_some_and(|s| s.contains(v)), "the template reads {name} for {v}, never emitted");
        }
    }
    Ok(())
}
