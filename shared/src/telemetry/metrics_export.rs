//! The meter provider's exporter: OTLP metrics, collected and exported by a
//! periodic reader on its own thread, with a log line when exports start
//! failing and one when they recover.
//!
//! Metrics follow the span exporter's variables, with their own overrides as
//! the OTLP exporter specification defines them:
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
//! Unlike spans, nothing is lost for good while exports fail: each export
//! carries the cumulative totals, so two log lines per outage are enough (no
//! counting, no interval report). A failing export is logged with why: the
//! status the server answered (a trace-only backend such as Phoenix answers
//! `/v1/metrics` with `405 Method Not Allowed`) or a network error when none
//! answered.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use opentelemetry_otlp::{MetricExporter, Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};

use super::exporter::{
    GrpcRuntime, StatusPassingClient, TelemetryError, describe_endpoint, protocol, signal_endpoint,
};
use crate::config::ConfigError;

/// `OTEL_METRICS_EXPORTER`: `otlp` (the default) or `none`.
const METRICS_EXPORTER_ENV: &str = "OTEL_METRICS_EXPORTER";
/// `OTEL_METRIC_EXPORT_INTERVAL`, ms. The SDK reads it too, but silently
/// falls back to 60 s on a typo; we reject the typo instead.
const METRIC_EXPORT_INTERVAL_ENV: &str = "OTEL_METRIC_EXPORT_INTERVAL";
/// `OTEL_METRIC_EXPORT_TIMEOUT`, ms. The SDK's periodic reader does not
/// apply it (it leaves timeouts to the exporter), so it becomes the
/// exporter's timeout.
const METRIC_EXPORT_TIMEOUT_ENV: &str = "OTEL_METRIC_EXPORT_TIMEOUT";

/// The metrics settings [`meter_provider`] does not leave to the SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MetricsSettings {
    /// `OTEL_METRICS_EXPORTER`: `otlp` (true) or `none` (false).
    enabled: bool,
    interval: Option<std::time::Duration>,
    timeout: Option<std::time::Duration>,
}

impl MetricsSettings {
    pub(crate) fn from_env() -> Result<Self, ConfigError> {
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
pub(crate) fn meter_provider(
    settings: &MetricsSettings,
    resource: Resource,
    grpc: &mut GrpcRuntime,
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
            let _entered = grpc.enter()?;
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

/// A meter provider's shutdown (its last export), on a thread of its own so
/// that it runs beside the span flush.
pub(crate) struct MetricsShutdown(std::io::Result<thread::JoinHandle<OTelSdkResult>>);

impl MetricsShutdown {
    pub(crate) fn start(meter_provider: SdkMeterProvider) -> Self {
        Self(
            thread::Builder::new()
                .name("otel-metrics-shutdown".into())
                .spawn(move || meter_provider.shutdown()),
        )
    }

    /// Waits for the last export; a failure is written to stderr, as the
    /// span flush's is (the subscriber may be gone by then).
    pub(crate) fn wait(self) {
        match self.0.map(thread::JoinHandle::join) {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(err))) => {
                eprintln!("telemetry: metrics shutdown did not export cleanly: {err}")
            }
            Ok(Err(_)) => eprintln!("telemetry: metrics shutdown panicked"),
            Err(err) => eprintln!("telemetry: cannot shut metrics down: {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
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
}
