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
//!    own thread; a request never waits for the collector. For the default
//!    protocol, `http/protobuf`, the exporter is ours
//!    ([`crate::otlp_http`]): it encodes straight from the SDK's span data,
//!    at a fraction of the SDK exporter's cost (see [`crate::otlp_encode`]);
//!    `http/json` and `grpc` use `opentelemetry-otlp`.
//! 3. **A `tracing` subscriber**: logs to stderr, and every `tracing` span
//!    becomes an OpenTelemetry span through `tracing-opentelemetry`. Handlers
//!    therefore use plain `tracing::info_span!`; `otel.name`, `otel.kind` and
//!    `otel.status_code` fields steer the OTel side.
//! 4. **A meter provider** with a *periodic reader* and an OTLP metric
//!    exporter, installed as the global meter provider; [`crate::metrics`]
//!    creates its instruments from it. Measurements are aggregated in memory
//!    and the aggregate is exported every `OTEL_METRIC_EXPORT_INTERVAL`, by
//!    the reader's own thread; recording never waits for the collector.
//!
//! Configuration is the standard `OTEL_*` environment, read by the SDK and the
//! exporter themselves: `OTEL_EXPORTER_OTLP_ENDPOINT` (base URL; `/v1/traces`
//! is appended for HTTP), `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is),
//! `OTEL_EXPORTER_OTLP_PROTOCOL` / `..._TRACES_PROTOCOL` (`http/protobuf`
//! default, `http/json`, `grpc`), `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` /
//! `_ARG`, `OTEL_BSP_*`. `OTEL_SDK_DISABLED=true` turns tracing and metrics
//! off (logs stay).
//!
//! Metrics follow the same variables, with their own overrides as the OTLP
//! exporter specification defines them:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `OTEL_METRICS_EXPORTER` | `otlp` | `none` switches metrics off (traces stay) |
//! | `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` | `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/metrics` (HTTP) | full URL, used as is |
//! | `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL` | `OTEL_EXPORTER_OTLP_PROTOCOL` | `http/protobuf`, `http/json`, `grpc` |
//! | `OTEL_EXPORTER_OTLP_METRICS_HEADERS` | `OTEL_EXPORTER_OTLP_HEADERS` | read by the exporter |
//! | `OTEL_METRIC_EXPORT_INTERVAL` | 60000 | ms between two exports |
//! | `OTEL_METRIC_EXPORT_TIMEOUT` | the exporter's timeout (`OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`, `OTEL_EXPORTER_OTLP_TIMEOUT`, 10000) | ms one export may take |
//! | `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE` | `cumulative` | read by the exporter; keep it for Prometheus |
//!
//! The returned [`TelemetryGuard`] must live until the end of `main`: its
//! shutdown flushes the batch queue, so spans of the last requests before
//! SIGTERM/Ctrl-C still reach the collector, and makes one last metrics
//! export, so the requests since the last periodic export are counted too.
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
//! - **Metrics** need none of this: they are aggregated in memory (one
//!   histogram per series, whatever the request rate), and each export
//!   carries the cumulative totals, so a failed export loses nothing the
//!   next successful one does not carry. A failing export is logged once,
//!   at `WARN` with the endpoint and why: the status the server answered
//!   (a trace-only backend such as Phoenix answers `/v1/metrics` with `405
//!   Method Not Allowed`) or a network error when none answered. Its
//!   recovery is logged once at `INFO`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::{Status, TraceContextExt, TracerProvider as _};
use opentelemetry::{KeyValue, global};
use opentelemetry_otlp::{
    MetricExporter, Protocol, SpanExporter, WithExportConfig, WithHttpConfig,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
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
use crate::dialects::Dialects;
use crate::dialects::translate::Translate;
use crate::export::{
    CountingExporter, CountingProcessor, ReportState, Reporter, describe_endpoint, log_totals,
    max_queue_size_from_env,
};
pub use crate::export::{ExportCounts, ExportStats, REPORT_INTERVAL_ENV};
use crate::otlp_http::{ProtobufHttpExporter, StatusPassingClient};

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
    #[error("cannot build the OTLP exporter: {0}")]
    HttpExporter(#[from] crate::otlp_http::OtlpHttpError),
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

/// Flushes and shuts the tracer and meter providers down when dropped (or on
/// [`TelemetryGuard::shutdown`]).
#[must_use = "dropping the guard shuts telemetry down; keep it alive until main returns"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    /// `None` when metrics are off (`OTEL_METRICS_EXPORTER=none`).
    meter_provider: Option<SdkMeterProvider>,
    /// The gRPC exporter's I/O runs here, not on the service's runtime: the
    /// final flush blocks the main thread, which would otherwise be the very
    /// thread the export needs to make progress.
    grpc_runtime: Option<tokio::runtime::Runtime>,
    stats: Option<Arc<ExportStats>>,
    reporter: Option<Reporter>,
}

impl TelemetryGuard {
    /// Flush every queued span and export the metrics one last time, then
    /// stop the exporters.
    pub fn shutdown(mut self) {
        self.shutdown_inner();
    }

    /// This provider's export counters (`None` when the SDK is disabled).
    pub fn export_stats(&self) -> Option<Arc<ExportStats>> {
        self.stats.clone()
    }

    fn shutdown_inner(&mut self) {
        // The periodic reader collects and exports once more on shutdown:
        // whatever was recorded since the last interval (the requests drained
        // after SIGTERM included) is in that export. It runs beside the span
        // flush, not after it: each is bounded by the SDK's 5 s shutdown
        // timeout, and a hung collector should cost 5 s at exit, not 10.
        let metrics_shutdown = self.meter_provider.take().map(|meter_provider| {
            std::thread::Builder::new()
                .name("otel-metrics-shutdown".into())
                .spawn(move || meter_provider.shutdown())
        });
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("telemetry: shutdown did not flush cleanly: {err}");
        }
        match metrics_shutdown {
            Some(Ok(thread)) => match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(err)) => {
                    eprintln!("telemetry: metrics shutdown did not export cleanly: {err}")
                }
                Err(_) => eprintln!("telemetry: metrics shutdown panicked"),
            },
            Some(Err(err)) => eprintln!("telemetry: cannot shut metrics down: {err}"),
            None => {}
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

/// Install propagator, tracer provider, subscriber and meter provider for
/// `service_name` (used as `service.name` unless `OTEL_SERVICE_NAME` or
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
        tracing::info!("OTEL_SDK_DISABLED=true: tracing and metrics are off, logs only");
        return Ok(TelemetryGuard {
            provider: None,
            meter_provider: None,
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
    // Read before anything is installed: a bad value is a startup error.
    let metrics = MetricsSettings::from_env()?;
    // Both exporters may speak gRPC; they then share one runtime.
    let mut grpc_runtime = None;
    let (exporter, endpoint) = build_exporter(&mut grpc_runtime)?;
    let resource = resource(service_name);
    let stats = Arc::new(ExportStats::new());
    // The builder reads the other OTEL_BSP_* variables itself; the queue size
    // is set explicitly so that the admission limit is the SDK queue's size.
    let queue_size = max_queue_size_from_env();
    // Vendor keys (Confident AI, OpenInference) are derived from the
    // conventions' keys as each batch is exported (`crate::dialects`).
    let exporter = Translate::new(exporter, Dialects::current());
    let batch = BatchSpanProcessor::builder(CountingExporter::new(exporter, stats.clone()))
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(queue_size)
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(CountingProcessor::new(batch, stats.clone(), queue_size))
        .with_resource(resource.clone())
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
        .with_tracked_inactivity(false)
        // Off: *context activation*, which on every enter of a span (every
        // poll of an instrumented future, many per request) starts its OTel
        // span and pushes a clone of its OTel `Context` onto OpenTelemetry's
        // thread-local stack, and pops it on exit, so that
        // `opentelemetry::Context::current()` follows the `tracing` span.
        // Nothing here reads that: the current span's context is taken from
        // `tracing` (`Span::current().context()`, see `crate::propagation`
        // and `current_trace_id`), and parents come from the `tracing` span
        // tree, with or without activation. `ragtrace bench`, every request
        // traced: 80 us of CPU per `/chat` less (208 -> 126 us over tracing
        // off), throughput cost -47% -> -37% in one run. Turn it on if you
        // add an instrumentation library that reads `Context::current()`.
        .with_context_activation(false);
    tracing_subscriber::registry()
        .with(filter)
        .with(quiet_export_errors)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()?;

    // (4) Metrics: same resource, so a backend joins a service's metrics and
    // spans on `service.name`. Set globally *before* anything records (the
    // instruments are created from the global provider on first use).
    let meter_provider = build_meter_provider(&metrics, resource, &mut grpc_runtime)?;
    if let Some(meter_provider) = &meter_provider {
        global::set_meter_provider(meter_provider.clone());
    }

    let reporter = Reporter::spawn(
        stats.clone(),
        ReportState::new(report_interval, queue_size, describe_endpoint(&endpoint)),
    )?;
    if let Ok(mut global_stats) = EXPORT_STATS.lock() {
        *global_stats = Some(stats.clone());
    }

    Ok(TelemetryGuard {
        provider: Some(provider),
        meter_provider,
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
    signal_endpoint("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "/v1/traces", grpc)
}

/// Where the exporter of one signal sends it: its own variable as is, else
/// the base URL (plus `path` over HTTP), else the default (for log lines).
fn signal_endpoint(signal_var: &str, path: &str, grpc: bool) -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let Some(url) = var(signal_var) {
        return url;
    }
    match (var("OTEL_EXPORTER_OTLP_ENDPOINT"), grpc) {
        (Some(base), true) => base,
        (Some(base), false) => format!("{}{path}", base.trim_end_matches('/')),
        (None, true) => "http://localhost:4317".to_owned(),
        (None, false) => format!("http://localhost:4318{path}"),
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

/// The OTLP protocol for a signal: `OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL`,
/// then `OTEL_EXPORTER_OTLP_PROTOCOL`, then `http/protobuf`.
fn protocol(signal_var: &str) -> String {
    std::env::var(signal_var)
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|_| "http/protobuf".to_owned())
        .trim()
        .to_owned()
}

/// The runtime the gRPC exporters' I/O runs on, started on first use.
fn grpc_runtime(
    slot: &mut Option<tokio::runtime::Runtime>,
) -> std::io::Result<&tokio::runtime::Runtime> {
    if slot.is_none() {
        // tonic needs a Tokio reactor for its connection. Give it one of
        // its own (see `TelemetryGuard::grpc_runtime`).
        *slot = Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("otlp-grpc")
                .enable_all()
                .build()?,
        );
    }
    Ok(slot.as_ref().expect("just set"))
}

/// The span exporter `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` /
/// `OTEL_EXPORTER_OTLP_PROTOCOL` asks for.
///
/// `http/protobuf`, the default, is ours ([`crate::otlp_http`]): the SDK's
/// exporter converts every batch into intermediate structs before encoding
/// it, the largest cost on the export thread, while ours encodes straight
/// from the span data. The other two protocols use `opentelemetry-otlp`.
#[derive(Debug)]
enum Exporter {
    Protobuf(ProtobufHttpExporter),
    Sdk(SpanExporter),
}

impl opentelemetry_sdk::trace::SpanExporter for Exporter {
    async fn export(&self, batch: Vec<opentelemetry_sdk::trace::SpanData>) -> OTelSdkResult {
        match self {
            Exporter::Protobuf(exporter) => exporter.export(batch).await,
            Exporter::Sdk(exporter) => exporter.export(batch).await,
        }
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        match self {
            Exporter::Protobuf(exporter) => exporter.shutdown_with_timeout(timeout),
            Exporter::Sdk(exporter) => exporter.shutdown_with_timeout(timeout),
        }
    }

    // Both shutdown methods are forwarded, as in `CountingExporter`: an
    // exporter may override either.
    fn shutdown(&self) -> OTelSdkResult {
        match self {
            Exporter::Protobuf(exporter) => exporter.shutdown(),
            Exporter::Sdk(exporter) => exporter.shutdown(),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        match self {
            Exporter::Protobuf(exporter) => exporter.force_flush(),
            Exporter::Sdk(exporter) => exporter.force_flush(),
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        match self {
            Exporter::Protobuf(exporter) => exporter.set_resource(resource),
            Exporter::Sdk(exporter) => exporter.set_resource(resource),
        }
    }
}

fn build_exporter(
    grpc: &mut Option<tokio::runtime::Runtime>,
) -> Result<(Exporter, String), TelemetryError> {
    match protocol("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").as_str() {
        "http/protobuf" => {
            let endpoint = traces_endpoint(false);
            let exporter = ProtobufHttpExporter::from_env(endpoint.clone())?;
            Ok((Exporter::Protobuf(exporter), endpoint))
        }
        "http/json" => Ok((
            Exporter::Sdk(
                SpanExporter::builder()
                    .with_http()
                    .with_protocol(Protocol::HttpJson)
                    // A refusal is reported by its status, as for metrics.
                    .with_http_client(StatusPassingClient::new(
                        None,
                        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                    )?)
                    .build()?,
            ),
            traces_endpoint(false),
        )),
        "grpc" => {
            let _entered = grpc_runtime(grpc)?.enter();
            let exporter = SpanExporter::builder().with_tonic().build()?;
            Ok((Exporter::Sdk(exporter), traces_endpoint(true)))
        }
        other => Err(TelemetryError::UnsupportedProtocol(other.to_owned())),
    }
}

/// `OTEL_METRICS_EXPORTER`: `otlp` (the default) or `none`.
const METRICS_EXPORTER_ENV: &str = "OTEL_METRICS_EXPORTER";
/// `OTEL_METRIC_EXPORT_INTERVAL`, ms. The SDK reads it too, but silently
/// falls back to 60 s on a typo; we reject the typo instead.
const METRIC_EXPORT_INTERVAL_ENV: &str = "OTEL_METRIC_EXPORT_INTERVAL";
/// `OTEL_METRIC_EXPORT_TIMEOUT`, ms. The SDK's periodic reader does not
/// apply it (it leaves timeouts to the exporter), so it becomes the
/// exporter's timeout.
const METRIC_EXPORT_TIMEOUT_ENV: &str = "OTEL_METRIC_EXPORT_TIMEOUT";

/// The metrics settings [`build_meter_provider`] does not leave to the SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MetricsSettings {
    /// `OTEL_METRICS_EXPORTER`: `otlp` (true) or `none` (false).
    enabled: bool,
    interval: Option<std::time::Duration>,
    timeout: Option<std::time::Duration>,
}

impl MetricsSettings {
    fn from_env() -> Result<Self, ConfigError> {
        let exporter = crate::config::env_string(METRICS_EXPORTER_ENV, "otlp");
        let enabled = match exporter.trim().to_ascii_lowercase().as_str() {
            "otlp" => true,
            "none" => false,
            _ => {
                return Err(ConfigError {
                    name: METRICS_EXPORTER_ENV,
                    value: exporter,
                    reason: "expected otlp or none (for console or Prometheus output, run an \
                             OpenTelemetry Collector)"
                        .into(),
                });
            }
        };
        Ok(Self {
            enabled,
            interval: positive_millis(METRIC_EXPORT_INTERVAL_ENV)?,
            timeout: positive_millis(METRIC_EXPORT_TIMEOUT_ENV)?,
        })
    }
}

/// A positive number of milliseconds from `name`, if set.
fn positive_millis(name: &'static str) -> Result<Option<std::time::Duration>, ConfigError> {
    match crate::config::env_parsed::<u64>(name)? {
        Some(0) => Err(ConfigError {
            name,
            value: "0".into(),
            reason: "must be at least 1 ms".into(),
        }),
        ms => Ok(ms.map(std::time::Duration::from_millis)),
    }
}

/// The meter provider: OTLP metric exporter (same protocol choice as the
/// span exporter), periodic reader, the service's resource. `None` when
/// `OTEL_METRICS_EXPORTER=none`.
fn build_meter_provider(
    settings: &MetricsSettings,
    resource: Resource,
    grpc: &mut Option<tokio::runtime::Runtime>,
) -> Result<Option<SdkMeterProvider>, TelemetryError> {
    if !settings.enabled {
        tracing::info!("{METRICS_EXPORTER_ENV}=none: metrics are off, traces stay on");
        return Ok(None);
    }
    let MetricsSettings {
        interval, timeout, ..
    } = *settings;
    // Endpoint (`..._METRICS_ENDPOINT`, else the base URL + `/v1/metrics`),
    // headers and temporality are read by the exporter builder itself, as
    // for spans. Temporality stays cumulative by default: what Prometheus
    // (and the Collector's prometheus exporter) expects. The HTTP client is
    // the stock one but for error statuses, which it passes on, so that a
    // refusal is reported by its status (see `StatusPassingClient`).
    let http = |protocol| -> Result<MetricExporter, TelemetryError> {
        let client = StatusPassingClient::new(timeout, "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT")?;
        Ok(MetricExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_http_client(client)
            .build()?)
    };
    let protocol = protocol("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL");
    let endpoint = describe_endpoint(&signal_endpoint(
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
        "/v1/metrics",
        protocol == "grpc",
    ));
    let exporter = match protocol.as_str() {
        "http/protobuf" => http(Protocol::HttpBinary)?,
        "http/json" => http(Protocol::HttpJson)?,
        "grpc" => {
            let _entered = grpc_runtime(grpc)?.enter();
            let mut builder = MetricExporter::builder().with_tonic();
            if let Some(timeout) = timeout {
                builder = builder.with_timeout(timeout);
            }
            builder.build()?
        }
        other => return Err(TelemetryError::UnsupportedProtocol(other.to_owned())),
    };
    // The reader runs on its own thread, like the batch span processor:
    // collect the aggregates every interval, export them, and once more on
    // shutdown. (`with_interval` only when set: the builder has already read
    // the variable, and the SDK's default applies otherwise.)
    let mut reader = PeriodicReader::builder(ReportingMetricExporter {
        inner: exporter,
        endpoint,
        failing: AtomicBool::new(false),
    });
    if let Some(interval) = interval {
        reader = reader.with_interval(interval);
    }
    Ok(Some(
        SdkMeterProvider::builder()
            .with_reader(reader.build())
            .with_resource(resource)
            .build(),
    ))
}

/// The OTLP metric exporter, plus a log line when exports start failing and
/// one when they recover.
///
/// The SDK's periodic reader logs a failed export at `debug` only: a wrong
/// metrics endpoint would otherwise go unnoticed at the default log level.
/// Unlike spans, nothing is lost for good while it fails: the next export
/// carries the cumulative totals, so two lines per outage are enough (no
/// counting, no interval report).
struct ReportingMetricExporter {
    inner: MetricExporter,
    /// Where it exports, for the log line (credentials removed).
    endpoint: String,
    failing: AtomicBool,
}

impl PushMetricExporter for ReportingMetricExporter {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let result = self.inner.export(metrics).await;
        match &result {
            Err(err) if !self.failing.swap(true, Ordering::Relaxed) => {
                let (error, hint) = describe_metrics_error(&err.to_string());
                tracing::warn!(
                    "telemetry: metrics export to {} failed: {error}; retrying every interval \
                     (the next export that succeeds carries the totals){hint}",
                    self.endpoint
                )
            }
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!("telemetry: metrics export recovered")
            }
            _ => {}
        }
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.temporality()
    }
}

/// The metric exporter's error for the log line, with the reason phrase of
/// the status the server answered (`HTTP export failed with status code: 405
/// Method Not Allowed`), and a hint when that status says the server takes
/// no OTLP metrics at that URL.
fn describe_metrics_error(error: &str) -> (String, &'static str) {
    const STATUS: &str = "status code: ";
    let answered = error.split_once(STATUS).and_then(|(_, rest)| {
        let code = rest.split(|c: char| !c.is_ascii_digit()).next()?;
        reqwest::StatusCode::from_bytes(code.as_bytes()).ok()
    });
    let Some(status) = answered else {
        return (error.to_owned(), "");
    };
    let error = error.replacen(
        &format!("{STATUS}{}", status.as_u16()),
        &format!("{STATUS}{status}"),
        1,
    );
    let hint = match status.as_u16() {
        404 | 405 => {
            "; a trace backend without OTLP metrics (Phoenix) answers so: \
             OTEL_METRICS_EXPORTER=none switches metrics off, \
             OTEL_EXPORTER_OTLP_METRICS_ENDPOINT sends them elsewhere"
        }
        _ => "",
    };
    (error, hint)
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
    // A message can quote content or a secret (a provider echoing the
    // prompt, a key in a URL): it passes the redactor like content does.
    let message = &crate::redact::Redactor::current().apply(message);
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
    fn a_metrics_export_refused_by_status_names_it_with_its_reason() {
        let (error, hint) = super::describe_metrics_error(
            "Operation failed: HTTP export failed with status code: 405",
        );
        assert_eq!(
            error,
            "Operation failed: HTTP export failed with status code: 405 Method Not Allowed"
        );
        assert!(hint.contains("OTEL_METRICS_EXPORTER=none"), "{hint}");
        let (error, hint) = super::describe_metrics_error(
            "Operation failed: HTTP export failed with status code: 503",
        );
        assert!(
            error.ends_with("status code: 503 Service Unavailable"),
            "{error}"
        );
        assert_eq!(hint, "");
        // No answer: the error as it is.
        let network = "Operation failed: HTTP export failed: network error";
        assert_eq!(
            super::describe_metrics_error(network),
            (network.to_owned(), "")
        );
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
