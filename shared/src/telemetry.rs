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

use std::sync::OnceLock;

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::{Status, TraceContextExt, TracerProvider as _};
use opentelemetry::{KeyValue, global};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::attributes;

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
}

impl TelemetryGuard {
    /// Flush every queued span, then stop the exporter.
    pub fn shutdown(mut self) {
        self.shutdown_inner();
    }

    fn shutdown_inner(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("telemetry: shutdown did not flush cleanly: {err}");
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
    global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));

    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let fmt_layer = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
        _ => tracing_subscriber::fmt::layer()
            .compact()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_target(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };

    if sdk_disabled() {
        tracing_subscriber::registry()
            .with(filter)
            .with(fmt_layer)
            .try_init()?;
        tracing::info!("OTEL_SDK_DISABLED=true: tracing is off, logs only");
        return Ok(TelemetryGuard {
            provider: None,
            grpc_runtime: None,
        });
    }

    // (2) Exporter + batch processor + resource. The sampler comes from
    // OTEL_TRACES_SAMPLER/_ARG (default: parentbased_always_on), read by the
    // SDK's default config.
    let (exporter, grpc_runtime) = build_exporter()?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource(service_name))
        .build();
    global::set_tracer_provider(provider.clone());
    let tracer = provider.tracer(service_name.to_owned());

    // (3) `tracing` spans become OTel spans. ERROR-level events inside a span
    // mark it as failed; `record_error` below adds the semconv details.
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_error_events_to_status(true);
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()?;

    Ok(TelemetryGuard {
        provider: Some(provider),
        grpc_runtime,
    })
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

fn build_exporter() -> Result<(SpanExporter, Option<tokio::runtime::Runtime>), TelemetryError> {
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
        )),
        "http/json" => Ok((
            SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpJson)
                .build()?,
            None,
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
            Ok((exporter, Some(runtime)))
        }
        other => Err(TelemetryError::UnsupportedProtocol(other.to_owned())),
    }
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
