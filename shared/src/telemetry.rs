//! Telemetry init and shutdown: the first thing every service's `main` does.
//!
//! [`init`] installs four pieces:
//!
//! 1. **The global propagator**, W3C TraceContext plus W3C Baggage. The
//!    default one is a no-op: without it, incoming headers are ignored and
//!    every service starts its own trace, with no error anywhere.
//! 2. **A tracer provider** whose *batch* span processor hands finished spans
//!    to an OTLP exporter on its own thread: a request never waits for the
//!    collector.
//! 3. **A `tracing` subscriber** with the `tracing-opentelemetry` layer:
//!    every `tracing` span becomes an OpenTelemetry span, so handlers use
//!    plain `tracing::info_span!` (`otel.name`, `otel.kind` and
//!    `otel.status_code` fields steer the OTel side). It writes the log lines
//!    too ([`crate::logs`]).
//! 4. **A meter provider** whose *periodic reader* exports the aggregated
//!    measurements on its own thread, set globally before [`crate::metrics`]
//!    creates its instruments.
//!
//! The standard `OTEL_*` variables configure them, read by the SDK and the
//! exporters themselves (all in `docs/configuration.md`).
//!
//! The [`TelemetryGuard`] that [`init`] returns must live until `main`
//! returns. Dropping it flushes the span queue (the last requests' spans
//! still reach the collector) while the meter provider exports one last
//! time, then logs the export totals.
//!
//! The machinery is in the submodules: [`exporter`] (which exporter, which
//! protocol), [`mod@export_stats`] and [`export_report`] (every span counted,
//! a log line when spans are lost), [`metrics_export`].

pub mod export_report;
pub mod export_stats;
pub mod exporter;
pub mod metrics_export;

use std::sync::Arc;

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::{Status, TraceContextExt, TracerProvider as _};
use opentelemetry::{KeyValue, global};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider,
};
use tracing::Span;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

pub use export_report::REPORT_INTERVAL_ENV;
pub use export_stats::{ExportCounts, ExportStats, export_stats};
pub use exporter::TelemetryError;

use crate::{attributes, dialects::Dialects, dialects::translate::Translate, logs};
use export_report::ExportReport;
use export_stats::{CountingExporter, CountingProcessor};
use exporter::GrpcRuntime;
use metrics_export::{MetricsSettings, MetricsShutdown};

/// Install propagator, tracer provider, subscriber and meter provider for
/// `service_name` (used as `service.name` unless `OTEL_SERVICE_NAME` or
/// `OTEL_RESOURCE_ATTRIBUTES` say otherwise).
pub fn init(service_name: &str) -> Result<TelemetryGuard, TelemetryError> {
    // 1. The propagator, set globally: the server middleware extracts with
    //    it, the outbound helper injects with it (`crate::propagation`).
    global::set_text_map_propagator(w3c_propagator());

    let logs = tracing_subscriber::registry()
        .with(logs::filter())
        .with(export_report::quiet_sdk_export_errors()) // one line per interval instead
        .with(logs::fmt_layer());
    if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        logs.try_init()?;
        tracing::info!("OTEL_SDK_DISABLED=true: tracing and metrics are off, logs only");
        return Ok(TelemetryGuard::default());
    }
    // Settings first: a bad value stops the service before anything runs.
    let report_interval = export_report::interval_from_env()?;
    let metrics_settings = MetricsSettings::from_env()?;
    let mut grpc = GrpcRuntime::default(); // started by the first gRPC exporter
    let resource = resource(service_name);

    // 2. OTLP exporter -> batch processor -> tracer provider (the sampler and
    //    `OTEL_BSP_*` are read by the SDK), plus vendor keys derived at export
    //    (`crate::dialects`) and a counter on each side of the batch processor
    //    (`export_stats.rs`).
    let (exporter, endpoint) = exporter::span_exporter(&mut grpc)?;
    let exporter = Translate::new(exporter, Dialects::current());
    let stats = Arc::new(ExportStats::new());
    let queue_size = export_stats::max_queue_size_from_env();
    let batch_config = BatchConfigBuilder::default().with_max_queue_size(queue_size);
    let batch = BatchSpanProcessor::builder(CountingExporter::new(exporter, stats.clone()))
        .with_batch_config(batch_config.build())
        .build();
    let tracer_provider = SdkTracerProvider::builder()
        .with_span_processor(CountingProcessor::new(batch, stats.clone(), queue_size))
        .with_resource(resource.clone())
        .build();
    global::set_tracer_provider(tracer_provider.clone());
    export_stats::set_global(stats.clone());

    // 3. `tracing` spans become OTel spans, in the subscriber that logs.
    let tracer = tracer_provider.tracer(service_name.to_owned());
    logs.with(otel_layer(tracer)).try_init()?;

    // 4. Metrics, with the same resource: a backend joins a service's
    //    metrics and spans on `service.name`.
    let meter_provider = metrics_export::meter_provider(&metrics_settings, resource, &mut grpc)?;
    if let Some(meter_provider) = &meter_provider {
        global::set_meter_provider(meter_provider.clone());
    }

    let report = ExportReport::start(stats, report_interval, queue_size, endpoint)?;
    Ok(TelemetryGuard {
        tracer_provider: Some(tracer_provider),
        meter_provider,
        report: Some(report),
        grpc,
    })
}

/// The `tracing-opentelemetry` layer every service installs: each `tracing`
/// span becomes an OTel span of `tracer`.
pub fn otel_layer<S>(tracer: SdkTracer) -> OpenTelemetryLayer<S, SdkTracer>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        // An ERROR event inside a span marks it failed (see `record_error`).
        .with_error_events_to_status(true)
        // No code location, thread or busy/idle fields: cost, docs/bench.md.
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        // No OTel `Context` pushed on every poll: nothing reads
        // `Context::current()` here (docs/bench.md).
        .with_context_activation(false)
}

/// Flushes and shuts the tracer and meter providers down when dropped (or on
/// [`TelemetryGuard::shutdown`]).
#[derive(Default)]
#[must_use = "dropping the guard shuts telemetry down; keep it alive until main returns"]
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
    /// `None` when metrics are off (`OTEL_METRICS_EXPORTER=none`).
    meter_provider: Option<SdkMeterProvider>,
    report: Option<ExportReport>,
    grpc: GrpcRuntime,
}

impl TelemetryGuard {
    /// Flush every queued span and export the metrics one last time, then
    /// stop the exporters: what dropping the guard does.
    pub fn shutdown(self) {
        drop(self);
    }

    /// This provider's export counters (`None` when the SDK is disabled).
    pub fn export_stats(&self) -> Option<Arc<ExportStats>> {
        self.report.as_ref().map(ExportReport::stats)
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        // 1. The last metrics export starts beside the span flush: each is
        //    bounded by the SDK's 5 s timeout, so a hung collector costs 5 s.
        let metrics = self.meter_provider.take().map(MetricsShutdown::start);
        // 2. Flush the span queue.
        if let Some(provider) = self.tracer_provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("telemetry: shutdown did not flush cleanly: {err}");
        }
        if let Some(metrics) = metrics {
            metrics.wait();
        }
        // 3. The totals, final once the flush is over.
        if let Some(report) = self.report.take() {
            report.finish();
        }
        // 4. The runtime the gRPC exporters flushed on.
        drop(std::mem::take(&mut self.grpc));
    }
}

/// `service.name` precedence per the OTel spec: `OTEL_SERVICE_NAME`, then
/// `service.name` in `OTEL_RESOURCE_ATTRIBUTES` (both read by the SDK), then
/// the code's default.
fn resource(service_name: &str) -> Resource {
    let attributes = std::env::var("OTEL_RESOURCE_ATTRIBUTES").unwrap_or_default();
    let from_env = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || attributes
            .split(',')
            .any(|kv| kv.trim().starts_with("service.name="));
    let mut builder = Resource::builder();
    if !from_env {
        builder = builder.with_service_name(service_name.to_owned());
    }
    builder
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The propagator every service installs globally: W3C TraceContext
/// (`traceparent`, `tracestate`) plus W3C Baggage.
pub fn w3c_propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ])
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
