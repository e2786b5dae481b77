//! The local server's text log line, in tracing-subscriber's default layout without colours:
//!
//! `2026-12-03T17:26:45.805714Z  INFO request{method=POST path=/a/path source_ip=127.0.0.1}: token issued event="token_issued" client_id=cl_…`
//!
//! written with a few appends per field instead of the default formatter's padded, styled
//! `write!`s (a token request writes two lines; bench/README.md has the cost). String fields
//! are quoted; in every value (strings, `%display` and `?debug` fields, the message) control
//! characters are escaped, so no value can start a forged line.
use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The event format ([`FormatEvent`]).
pub struct TextLine;

/// The field format ([`FormatFields`]) of events and spans.
pub struct TextFields;

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        write_timestamp(&mut w, now)?;
        w.write_str(match *event.metadata().level() {
            Level::ERROR => " ERROR ",
            Level::WARN => "  WARN ",
            Level::INFO => "  INFO ",
            Level::DEBUG => " DEBUG ",
            Level::TRACE => " TRACE ",
        })?;
        if let Some(scope) = ctx.event_scope() {
            let mut any = false;
            for span in scope.from_root() {
                w.write_str(span.metadata().name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>().filter(|f| !f.is_empty()) {
                    w.write_char('{')?;
                    w.write_str(fields)?;
                    w.write_char('}')?;
                }
                w.write_char(':')?;
                any = true;
            }
            if any {
                w.write_char(' ')?;
            }
        }
        ctx.format_fields(w.by_ref(), event)?;
        w.write_char('\n')
    }
}

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: RecordFields>(&self, w: Writer<'w>, fields: R) -> fmt::Result {
        let mut v = Visitor { w, first: true, result: Ok(()) };
        fields.record(&mut v);
        v.result
    }
}

struct Visitor<'w> {
    w: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl Visitor<'_> {
    /// Write `name=` (nothing for the message), after a space unless it is the first field.
    fn name(&mut self, field: &Field) -> Result<(), fmt::Error> {
        self.result?;
        if !std::mem::take(&mut self.first) {
            self.w.write_char(' ')?;
        }
        if field.name() != "message" {
            self.w.write_str(field.name().trim_start_matches("r#"))?;
            self.w.write_char('=')?;
        }
        Ok(())
    }

    fn value(&mut self, field: &Field, write: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        self.result = self.name(field).and_then(|()| write(&mut self.w));
    }
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let quoted = field.name() != "message";
        self.value(field, |w| {
            if quoted {
                w.write_char('"')?;
            }
            Escape { out: w, quoted }.write_str(value)?;
            if quoted { w.write_char('"') } else { Ok(()) }
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.value(field, |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.value(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.value(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.value(field, |w| write!(Escape { out: w, quoted: false }, "{value:?}"));
    }
}

/// Writes through, escaping control characters (and, inside quotes, `"` and `\`).
struct Escape<'a, 'w> {
    out: &'a mut Writer<'w>,
    quoted: bool,
}

impl fmt::Write for Escape<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let special = |b: u8| b < 0x20 || b == 0x7f || (self.quoted && (b == b'"' || b == b'\\'));
        if !s.bytes().any(special) && !s.chars().any(char::is_control) {
            return self.out.write_str(s);
        }
        for c in s.chars() {
            if c.is_control() || (self.quoted && (c == '"' || c == '\\')) {
                write!(self.out, "{}", c.escape_default())?;
            } else {
                self.out.write_char(c)?;
            }
        }
        Ok(())
    }
}

thread_local! {
    /// The last second formatted by this thread, and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: std::cell::Cell<(u64, [u8; 19])> = const { std::cell::Cell::new((u64::MAX, [0; 19])) };
}

/// `YYYY-MM-DDTHH:MM:SS.uuuuuuZ` (UTC, microseconds) of `since_epoch`; the date part is
/// computed once per second per thread.
fn write_timestamp(w: &mut impl fmt::Write, since_epoch: std::time::Duration) -> fmt::Result {
    let secs = since_epoch.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        let t = i64::try_from(secs)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let mut buf = [0u8; 19];
        let mut put = |at: usize, n: u32, width: usize| {
            let mut n = n;
            for i in (at..at + width).rev() {
                if let Some(b) = buf.get_mut(i) {
                    // n % 10 < 10: the cast cannot truncate.
                    *b = b'0' + (n % 10) as u8;
                }
                n /= 10;
            }
        };
        put(0, u32::try_from(t.year()).unwrap_or(0), 4);
        put(5, u32::from(u8::from(t.month())), 2);
        put(8, u32::from(t.day()), 2);
        put(11, u32::from(t.hour()), 2);
        put(14, u32::from(t.minute()), 2);
        put(17, u32::from(t.second()), 2);
        for (i, sep) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
            if let Some(b) = buf.get_mut(i) {
                *b = sep;
            }
        }
        text = buf;
        SECOND.set((secs, text));
    }
    w.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)?;
    let micros = since_epoch.subsec_micros();
    let mut frac = *b".000000Z";
    let mut n = micros;
    for b in frac.iter_mut().skip(1).take(6).rev() {
        // n % 10 < 10: the cast cannot truncate.
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
    w.write_str(std::str::from_utf8(&frac).map_err(|_| fmt::Error)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn the_timestamp_is_rfc3339_utc_with_microseconds() {
        let format = time::format_description::well_known::Rfc3339;
        for (secs, micros) in [(0, 0), (1_796_318_805, 805_714), (1_796_318_806, 5), (4_102_444_799, 999_999)] {
            let d = std::time::Duration::new(secs, micros * 1000);
            let mut s = String::new();
            // Twice: the second one comes from the thread's cache.
            for _ in 0..2 {
                s.clear();
                assert!(write_timestamp(&mut s, d).is_ok());
                let want = time::OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(secs) * 1_000_000_000 + i128::from(micros) * 1000,
                )
                .ok()
                .and_then(|t| t.format(&format).ok())
                .unwrap_or_default();
                // time writes the fraction only as long as needed; ours always has six digits.
                let (date, frac) =
                    want.trim_end_matches('Z').split_once('.').unwrap_or((want.trim_end_matches('Z'), ""));
                assert_eq!(s, format!("{date}.{frac:0<6}Z"), "{secs}.{micros}");
            }
        }
    }

    fn capture(f: impl FnOnce()) -> String {
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || Sink(sink.clone()))
            .fmt_fields(TextFields)
            .event_format(TextLine)
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = out.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }

    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut v) = self.0.lock() {
                v.extend_from_slice(b);
            }
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_has_the_default_layout_without_colours() {
        let text = capture(|| {
            let ip: std::net::IpAddr = [127, 0, 0, 1].into();
            let span = tracing::info_span!("request", method = %"POST", path = %"/a/path", source_ip = %ip);
            let _in = span.enter();
            tracing::info!(event = "token_issued", n = 3u64, d = -4i64, ok = true, dbg = ?Some(1), "token issued");
        });
        let (time, rest) = text.split_at(text.find(' ').unwrap_or(0));
        assert_eq!(time.len(), 27, "{text}");
        assert!(time.ends_with('Z') && time.as_bytes().get(10) == Some(&b'T'), "{text}");
        assert_eq!(
            rest,
            "  INFO request{method=POST path=/a/path source_ip=127.0.0.1}: token issued event=\"token_issued\" n=3 d=-4 ok=true dbg=Some(1)\n"
        );
        let plain = capture(|| tracing::warn!("no span"));
        assert!(plain.ends_with("Z  WARN no span\n"), "{plain}");
    }

    #[test]
    fn no_value_can_start_a_forged_line() {
        let forged = "x\n2026-12-03T00:00:00.000000Z  INFO event=\"login_succeeded\"\u{1b}[2J\"\\";
        let text = capture(|| {
            let span = tracing::info_span!("request", path = %forged);
            let _in = span.enter();
            tracing::info!(user = forged, shown = %forged, debug = ?forged, "{forged}");
        });
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(
            text.contains(r#"user="x\n2026-12-03T00:00:00.000000Z  INFO event=\"login_succeeded\"\u{1b}[2J\"\\""#),
            "{text}"
        );
        assert!(text.contains(r"path=x\n2026"), "{text}");
    }
}
