//! The OTLP exporters' plumbing: which span exporter, which protocol, where
//! to, over which HTTP client and on which runtime.
//!
//! # Which span exporter: `RAGTRACE_SPAN_EXPORTER`
//!
//! | value | `http/protobuf` spans go through |
//! |---|---|
//! | `fast` (default) | the `otlp-fast` crate: a hand-written encoder and exporter that write the protobuf straight from the SDK's span data |
//! | `otlp` | `opentelemetry-otlp`'s `SpanExporter`, as shipped |
//!
//! Both send the same bytes and read the same `OTEL_EXPORTER_OTLP_*`
//! variables; with either, a refusal is reported by its HTTP status and an
//! unreachable collector as a network error. `fast` costs the export thread
//! about a third of the CPU (`docs/bench.md`); which one stays the default
//! is for measurement to decide. `http/json` and `grpc` always use
//! `opentelemetry-otlp`, whatever the setting.
//!
//! # Protocol and endpoint
//!
//! The standard variables, read by the exporters themselves:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (base URL; `/v1/traces` is appended for
//! HTTP), `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is),
//! `OTEL_EXPORTER_OTLP_PROTOCOL` / `..._TRACES_PROTOCOL` (`http/protobuf`
//! default, `http/json`, `grpc`), `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_TIMEOUT`. Metrics have their own forms of each (see
//! [`super::metrics_export`]). The endpoint is resolved here as well, the way
//! the exporters resolve it, only to name it in log lines.
//!
//! # The HTTP client
//!
//! `opentelemetry-otlp`'s HTTP exporters get `StatusPassingClient`: its
//! stock client calls every answer with an error status a network error, so
//! a backend that is up and refuses the request (Phoenix answers
//! `/v1/metrics` with 405) would read as unreachable.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use otlp_fast::ProtobufHttpExporter;

use crate::config::ConfigError;

/// What can stop [`init`](super::init): mostly an exporter that cannot be
/// built from the settings.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("unsupported OTLP protocol {0:?} (expected http/protobuf, http/json or grpc)")]
    UnsupportedProtocol(String),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    #[error("cannot build the OTLP exporter: {0}")]
    HttpExporter(#[from] otlp_fast::Error),
    #[error("cannot build the OTLP HTTP client: {0}")]
    HttpClient(String),
    #[error("cannot start a telemetry thread or the gRPC exporter's runtime: {0}")]
    Runtime(#[from] std::io::Error),
    #[error("cannot install the tracing subscriber: {0}")]
    Subscriber(#[from] tracing_subscriber::util::TryInitError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// `fast` (the default) or `otlp`: see the module docs.
pub const SPAN_EXPORTER_ENV: &str = "RAGTRACE_SPAN_EXPORTER";

/// The span exporter [`span_exporter`] built.
#[derive(Debug)]
pub(crate) enum Exporter {
    /// `otlp-fast`'s, for `http/protobuf` with `RAGTRACE_SPAN_EXPORTER=fast`.
    Fast(ProtobufHttpExporter),
    /// `opentelemetry-otlp`'s, for everything else.
    Otlp(opentelemetry_otlp::SpanExporter),
}

/// The span exporter `RAGTRACE_SPAN_EXPORTER` and
/// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL` ask
/// for, with where it sends spans (as shown in log lines).
pub(crate) fn span_exporter(grpc: &mut GrpcRuntime) -> Result<(Exporter, String), TelemetryError> {
    let fast = use_fast_exporter()?;
    let protocol = protocol("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
    let traces_var = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
    let endpoint = signal_endpoint(traces_var, "/v1/traces", protocol == "grpc");
    let exporter = match protocol.as_str() {
        "http/protobuf" if fast => {
            Exporter::Fast(ProtobufHttpExporter::from_env(endpoint.clone())?)
        }
        "http/protobuf" => Exporter::Otlp(http_span_exporter(Protocol::HttpBinary)?),
        "http/json" => Exporter::Otlp(http_span_exporter(Protocol::HttpJson)?),
        "grpc" => {
            let _entered = grpc.enter()?;
            Exporter::Otlp(
                opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .build()?,
            )
        }
        other => return Err(TelemetryError::UnsupportedProtocol(other.to_owned())),
    };
    Ok((exporter, describe_endpoint(&endpoint)))
}

/// `RAGTRACE_SPAN_EXPORTER`: true for `fast` (the default), false for `otlp`.
fn use_fast_exporter() -> Result<bool, ConfigError> {
    let value = crate::config::env_string(SPAN_EXPORTER_ENV, "fast");
    match value.trim().to_ascii_lowercase().as_str() {
        "fast" => Ok(true),
        "otlp" => Ok(false),
        _ => Err(ConfigError {
            name: SPAN_EXPORTER_ENV,
            value,
            reason: "expected fast (otlp-fast, for http/protobuf) or otlp (opentelemetry-otlp)"
                .into(),
        }),
    }
}

/// `opentelemetry-otlp`'s HTTP span exporter, with a client that reports a
/// refusal by its status, as for metrics.
fn http_span_exporter(
    protocol: Protocol,
) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    let client = StatusPassingClient::new(None, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")?;
    Ok(opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .with_http_client(client)
        .build()?)
}

impl SpanExporter for Exporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        match self {
            Exporter::Fast(exporter) => exporter.export(batch).await,
            Exporter::Otlp(exporter) => exporter.export(batch).await,
        }
    }

    // Both shutdown methods are forwarded, as in `CountingExporter`: an
    // exporter may override either.
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        match self {
            Exporter::Fast(exporter) => exporter.shutdown_with_timeout(timeout),
            Exporter::Otlp(exporter) => exporter.shutdown_with_timeout(timeout),
        }
    }

    fn shutdown(&self) -> OTelSdkResult {
        match self {
            Exporter::Fast(exporter) => exporter.shutdown(),
            Exporter::Otlp(exporter) => exporter.shutdown(),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        match self {
            Exporter::Fast(exporter) => exporter.force_flush(),
            Exporter::Otlp(exporter) => exporter.force_flush(),
        }
    }

    fn set_resource(&mut self, resource: &Resource) {
        match self {
            Exporter::Fast(exporter) => exporter.set_resource(resource),
            Exporter::Otlp(exporter) => exporter.set_resource(resource),
        }
    }
}

/// The OTLP protocol for a signal: `OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL`,
/// then `OTEL_EXPORTER_OTLP_PROTOCOL`, then `http/protobuf`.
pub(crate) fn protocol(signal_var: &str) -> String {
    std::env::var(signal_var)
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_else(|_| "http/protobuf".to_owned())
        .trim()
        .to_owned()
}

/// Where the exporter of one signal sends it: its own variable as is, else
/// the base URL (plus `path` over HTTP), else the default (for log lines).
pub(crate) fn signal_endpoint(signal_var: &str, path: &str, grpc: bool) -> String {
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

/// The collector endpoint as shown in log lines: no user info, no query.
pub(crate) fn describe_endpoint(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit('@').next().unwrap_or_default();
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// The runtime the gRPC exporters' I/O runs on, started when the first one
/// is built. It is not the service's runtime: the final flush blocks the
/// main thread, which would otherwise be the very thread the export needs to
/// make progress.
#[derive(Debug, Default)]
pub(crate) struct GrpcRuntime(Option<tokio::runtime::Runtime>);

impl GrpcRuntime {
    /// Entered while a gRPC exporter is built: tonic needs a Tokio reactor
    /// for its connection.
    pub(crate) fn enter(&mut self) -> std::io::Result<tokio::runtime::EnterGuard<'_>> {
        if self.0.is_none() {
            self.0 = Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .thread_name("otlp-grpc")
                    .enable_all()
                    .build()?,
            );
        }
        Ok(self.0.as_ref().expect("just set").enter())
    }
}

impl Drop for GrpcRuntime {
    /// Without waiting for its tasks: it may be dropped inside the service's
    /// own runtime, where blocking is not allowed.
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// The HTTP client for `opentelemetry-otlp`'s HTTP exporters: `reqwest`'s
/// blocking client, as the exporters' default, but an answer with an error
/// status is passed on as an answer.
///
/// The stock `HttpClient` impl for `reqwest::blocking::Client` turns every
/// 4xx and 5xx answer into an error (`error_for_status`), and the exporter
/// reports any error of its client as `HTTP export failed: network error`
/// (the status goes to a `debug` event only). With the answer passed on, the
/// exporter reports `HTTP export failed with status code: 405`; a connection
/// that fails is still a network error. (`shared/tests/otlp_export.rs`
/// fails should a later `opentelemetry-otlp` report the status itself: this
/// client can go then.)
#[derive(Debug)]
pub(crate) struct StatusPassingClient(reqwest::blocking::Client);

impl StatusPassingClient {
    /// With `timeout`, else the signal's timeout variable (`signal_var`),
    /// then `OTEL_EXPORTER_OTLP_TIMEOUT`, then 10 s, as the exporter
    /// resolves it for its own client (a client handed to the exporter gets
    /// no timeout from it).
    pub(crate) fn new(
        timeout: Option<Duration>,
        signal_var: &'static str,
    ) -> Result<Self, TelemetryError> {
        let timeout = match timeout {
            Some(timeout) => timeout,
            None => exporter_timeout(signal_var)?,
        };
        // reqwest's blocking client starts a runtime of its own, which it
        // refuses to do on a thread already inside one (an async `main` is):
        // it is built on a thread of its own, as `opentelemetry-otlp` does.
        // The exporter sets the headers on each request.
        let client = std::thread::spawn(move || {
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .build()
        })
        .join()
        .map_err(|_| TelemetryError::HttpClient("the builder thread panicked".into()))?
        .map_err(|err| TelemetryError::HttpClient(err.to_string()))?;
        Ok(Self(client))
    }

    /// The stock impl's conversions, without `error_for_status`.
    fn send(&self, request: Request<Bytes>) -> Answer {
        let mut response = self.0.execute(request.try_into()?)?;
        let headers = std::mem::take(response.headers_mut());
        let mut answer = Response::builder()
            .status(response.status())
            .body(response.bytes()?)?;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

/// `OTEL_EXPORTER_OTLP_{SIGNAL}_TIMEOUT` (`signal_var`), else
/// `OTEL_EXPORTER_OTLP_TIMEOUT`, else 10 s; a value that is not a number of
/// milliseconds is an error.
fn exporter_timeout(signal_var: &'static str) -> Result<Duration, ConfigError> {
    let ms = match crate::config::env_parsed::<u64>(signal_var)? {
        Some(ms) => Some(ms),
        None => crate::config::env_parsed::<u64>("OTEL_EXPORTER_OTLP_TIMEOUT")?,
    };
    Ok(Duration::from_millis(ms.unwrap_or(10_000)))
}

/// What [`HttpClient::send_bytes`] resolves to.
type Answer = Result<Response<Bytes>, HttpError>;

impl HttpClient for StatusPassingClient {
    // The trait is declared with `#[async_trait]`; this is the signature the
    // macro gives it. The exporters block on the future on their own
    // threads, so the request is made right here.
    fn send_bytes<'life0, 'async_trait>(
        &'life0 self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Answer> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(std::future::ready(self.send(request)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_shown_without_credentials() {
        assert_eq!(
            describe_endpoint("https://user:secret@otel.example.com:4318/v1/traces?key=abc"),
            "https://otel.example.com:4318/v1/traces"
        );
        assert_eq!(
            describe_endpoint("http://127.0.0.1:4317"),
            "http://127.0.0.1:4317"
        );
    }
}
