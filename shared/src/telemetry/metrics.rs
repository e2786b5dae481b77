//! CloudWatch metrics as embedded-metric-format log lines (EMF: a JSON line whose `_aws`
//! member tells CloudWatch Logs which of its fields are metrics): no AWS call, no batching,
//! one `write` per line. On Lambda every HTTP request writes one line (`Requests`,
//! `Errors5xx`, `Latency`, by `Function`), every token response one (`TokensIssued`, by
//! `Function` and `GrantType`), every failed password check one (`LoginFailures`), every
//! authorizer decision one (`AuthorizerAllowed` or `AuthorizerDenied`). The template's alarms
//! and dashboard read exactly these names (docs/OPERATIONS.md). Nothing is written until
//! [`init`] (the Lambda entry points; `oauth-local` with `METRICS_NAMESPACE`) or [`capture`]
//! (tests) chose where lines go.
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::{Mutex, OnceLock};

/// The names of every metric this code emits, with their dimension sets (`Function` always
/// first): what the template may refer to.
pub const METRICS: &[(&str, &[&str])] = &[
    ("Requests", &["Function"]),
    ("Errors5xx", &["Function"]),
    ("Latency", &["Function"]),
    ("TokensIssued", &["Function", "GrantType"]),
    ("LoginFailures", &["Function"]),
    ("AuthorizerAllowed", &["Function"]),
    ("AuthorizerDenied", &["Function"]),
];

enum Sink {
    Stdout,
    /// The long-running local server's batched log writer (one `write` per 10 ms).
    Batched(super::BatchedStdout),
    Capture(Mutex<Vec<String>>),
}

struct Emitter {
    namespace: String,
    function: &'static str,
    sink: Sink,
}

static EMITTER: OnceLock<Emitter> = OnceLock::new();

/// The namespace every line names when none is configured.
pub const DEFAULT_NAMESPACE: &str = "OAuthServer";

/// A namespace CloudWatch accepts and that needs no JSON escaping, else the default.
fn checked(namespace: &str) -> String {
    let ok = !namespace.is_empty()
        && namespace.len() <= 255
        && namespace.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./#:".contains(&b));
    if ok { namespace.to_owned() } else { DEFAULT_NAMESPACE.to_owned() }
}

/// Write metric lines to stdout from now on, in `namespace` (`METRICS_NAMESPACE`; the
/// template sets the stack's name), for `function`. Once per process; later calls change
/// nothing.
pub fn init(namespace: Option<&str>, function: &'static str) {
    let _ = EMITTER.set(Emitter {
        namespace: checked(namespace.unwrap_or(DEFAULT_NAMESPACE)),
        function,
        sink: Sink::Stdout,
    });
}

/// Write metric lines through `out`, the batched writer of `oauth-local`'s log lines, in
/// `namespace` (when `METRICS_NAMESPACE` is set; the Lambda functions write each line at
/// once, as they do their log lines).
pub fn init_batched(namespace: &str, function: &'static str, out: super::BatchedStdout) {
    let _ = EMITTER.set(Emitter { namespace: checked(namespace), function, sink: Sink::Batched(out) });
}

/// Keep metric lines in memory instead (tests), for `function`; what [`captured`] returns.
/// Returns `false` when lines already go to stdout.
pub fn capture(function: &'static str) -> bool {
    let e = EMITTER.get_or_init(|| Emitter {
        namespace: DEFAULT_NAMESPACE.to_owned(),
        function,
        sink: Sink::Capture(Mutex::default()),
    });
    matches!(e.sink, Sink::Capture(_))
}

/// Every line captured so far (empty unless [`capture`] was called first).
pub fn captured() -> Vec<String> {
    match EMITTER.get().map(|e| &e.sink) {
        Some(Sink::Capture(lines)) => lines.lock().map(|l| l.clone()).unwrap_or_default(),
        _ => Vec::new(),
    }
}

fn now_ms() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// One EMF line: `metrics` (name, unit, value) under `dimensions` (name, value; `Function`
/// is added first). Values of dimensions are plain ASCII names chosen by this code.
fn emit(dimensions: &[(&str, &str)], metrics: &[(&str, &str, f64)]) {
    let Some(e) = EMITTER.get() else { return };
    let mut line = String::with_capacity(320);
    let _ = write!(
        line,
        r#"{{"_aws":{{"Timestamp":{},"CloudWatchMetrics":[{{"Namespace":"{}","Dimensions":[["Function""#,
        now_ms(),
        e.namespace
    );
    for (name, _) in dimensions {
        let _ = write!(line, r#","{name}""#);
    }
    line.push_str(r#"]],"Metrics":["#);
    for (i, (name, unit, _)) in metrics.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(line, r#"{sep}{{"Name":"{name}","Unit":"{unit}"}}"#);
    }
    let _ = write!(line, r#"]}}]}},"Function":"{}""#, e.function);
    for (name, value) in dimensions {
        let _ = write!(line, r#","{name}":"{value}""#);
    }
    for (name, _, value) in metrics {
        let _ = write!(line, r#","{name}":{value}"#);
    }
    line.push_str("}\n");
    match &e.sink {
        Sink::Stdout => {
            let _ = std::io::stdout().lock().write_all(line.as_bytes());
        }
        Sink::Batched(out) => {
            use tracing_subscriber::fmt::MakeWriter;
            let _ = out.make_writer().write_all(line.as_bytes());
        }
        Sink::Capture(lines) => {
            if let Ok(mut l) = lines.lock() {
                l.push(line);
            }
        }
    }
}

/// An HTTP request answered with `status` after `latency`.
pub fn request(status: u16, latency: std::time::Duration) {
    let ms = latency.as_secs_f64() * 1000.0;
    let errors = if status >= 500 { 1.0 } else { 0.0 };
    emit(&[], &[("Requests", "Count", 1.0), ("Errors5xx", "Count", errors), ("Latency", "Milliseconds", ms)]);
}

/// Tokens issued by the `grant` (`authorization_code`, `refresh_token`,
/// `client_credentials`, `device_code`).
pub fn token_issued(grant: &'static str) {
    emit(&[("GrantType", grant)], &[("TokensIssued", "Count", 1.0)]);
}

/// A password check that failed (wrong name or password, or throttled).
pub fn login_failed() {
    emit(&[], &[("LoginFailures", "Count", 1.0)]);
}

/// An authorizer decision.
pub fn authorizer_decision(allowed: bool) {
    let name = if allowed { "AuthorizerAllowed" } else { "AuthorizerDenied" };
    emit(&[], &[(name, "Count", 1.0)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_that_would_need_escaping_fall_back_to_the_default() {
        assert_eq!(checked("oauth-prod"), "oauth-prod");
        for bad in ["", "a\"b", "a\\b", "a b", "é", &"x".repeat(300)] {
            assert_eq!(checked(bad), DEFAULT_NAMESPACE, "{bad:?}");
        }
    }
}
