//! The process's log subscriber: JSON lines on Lambda (CloudWatch reads stdout), text
//! locally. Installed once per process, at start.
pub mod metrics;
mod text;

/// Install the global log subscriber: JSON lines for Lambda (CloudWatch), text locally.
/// `RUST_LOG` sets the level (`error`, `warn`, `info` (default), `debug`, `trace`). Each line
/// is written to stdout when it happens (a Lambda function may be frozen right after its
/// response, so nothing may wait in a buffer).
pub fn init_tracing(json: bool) {
    install(json, std::io::stdout);
}

/// [`init_tracing`] for a long-running server (`oauth-local`): the lines go through a
/// [`BatchedStdout`], so a busy server makes one `write` per 10 ms instead of one per
/// line. Keep the returned guard until shutdown: dropping it writes what is still pending.
pub fn init_tracing_batched(json: bool) -> LogFlush {
    let out = BatchedStdout::start();
    install(json, out.clone());
    LogFlush(out)
}

fn install<W>(json: bool, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    // A level, not per-module directives: the directive parser pulls a regex engine (~1 MB)
    // into every Lambda binary.
    let level = std::env::var("RUST_LOG").ok().and_then(|v| v.parse::<tracing_subscriber::filter::LevelFilter>().ok());
    let level = level.unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
    // A second initialisation (tests) is harmless: the first subscriber stays.
    let _ = if json {
        tracing::subscriber::set_global_default(json_subscriber(level, writer))
    } else {
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_max_level(level)
                .with_writer(writer)
                .fmt_fields(text::TextFields)
                .event_format(text::TextLine)
                .finish(),
        )
    };
}

/// Log lines gathered in memory and written to stdout by one thread: a line costs an append
/// to a shared buffer (no system call, no allocation once the buffer has grown), and the
/// thread, woken by the first line after a quiet spell, waits 10 ms for more and
/// writes them all in one `write`. Order is kept. A buffer over 4 MiB (stdout not keeping
/// up) is written by the logging thread itself, so memory stays bounded and a slow reader
/// slows the server instead of losing lines. A process that aborts loses at most the last
/// 10 ms of lines; a clean shutdown loses none ([`LogFlush`]).
#[derive(Clone)]
pub struct BatchedStdout(std::sync::Arc<Batch>);

struct Batch {
    pending: std::sync::Mutex<Vec<u8>>,
    ready: std::sync::Condvar,
    /// The buffer being written, swapped with `pending` (so both keep their capacity and a
    /// busy server stops allocating for its log); held while a batch is taken and written,
    /// so batches reach stdout in order.
    output: std::sync::Mutex<Vec<u8>>,
    /// No writer thread (the system refused one): each line is written at once.
    immediate: std::sync::atomic::AtomicBool,
    /// Where a batch goes (stdout; a test's buffer).
    sink: Sink,
}

/// Where [`BatchedStdout`] writes a batch.
type Sink = Box<dyn Fn(&[u8]) + Send + Sync>;

const MAX_PENDING: usize = 4 << 20;
const GATHER: std::time::Duration = std::time::Duration::from_millis(10);

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding it leaves a valid Vec (or nothing): keep logging.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl BatchedStdout {
    /// The buffer and its writer thread (named `log-writer`). Without a thread (the system
    /// refused one) every line is written at once, as [`init_tracing`] does.
    fn start() -> Self {
        Self::start_with(Box::new(|data| {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            // Nowhere to report a failed log write: the lines are dropped.
            let _ = stdout.write_all(data).and_then(|()| stdout.flush());
        }))
    }

    fn start_with(sink: Sink) -> Self {
        let out = Self(std::sync::Arc::new(Batch {
            pending: std::sync::Mutex::new(Vec::with_capacity(64 << 10)),
            ready: std::sync::Condvar::new(),
            output: std::sync::Mutex::new(Vec::with_capacity(64 << 10)),
            immediate: std::sync::atomic::AtomicBool::new(false),
            sink,
        }));
        let batch = out.0.clone();
        let spawned = std::thread::Builder::new().name("log-writer".into()).spawn(move || {
            loop {
                {
                    let mut pending = lock(&batch.pending);
                    while pending.is_empty() {
                        pending = batch.ready.wait(pending).unwrap_or_else(std::sync::PoisonError::into_inner);
                    }
                }
                std::thread::sleep(GATHER);
                batch.write_pending();
            }
        });
        if spawned.is_err() {
            out.0.immediate.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        out
    }

    /// Write everything pending now.
    pub fn flush(&self) {
        self.0.write_pending();
    }
}

impl Batch {
    fn write_pending(&self) {
        let mut batch = lock(&self.output);
        std::mem::swap(&mut *batch, &mut *lock(&self.pending));
        if !batch.is_empty() {
            (self.sink)(&batch);
            batch.clear();
        }
    }
}

/// One formatted line on its way into the buffer.
pub struct BatchWriter<'a>(&'a Batch);

impl std::io::Write for BatchWriter<'_> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut pending = lock(&self.0.pending);
        let was_empty = pending.is_empty();
        pending.extend_from_slice(line);
        let full = pending.len() > MAX_PENDING || self.0.immediate.load(std::sync::atomic::Ordering::Relaxed);
        drop(pending);
        if full {
            self.0.write_pending();
        } else if was_empty {
            self.0.ready.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedStdout {
    type Writer = BatchWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        BatchWriter(&self.0)
    }
}

/// Writes the pending log lines when dropped (at the end of `main`, after a graceful
/// shutdown or an error).
pub struct LogFlush(BatchedStdout);

impl LogFlush {
    /// The batched writer the log lines go through (the metric lines of `oauth-local` too).
    pub fn writer(&self) -> BatchedStdout {
        self.0.clone()
    }
}

impl Drop for LogFlush {
    fn drop(&mut self) {
        self.0.flush();
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::fmt::MakeWriter;

    fn collecting() -> (BatchedStdout, Arc<Mutex<Vec<u8>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        (BatchedStdout::start_with(Box::new(move |data| lock(&sink).extend_from_slice(data))), seen)
    }

    #[test]
    fn every_line_arrives_once_whole_and_in_each_threads_order() {
        let (out, seen) = collecting();
        std::thread::scope(|s| {
            for t in 0..4 {
                let out = &out;
                s.spawn(move || {
                    for i in 0..2_000 {
                        let _ = out.make_writer().write_all(format!("t{t} line {i}\n").as_bytes());
                    }
                });
            }
        });
        out.flush();
        let text = String::from_utf8(lock(&seen).clone()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8_000);
        for t in 0..4 {
            let mine: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with(&format!("t{t} "))).collect();
            let want: Vec<String> = (0..2_000).map(|i| format!("t{t} line {i}")).collect();
            assert_eq!(mine, want, "thread {t}");
        }
    }

    #[test]
    fn the_writer_thread_writes_without_a_flush() {
        let (out, seen) = collecting();
        let _ = out.make_writer().write_all(b"quiet line\n");
        // Liveness, not speed: the line is written by the thread well within 5 s.
        for _ in 0..500 {
            if !lock(&seen).is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(lock(&seen).as_slice(), b"quiet line\n");
    }

    #[test]
    fn dropping_the_guard_writes_what_is_pending() {
        let (out, seen) = collecting();
        // Hold the output lock so the writer thread cannot take the line first.
        let order = lock(&out.0.output);
        let _ = out.make_writer().write_all(b"last words\n");
        assert!(lock(&seen).is_empty());
        drop(order);
        drop(LogFlush(out));
        assert_eq!(lock(&seen).as_slice(), b"last words\n");
    }
}
