//! Log lines that point at their trace.
//!
//! Every JSON log line written inside a span carries that span's OpenTelemetry
//! `trace_id` and `span_id`, so a line found in a log search leads straight
//! to its trace, and a span in a trace UI leads to its log lines (search the
//! logs for its ids). `LOG_FORMAT=json` is the services' default (what log
//! pipelines ingest); `LOG_FORMAT=text` is for humans (`ragtrace up` sets it).
//!
//! ```json
//! {"timestamp":"2026-11-22T05:30:00.123Z","level":"WARN","target":"shared::error",
//!  "message":"query must not be empty","fields":{"error":"invalid_query"},
//!  "span":"HTTP request","trace_id":"4bf92f35...","span_id":"00f067aa0ba902b7"}
//! ```
//!
//! Telemetry init puts this module's filter and layer in the same `tracing`
//! subscriber as the OpenTelemetry layer.

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, Layer};

/// Default log filter: our own crates at `info`; the HTTP/gRPC stacks the
/// *exporter* uses at `warn`, so exporting spans never produces spans or logs
/// about exporting spans; the MCP SDK at `warn`, so its own `info` spans
/// (its session loop) stay out of traces, where our MCP spans stand.
const DEFAULT_FILTER: &str = "info,h2=warn,hyper=warn,hyper_util=warn,reqwest=warn,\
tonic=warn,tower=warn,opentelemetry=warn,opentelemetry_sdk=warn,opentelemetry_otlp=warn,\
rmcp=warn";

/// `RUST_LOG`, else [`DEFAULT_FILTER`]. rmcp logs every MCP message whole
/// at `debug`, tool arguments and results included: unless `RUST_LOG` names
/// rmcp itself, it stays at `warn`, so a debug log holds no content.
pub(crate) fn filter() -> EnvFilter {
    match EnvFilter::try_from_default_env() {
        Ok(filter) if !std::env::var("RUST_LOG").is_ok_and(|v| v.contains("rmcp")) => {
            filter.add_directive("rmcp=warn".parse().expect("a valid directive"))
        }
        Ok(filter) => filter,
        Err(_) => EnvFilter::new(DEFAULT_FILTER),
    }
}

/// The layer that writes log lines to stderr: JSON lines with trace and span
/// ids ([`JsonWithTraceIds`]), or compact text with `LOG_FORMAT=text`.
pub(crate) fn fmt_layer<S>() -> Box<dyn Layer<S> + Send + Sync>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match std::env::var("LOG_FORMAT").as_deref() {
        Ok("text") | Ok("pretty") => tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .with_writer(std::io::stderr)
            .boxed(),
        _ => tracing_subscriber::fmt::layer()
            .event_format(JsonWithTraceIds)
            // The JSON lines carry no span fields (only the span's name and
            // OTel ids), so the fmt layer must not format every field of
            // every span into a string no line will print (its default, and
            // a measurable share of a request's CPU: `ragtrace bench`).
            .fmt_fields(tracing_subscriber::fmt::format::debug_fn(|_, _, _| Ok(())))
            .with_writer(std::io::stderr)
            .boxed(),
    }
}

/// The JSON line format (see the module docs).
pub struct JsonWithTraceIds;

#[derive(Default)]
struct Fields {
    message: Option<String>,
    fields: Map<String, Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.insert(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.insert(field, Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.insert(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.insert(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.insert(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.insert(field, value.into());
    }
}

impl Fields {
    fn insert(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.fields.insert(field.name().to_owned(), value);
        }
    }
}

impl<S, N> FormatEvent<S, N> for JsonWithTraceIds
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert("timestamp".into(), Value::String(timestamp()));
        line.insert("level".into(), Value::String(meta.level().to_string()));
        line.insert("target".into(), Value::String(meta.target().to_owned()));
        line.insert(
            "message".into(),
            Value::String(fields.message.unwrap_or_default()),
        );
        if !fields.fields.is_empty() {
            line.insert("fields".into(), Value::Object(fields.fields));
        }
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            line.insert("span".into(), Value::String(span.name().to_owned()));
            // The OTel ids of the span the event happened in. (No extension
            // lock is held here, as `get_otel_context` requires.)
            let ids = tracing::dispatcher::get_default(|dispatch| {
                tracing_opentelemetry::get_otel_context(&span.id(), dispatch)
            });
            if let Some(cx) = ids {
                let span_context = cx.span().span_context().clone();
                if span_context.is_valid() {
                    line.insert(
                        "trace_id".into(),
                        Value::String(span_context.trace_id().to_string()),
                    );
                    line.insert(
                        "span_id".into(),
                        Value::String(span_context.span_id().to_string()),
                    );
                }
            }
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// RFC 3339 UTC with milliseconds, without a date-time dependency.
fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = super::timestamp();
        assert_eq!(t.len(), 24, "{t}");
        assert!(
            t.ends_with('Z') && &t[4..5] == "-" && &t[10..11] == "T",
            "{t}"
        );
        assert!(t.starts_with("20"), "{t}");
    }
}
