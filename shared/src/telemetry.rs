//! The process's log subscriber: JSON lines on Lambda (CloudWatch reads stdout), text
//! locally. Installed once per process, at start.

/// Install the global log subscriber: JSON lines for Lambda (CloudWatch), text locally.
/// `RUST_LOG` sets the level (`error`, `warn`, `info` (default), `debug`, `trace`).
pub fn init_tracing(json: bool) {
    // A level, not per-module directives: the directive parser pulls a regex engine (~1 MB)
    // into every Lambda binary.
    let level = std::env::var("RUST_LOG").ok().and_then(|v| v.parse::<tracing_subscriber::filter::LevelFilter>().ok());
    let level = level.unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    // A second initialisation (tests) is harmless: the first subscriber stays.
    let _ = if json {
        tracing::subscriber::set_global_default(json_subscriber(level, std::io::stdout))
    } else {
        use std::io::IsTerminal;
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_max_level(level)
                .with_target(false)
                .with_ansi(std::io::stdout().is_terminal())
                .finish(),
        )
    };
}

/// The JSON log format: one object per line, the event's fields at the top level (`event`,
/// ids, `message`) and the spans it happened in (outermost first: the request's `path` and
/// `source_ip`) under `spans`. Audit events are the lines with an `event` field.
pub fn json_subscriber<W>(
    level: tracing_subscriber::filter::LevelFilter,
    writer: W,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false)
        .with_writer(writer)
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(true)
        .without_time()
        .finish()
}
