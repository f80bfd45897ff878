//! The span exporter: OTLP over HTTP, protobuf, encoded by [`TraceEncoder`].
//!
//! It stands in for `opentelemetry-otlp`'s HTTP span exporter for this one
//! protocol, and only for cost (see the crate docs). Everything else stays
//! with the SDK: the batch span processor still queues, batches and calls
//! this exporter on its own thread.
//!
//! It reads the same variables, the same way (the OTLP exporter
//! specification), so switching between the two changes nothing a user sets:
//!
//! | variable | default |
//! |---|---|
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is), else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces` (resolved by the caller) | `http://localhost:4318/v1/traces` |
//! | `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS` (`k=v,k2=v2`, values URL-decoded) | a `User-Agent` |
//! | `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT` (ms) | 10000 |
//! | `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`, else `OTEL_EXPORTER_OTLP_COMPRESSION` | none (`gzip`/`zstd` are refused at startup, as the SDK's exporter does without its compression features) |
//!
//! The HTTP client is `reqwest`'s blocking client, the one the SDK's exporter
//! uses (`reqwest-blocking-client`): one keep-alive connection reused batch
//! after batch, driven from the batch processor's thread.
//!
//! A collector that answers with an error status is reported by that status
//! (`HTTP export failed with status code: 405 Method Not Allowed`), one that
//! cannot be reached as a network error, in the SDK exporter's wording.

use std::future::Future;
use std::time::Duration;

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};

use crate::encode::TraceEncoder;

const DEFAULT_TIMEOUT: Duration = Duration::from_millis(10_000);

/// A setting the exporter cannot work with, or a client it cannot build.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{name}={value:?}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("cannot build the OTLP HTTP client: {0}")]
    Client(String),
}

/// An OTLP/HTTP protobuf span exporter.
#[derive(Debug)]
pub struct ProtobufHttpExporter {
    /// Carries the headers (ours and `OTEL_EXPORTER_OTLP_*HEADERS`) as its
    /// defaults, set once here rather than per batch.
    client: reqwest::blocking::Client,
    endpoint: String,
    timeout: Duration,
    encoder: TraceEncoder,
}

/// The signal's variable, else the generic `OTEL_EXPORTER_OTLP_*` one (unset
/// and empty are the same), with the name it came from.
fn var(signal: &'static str, generic: &'static str) -> Option<(&'static str, String)> {
    let read = |name: &'static str| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name, v))
    };
    read(signal).or_else(|| read(generic))
}

impl ProtobufHttpExporter {
    /// Configured from the `OTEL_EXPORTER_OTLP_*` variables; `endpoint` is
    /// the resolved traces URL.
    pub fn from_env(endpoint: String) -> Result<Self, Error> {
        if reqwest::Url::parse(&endpoint).is_err() {
            return Err(Error::Invalid {
                name: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT",
                value: endpoint,
                reason: "not a URL",
            });
        }
        let timeout = timeout_from_env()?;
        if let Some((name, value)) = var(
            "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
            "OTEL_EXPORTER_OTLP_COMPRESSION",
        ) && !value.trim().eq_ignore_ascii_case("none")
        {
            return Err(Error::Invalid {
                name,
                value,
                reason: "compression is not built in (collectors on a local network gain \
                         little from it); unset it",
            });
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("ragtrace/", env!("CARGO_PKG_VERSION"))),
        );
        if let Some((_, value)) = var(
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "OTEL_EXPORTER_OTLP_HEADERS",
        ) {
            // `insert`, not `append`: a header set here replaces our default.
            for (name, value) in parse_headers(&value) {
                headers.insert(name, value);
            }
        }
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        Ok(Self {
            client: blocking_client(timeout, headers)?,
            endpoint,
            timeout,
            encoder: TraceEncoder::default(),
        })
    }

    fn send(&self, batch: &[SpanData]) -> OTelSdkResult {
        if batch.is_empty() {
            return Ok(());
        }
        let body = self.encoder.encode(batch);
        let response = self
            .client
            .post(&self.endpoint)
            .body(body)
            .send()
            .map_err(|err| {
                // The wording the SDK's exporter uses, so the export report
                // classifies it the same way ("collector unreachable").
                let why = if err.is_timeout() {
                    format!("timed out after {:?}", self.timeout)
                } else if err.is_connect() {
                    "cannot connect".to_owned()
                } else {
                    "connection failed".to_owned()
                };
                OTelSdkError::InternalFailure(format!("HTTP export failed: network error ({why})"))
            })?;
        let status = response.status();
        // The body is read to its end either way, so the connection can be
        // reused for the next batch.
        let _ = response.bytes();
        if status.is_success() {
            Ok(())
        } else {
            // The collector answered: its status, code and reason ("405
            // Method Not Allowed"), after the SDK exporter's wording.
            Err(OTelSdkError::InternalFailure(format!(
                "HTTP export failed with status code: {status}"
            )))
        }
    }
}

/// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`, else `OTEL_EXPORTER_OTLP_TIMEOUT`,
/// else 10 s; a value that is not a number of milliseconds is an error.
fn timeout_from_env() -> Result<Duration, Error> {
    match var(
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ) {
        None => Ok(DEFAULT_TIMEOUT),
        Some((name, value)) => match value.trim().parse::<u64>() {
            Ok(ms) => Ok(Duration::from_millis(ms)),
            Err(_) => Err(Error::Invalid {
                name,
                value,
                reason: "expected milliseconds",
            }),
        },
    }
}

/// `reqwest`'s blocking client starts a runtime of its own, which it refuses
/// to do on a thread that is already inside one (an async `main` is): build
/// it on a thread of its own, as `opentelemetry-otlp` does.
fn blocking_client(
    timeout: Duration,
    headers: HeaderMap,
) -> Result<reqwest::blocking::Client, Error> {
    std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .timeout(timeout)
            .default_headers(headers)
            .build()
            .map_err(|err| Error::Client(err.to_string()))
    })
    .join()
    .map_err(|_| Error::Client("the builder thread panicked".into()))?
}

/// `k=v,k2=v2` (the OTLP exporter specification's format), values URL-decoded;
/// malformed members are skipped, as the SDK's exporter does.
fn parse_headers(value: &str) -> impl Iterator<Item = (HeaderName, HeaderValue)> + '_ {
    value.split(',').filter_map(|member| {
        let (key, value) = member.split_once('=')?;
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() || value.is_empty() {
            return None;
        }
        let decoded = url_decode(value).unwrap_or_else(|| value.to_owned());
        Some((
            HeaderName::from_bytes(key.as_bytes()).ok()?,
            HeaderValue::from_str(&decoded).ok()?,
        ))
    })
}

/// Percent-decoding; `None` for a malformed escape or non-UTF-8 result.
fn url_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

impl SpanExporter for ProtobufHttpExporter {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        // The batch processor blocks on this future on its own thread, so the
        // work is done right here and the future is already complete.
        std::future::ready(self.send(&batch))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.encoder.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_parsed_as_the_specification_says() {
        let parsed: Vec<(String, String)> =
            parse_headers("api-key=s%3Dcr%2Ct, x-tenant = acme ,broken,=v,k=,bad key=1")
                .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_owned()))
                .collect();
        assert_eq!(
            parsed,
            [
                ("api-key".to_owned(), "s=cr,t".to_owned()),
                ("x-tenant".to_owned(), "acme".to_owned())
            ]
        );
        assert_eq!(url_decode("a%20b").as_deref(), Some("a b"));
        assert_eq!(url_decode("100%"), None);
        assert_eq!(url_decode("%ff"), None);
    }

    /// A collector double over a real socket: answers each HTTP/1.1 request
    /// with the next status of `statuses` on a kept-alive connection, and
    /// records the connections it accepted and the bodies it got.
    struct Collector {
        url: String,
        accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        bodies: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
    }

    fn collector(statuses: Vec<u16>) -> Collector {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (seen, kept) = (accepted.clone(), bodies.clone());
        std::thread::spawn(move || {
            let mut statuses = statuses.into_iter();
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                loop {
                    let mut length = 0;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            break;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':')
                            && name.eq_ignore_ascii_case("content-length")
                        {
                            length = value.trim().parse().unwrap();
                        }
                    }
                    if line != "\r\n" {
                        break; // the client closed the connection
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    kept.lock().unwrap().push(body);
                    let status = statuses.next().unwrap_or(200);
                    write!(writer, "HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n").unwrap();
                }
            }
        });
        Collector {
            url,
            accepted,
            bodies,
        }
    }

    fn span(name: &'static str) -> SpanData {
        use opentelemetry::trace::{
            SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
        };
        let now = std::time::SystemTime::now();
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(7_u128),
                SpanId::from(9_u64),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Server,
            name: name.into(),
            start_time: now,
            end_time: now,
            attributes: vec![opentelemetry::KeyValue::new("http.route", "/chat")],
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }

    #[test]
    fn batches_go_over_one_kept_alive_connection_and_a_refusal_is_an_error() {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use prost::Message;

        let collector = collector(vec![200, 503, 200]);
        let mut exporter = ProtobufHttpExporter::from_env(collector.url.clone()).unwrap();
        exporter.set_resource(
            &Resource::builder_empty()
                .with_service_name("gateway")
                .build(),
        );
        assert!(exporter.send(&[span("one"), span("two")]).is_ok());
        let refused = exporter.send(&[span("three")]).unwrap_err().to_string();
        assert!(refused.contains("status code: 503"), "{refused}");
        assert!(exporter.send(&[span("four")]).is_ok());
        // An empty batch sends nothing.
        assert!(exporter.send(&[]).is_ok());

        let bodies = collector.bodies.lock().unwrap().clone();
        let names: Vec<Vec<String>> = bodies
            .iter()
            .map(|body| {
                let request = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
                let resource = request.resource_spans[0].resource.as_ref().unwrap();
                assert_eq!(resource.attributes[0].key, "service.name");
                request.resource_spans[0].scope_spans[0]
                    .spans
                    .iter()
                    .map(|s| s.name.clone())
                    .collect()
            })
            .collect();
        assert_eq!(names, [vec!["one", "two"], vec!["three"], vec!["four"]]);
        assert_eq!(
            collector.accepted.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "one connection for every batch"
        );
    }

    #[test]
    fn an_answer_with_an_error_status_is_reported_by_that_status() {
        let collector = collector(vec![405, 404]);
        let exporter = ProtobufHttpExporter::from_env(collector.url.clone()).unwrap();
        for status in ["405 Method Not Allowed", "404 Not Found"] {
            let err = exporter.send(&[span("refused")]).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("Operation failed: HTTP export failed with status code: {status}")
            );
        }
    }

    #[test]
    fn an_unreachable_collector_is_a_network_error() {
        // Port 9 (discard): privileged, so no test receiver can be there.
        let exporter =
            ProtobufHttpExporter::from_env("http://127.0.0.1:9/v1/traces".into()).unwrap();
        let err = exporter.send(&[span("lost")]).unwrap_err().to_string();
        assert!(err.contains("HTTP export failed: network error"), "{err}");
    }
}
