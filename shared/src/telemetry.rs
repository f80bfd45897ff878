//! Telemetry init and shutdown: the first thing every service's `main` does.
//!
//! One call, [`init`], wires up the three pieces a traced service needs:
//!
//! 1. **The global propagator** — W3C TraceContext (`traceparent`,
//!    `tracestate`) plus W3C Baggage. Without it the default global propagator
//!    is a no-op: incoming headers are ignored and every service starts its own
//!    trace, with no error anywhere.
//! 2. **A tracer provider** with a *batch* span processor and an OTLP exporter.
//!    Spans are queued and exported off the request path by the processor's
//!    own thread; a request never waits for the collector.
//! 3. **A `tracing` subscriber**: logs to stderr, and every `tracing` span
//!    becomes an OpenTelemetry span through `tracing-opentelemetry`. Handlers
//!    therefore use plain `tracing::info_span!`; `otel.name`, `otel.kind` and
//!    `otel.status_code` fields steer the OTel side.
//!
//! Configuration is the standard `OTEL_*` environment, read by the SDK and the
//! exporter themselves: `OTEL_EXPORTER_OTLP_ENDPOINT` (base URL; `/v1/traces`
//! is appended for HTTP), `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is),
//! `OTEL_EXPORTER_OTLP_PROTOCOL` / `..._TRACES_PROTOCOL` (`http/protobuf`
//! default, `http/json`, `grpc`), `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` /
//! `_ARG`, `OTEL_BSP_*`. `OTEL_SDK_DISABLED=true` turns tracing off (logs stay).
//!
//! The returned [`TelemetryGuard`] must live until the end of `main`: its
//! shutdown flushes the batch queue, so spans of the last requests before
//! SIGTERM/Ctrl-C still reach the collector.
//!
//! # When the collector is down or slow
//!
//! Requests never wait for the collector, and a dead collector costs bounded
//! memory and a bounded number of log lines:
//!
//! - **Memory** is bounded by the batch processor's queue,
//!   `OTEL_BSP_MAX_QUEUE_SIZE` spans (default 2048, the batch being exported
//!   included). Spans that do not fit are dropped, never buffered elsewhere.
//!   `OTEL_BSP_SCHEDULE_DELAY` (default 5000 ms) is how often the queue is
//!   exported, and `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` (default 512, at most the
//!   queue size) how many spans go per request; a full batch is exported at
//!   once. A hung export is bounded by the exporter's
//!   `OTEL_EXPORTER_OTLP_TIMEOUT` (default 10000 ms): the SDK's thread-based
//!   processor does not apply `OTEL_BSP_EXPORT_TIMEOUT`. Exports are not
//!   retried; a failed batch is lost (and counted). A collector that refuses
//!   connections empties the queue as fast as a healthy one (each export
//!   fails at once), so its spans are lost as failed exports; drops come from
//!   a slow collector (exports hanging until the timeout) or from bursts.
//!   The final flush at shutdown is bounded too (the SDK's 5 s shutdown
//!   timeout); what is still queued then is counted as unexported at exit.
//! - **Counting** ([`ExportStats`], from [`TelemetryGuard::export_stats`] or
//!   [`export_stats`]): every ended span is counted once as `exported` (in an
//!   export the collector accepted), `failed_export` (in an export that
//!   failed), `dropped` (the queue was full) or, for now, `queued`. The SDK
//!   keeps its own drop count private, so a processor in front of it admits
//!   spans into a queue of the same size and counts the drops itself; see
//!   [`crate::export`] for why that count is exact.
//! - **Logging**: one `WARN` line per interval
//!   (`RAGTRACE_EXPORT_REPORT_INTERVAL_MS`, default 10000), and only for an
//!   interval in which spans were lost:
//!
//!   ```text
//!   telemetry: 1234 spans not exported in the last 10s (1200 in 40 failed exports, 34 dropped, queue full at 2048 (OTEL_BSP_MAX_QUEUE_SIZE); collector unreachable at http://localhost:4318/v1/traces: Operation failed: HTTP export failed: network error); 56789 exported so far
//!   ```
//!
//!   then one `INFO` line once an export succeeds again, without a restart:
//!
//!   ```text
//!   telemetry: export recovered (1344 spans were not exported during the outage); 56839 exported so far
//!   ```
//!
//!   and at shutdown the totals (`WARN` if anything was lost, else `INFO`):
//!
//!   ```text
//!   telemetry: totals at shutdown: 58183 spans ended, 56839 exported, 1310 in failed exports, 34 dropped (queue full), 0 unexported at exit
//!   ```
//!
//!   The SDK itself logs an `ERROR` event, `BatchSpanProcessor.ExportError`,
//!   for *every* failed batch (20 lines a second with a 50 ms schedule delay),
//!   and `opentelemetry_sdk=warn` lets it through. That one event is filtered
//!   out by name, whatever `RUST_LOG` says (the line above carries its error
//!   text); every other OpenTelemetry warning or error still shows. The HTTP
//!   exporter logs its connection errors at `debug` only, and the SDK's own
//!   "spans dropped" warnings never fire, since its queue never overflows.

use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::{Status, TraceContextExt, TracerProvider as _};
use opentelemetry::{KeyValue, global};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::attributes;
use crate::config::ConfigError;
use crate::export::{
    CountingExporter, CountingProcessor, ReportState, Reporter, describe_endpoint, log_totals,
    max_queue_size_from_env,
};
pub use crate::export::{ExportCounts, ExportStats, REPORT_INTERVAL_ENV};

/// Default log filter: our own crates at `info`; the HTTP/gRPC stacks the
/// *exporter* uses at `warn`, so exporting spans never produces spans or logs
/// about exporting spans.
const DEFAULT_LOG_FILTER: &str = "info,h2=warn,hyper=warn,hyper_util=warn,reqwest=warn,\
tonic=warn,tower=warn,opentelemetry=warn,opentelemetry_sdk=warn,opentelemetry_otlp=warn";

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("unsupported OTLP protocol {0:?} (expected http/protobuf, http/json or grpc)")]
    UnsupportedProtocol(String),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("cannot start the gRPC exporter's runtime: {0}")]
    Runtime(#[from] std::io::Error),
    #[error("cannot install the tracing subscriber: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// The export counters of the tracer provider [`init`] installed last (none
/// when `OTEL_SDK_DISABLED=true` or before `init`).
pub fn export_stats() -> Option<Arc<ExportStats>> {
    EXPORT_STATS.lock().ok().and_then(|stats| stats.clone())
}

static EXPORT_STATS: Mutex<Option<Arc<ExportStats>>> = Mutex::new(None);

/// The SDK event logged once per failed batch; the interval report replaces
/// it (see the module docs).
const SDK_EXPORT_ERROR_EVENT: &str = "BatchSpanProcessor.ExportError";

/// Lets every event through but the SDK's per-batch export error.
fn quiet_export_errors() -> FilterFn<fn(&tracing::Metadata<'_>) -> bool> {
    fn keep(metadata: &tracing::Metadata<'_>) -> bool {
        !(metadata.target() == "opentelemetry_sdk" && metadata.name() == SDK_EXPORT_ERROR_EVENT)
    }
    tracing_subscriber::filter::filter_fn(keep as fn(&tracing::Metadata<'_>) -> bool)
}

/// Flushes and shuts the tracer provider down when dropped (or on
/// [`TelemetryGuard::shutdown`]).
#[must_use = "dropping the guard shuts telemetry down; keep it alive until main returns"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    /// The gRPC exporter's I/O runs here, not on the service's runtime: the
    /// final flush blocks the main thread, which would otherwise be the very
    /// thread the export needs to make progress.
    grpc_runtime: Option<tokio::runtime::Runtime>,
    stats: Option<Arc<ExportStats>>,
    reporter: Option<Reporter>,
}

impl TelemetryGuard {
    /// Flush every queued span, then stop the exporter.
    pub fn shutdown(mut self) {
        self.shutdown_inner();
    }

    /// This provider's export counters (`None` when the SDK is disabled).
    pub fn export_stats(&self) -> Option<Arc<ExportStats>> {
        self.stats.clone()
    }

    fn shutdown_inner(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("telemetry: shutdown did not flush cleanly: {err}");
        }
        if let Some(mut reporter) = self.reporter.take() {
            reporter.stop();
        }
        // After the final flush: what never made it is final now.
        if let Some(stats) = self.stats.take() {
            log_totals(stats.snapshot());
        }
        if let Some(runtime) = self.grpc_runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.shutdown_inner();
    }
}

/// Install propagator, tracer provider and subscriber for `service_name`
/// (used as `service.name` unless `OTEL_SERVICE_NAME` or
/// `OTEL_RESOURCE_ATTRIBUTES` say otherwise).
pub fn init(service_name: &str) -> Result<TelemetryGuard, TelemetryError> {
    // (1) The propagator, set globally: the server middleware extracts with it,
    // the outbound helper injects with it (see `crate::propagation`).
    global::set_text_map_propagator(w3c_propagator());

    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    // Applies whatever RUST_LOG says: the interval report stands in for it.
    let quiet_export_errors = quiet_export_errors();
    // JSON lines with trace/span ids by default; `LOG_FORMAT=text` for humans.
    let fmt_layer = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("text") | Ok("pretty") => tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .with_writer(std::io::stderr)
            .boxed(),
        _ => tracing_subscriber::fmt::layer()
            .event_format(crate::logs::JsonWithTraceIds)
            // The JSON lines carry no span fields (only the span's name and
            // OTel ids), so the fmt layer must not format every field of
            // every span into a string no line will print (its default, and
            // a measurable share of a request's CPU: `ragtrace bench`).
            .fmt_fields(tracing_subscriber::fmt::format::debug_fn(|_, _, _| Ok(())))
            .with_writer(std::io::stderr)
            .boxed(),
    };

    if sdk_disabled() {
        tracing_subscriber::registry()
            .with(filter)
            .with(quiet_export_errors)
            .with(fmt_layer)
            .try_init()?;
        tracing::info!("OTEL_SDK_DISABLED=true: tracing is off, logs only");
        return Ok(TelemetryGuard {
            provider: None,
            grpc_runtime: None,
            stats: None,
            reporter: None,
        });
    }

    // (2) Exporter + batch processor + resource. The sampler comes from
    // OTEL_TRACES_SAMPLER/_ARG (default: parentbased_always_on), read by the
    // SDK's default config. The batch processor sits between two counters
    // (see "When the collector is down or slow" above).
    let report_interval = report_interval()?;
    let (exporter, grpc_runtime, endpoint) = build_exporter()?;
    let stats = Arc::new(ExportStats::new());
    // The builder reads the other OTEL_BSP_* variables itself; the queue size
    // is set explicitly so that the admission limit is the SDK queue's size.
    let queue_size = max_queue_size_from_env();
    let batch = BatchSpanProcessor::builder(CountingExporter::new(exporter, stats.clone()))
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(queue_size)
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(CountingProcessor::new(batch, stats.clone(), queue_size))
        .with_resource(resource(service_name))
        .build();
    global::set_tracer_provider(provider.clone());
    let tracer = provider.tracer(service_name.to_owned());

    // (3) `tracing` spans become OTel spans. ERROR-level events inside a span
    // mark it as failed; `record_error` below adds the semconv details.
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_error_events_to_status(true)
        // Off: per-span extras tracing-opentelemetry adds by default
        // (`code.file.path`/`code.module.name`/`code.line.number`,
        // `thread.id`/`thread.name`, `busy_ns`/`idle_ns`). Inactivity
        // tracking reads the clock on every enter and exit, i.e. on every
        // poll of an instrumented future; the thread name is a string
        // allocated per span. Together they were most of what an
        // *unsampled* span cost: `ragtrace bench`, 10% sampling, throughput
        // cost against tracing off -40% with them, -14% without.
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false);
    tracing_subscriber::registry()
        .with(filter)
        .with(quiet_export_errors)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()?;

    let reporter = Reporter::spawn(
        stats.clone(),
        ReportState::new(report_interval, queue_size, describe_endpoint(&endpoint)),
    )?;
    if let Ok(mut global_stats) = EXPORT_STATS.lock() {
        *global_stats = Some(stats.clone());
    }

    Ok(TelemetryGuard {
        provider: Some(provider),
        grpc_runtime,
        stats: Some(stats),
        reporter: Some(reporter),
    })
}

/// `RAGTRACE_EXPORT_REPORT_INTERVAL_MS`: how often export losses are logged.
fn report_interval() -> Result<std::time::Duration, ConfigError> {
    let default_ms = crate::export::DEFAULT_REPORT_INTERVAL.as_millis() as u64;
    let interval = crate::config::env_millis(REPORT_INTERVAL_ENV, default_ms)?;
    if interval.is_zero() {
        return Err(ConfigError {
            name: REPORT_INTERVAL_ENV,
            value: "0".into(),
            reason: "must be at least 1 ms".into(),
        });
    }
    Ok(interval)
}

/// Where the exporter sends spans, resolved as the exporter does (for log
/// lines only).
fn traces_endpoint(grpc: bool) -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(url) = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return url;
    }
    match (var("OTEL_EXPORTER_OTLP_ENDPOINT"), grpc) {
        (Some(base), true) => base,
        (Some(base), false) => format!("{}/v1/traces", base.trim_end_matches('/')),
        (None, true) => "http://localhost:4317".to_owned(),
        (None, false) => "http://localhost:4318/v1/traces".to_owned(),
    }
}

fn sdk_disabled() -> bool {
    std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// `service.name` precedence per the OTel spec: `OTEL_SERVICE_NAME`, then
/// `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, then the code's default.
fn resource(service_name: &str) -> Resource {
    let from_env = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| {
            v.split(',')
                .any(|kv| kv.trim().starts_with("service.name="))
        });
    let mut builder = Resource::builder();
    if !from_env {
        builder = builder.with_service_name(service_name.to_owned());
    }
    builder
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

type BuiltExporter = (SpanExporter, Option<tokio::runtime::Runtime>, String);

fn build_exporter() -> Result<BuiltExporter, TelemetryError> {
    let protocol = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|_| "http/protobuf".to_owned());
    match protocol.trim() {
        "http/protobuf" => Ok((
            SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .build()?,
            None,
            traces_endpoint(false),
        )),
        "http/json" => Ok((
            SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpJson)
                .build()?,
            None,
            traces_endpoint(false),
        )),
        "grpc" => {
            // tonic needs a Tokio reactor for its connection. Give it one of
            // its own (see `TelemetryGuard::grpc_runtime`).
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("otlp-grpc")
                .enable_all()
                .build()?;
            let exporter = {
                let _entered = runtime.enter();
                SpanExporter::builder().with_tonic().build()?
            };
            Ok((exporter, Some(runtime), traces_endpoint(true)))
        }
        other => Err(TelemetryError::UnsupportedProtocol(other.to_owned())),
    }
}

/// The propagator every service installs globally: W3C TraceContext
/// (`traceparent`, `tracestate`) plus W3C Baggage.
pub fn w3c_propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ])
}

/// Whether prompts, retrieved text and answers may be recorded on spans.
///
/// Content is off by default (it is user data). The switch is the GenAI
/// instrumentation convention `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`:
/// `SPAN_ONLY` or `SPAN_AND_EVENT` (or the older `true`) turn it on;
/// `NO_CONTENT` (default), `EVENT_ONLY` or `false` keep spans content-free.
pub fn capture_content() -> bool {
    static CAPTURE: OnceLock<bool> = OnceLock::new();
    *CAPTURE.get_or_init(|| {
        std::env::var("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT").is_ok_and(|v| {
            matches!(
                v.trim().to_ascii_uppercase().as_str(),
                "SPAN_ONLY" | "SPAN_AND_EVENT" | "TRUE"
            )
        })
    })
}

/// The trace id of the current span, as 32 lowercase hex digits (all zeros
/// when tracing is disabled). Returned to callers in every response body, so
/// a user can paste it into a trace UI.
pub fn current_trace_id() -> String {
    let cx = Span::current().context();
    cx.span().span_context().trace_id().to_string()
}

/// Mark `span` as failed the way the conventions ask: status ERROR with a
/// description, a low-cardinality `error.type`, and an `exception` event.
pub fn record_error(span: &Span, error_type: &str, message: &str) {
    span.set_attribute(attributes::error::TYPE, error_type.to_owned());
    span.set_status(Status::error(message.to_owned()));
    span.add_event(
        "exception",
        vec![
            KeyValue::new(attributes::error::EXCEPTION_TYPE, error_type.to_owned()),
            KeyValue::new(attributes::error::EXCEPTION_MESSAGE, message.to_owned()),
        ],
    );
    tracing::error!(parent: span, error = error_type, "{message}");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;

    struct CountEvents(Arc<AtomicUsize>);

    impl<S: tracing::Subscriber> Layer<S> for CountEvents {
        fn on_event(
            &self,
            _event: &tracing::Event<'_>,
            _cx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn only_the_sdks_per_batch_export_error_is_filtered_out() {
        let seen = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(super::quiet_export_errors())
            .with(CountEvents(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            // What `otel_error!` in opentelemetry_sdk expands to.
            tracing::error!(name: "BatchSpanProcessor.ExportError", target: "opentelemetry_sdk", error = "network error");
            tracing::error!(name: "BatchSpanProcessor.Shutdown.Timeout", target: "opentelemetry_sdk", name = "BatchSpanProcessor.Shutdown.Timeout");
            tracing::warn!(name: "BatchSpanProcessor.ExportError", target: "my_crate", "same name, other crate");
            tracing::warn!("telemetry: 12 spans not exported");
        });
        assert_eq!(seen.load(Ordering::SeqCst), 3);
    }
}
