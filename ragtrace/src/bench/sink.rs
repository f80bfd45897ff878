//! The bench's OTLP/HTTP receiver: decodes every export request completely
//! and counts what it holds, keeping nothing else.
//!
//! Why not [`crate::otlp::Receiver`]: its [`crate::otlp::SpanStore`] keeps
//! every span, with its attributes turned into JSON values, for tests and the
//! console view to read back. At 100,000 requests that is 1.3 million span
//! records (gigabytes), and the conversion costs CPU on the same two cores as
//! the pipeline being measured. A collector that counts is what the bench
//! needs: the protobuf is still decoded in full (a malformed export is an
//! error, as in a real backend), then only counters and one small entry per
//! trace survive.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value;
use prost::Message;

/// What arrived so far.
#[derive(Debug, Default, Clone)]
pub struct SinkCounts {
    /// `POST /v1/traces` requests decoded.
    pub export_requests: u64,
    /// Requests that did not decode (answered 400).
    pub rejected_requests: u64,
    pub spans: u64,
    /// Spans without a parent: one per trace started by the gateway.
    pub root_spans: u64,
    /// Spans per `service.name`.
    pub spans_by_service: BTreeMap<String, u64>,
    /// Spans per trace id.
    per_trace: HashMap<u128, u32>,
}

impl SinkCounts {
    /// Distinct traces seen.
    pub fn traces(&self) -> u64 {
        self.per_trace.len() as u64
    }

    /// Of the traces `ids` (each counted once): the spans that arrived, and
    /// how many of the traces arrived with exactly `complete` spans.
    pub fn spans_of(&self, ids: &[u128], complete: u32) -> (u64, u64) {
        let (mut spans, mut whole) = (0, 0);
        for id in ids {
            let n = self.per_trace.get(id).copied().unwrap_or(0);
            spans += u64::from(n);
            whole += u64::from(n == complete);
        }
        (spans, whole)
    }

    fn add(&mut self, request: &ExportTraceServiceRequest) {
        self.export_requests += 1;
        for resource_spans in &request.resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| kv.value.as_ref()?.value.as_ref())
                .map(|value| match value {
                    any_value::Value::StringValue(s) => s.as_str(),
                    _ => crate::otlp::UNKNOWN_SERVICE,
                })
                .unwrap_or(crate::otlp::UNKNOWN_SERVICE);
            let mut in_resource = 0;
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                in_resource += 1;
                if span.parent_span_id.is_empty() {
                    self.root_spans += 1;
                }
                let trace_id = <[u8; 16]>::try_from(span.trace_id.as_slice())
                    .map(u128::from_be_bytes)
                    .unwrap_or(0);
                *self.per_trace.entry(trace_id).or_default() += 1;
            }
            self.spans += in_resource;
            match self.spans_by_service.get_mut(service) {
                Some(n) => *n += in_resource,
                None => {
                    self.spans_by_service
                        .insert(service.to_owned(), in_resource);
                }
            }
        }
    }
}

/// A running counting receiver on its own actix worker thread.
pub struct Sink {
    pub addr: SocketAddr,
    counts: Arc<Mutex<SinkCounts>>,
    handle: ServerHandle,
    task: Option<tokio::task::JoinHandle<io::Result<()>>>,
}

impl Sink {
    /// Listens on `addr` (port 0 picks a free port).
    pub fn start(addr: SocketAddr) -> io::Result<Sink> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(Mutex::new(SinkCounts::default()));
        let app_counts = counts.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::from(app_counts.clone()))
                .app_data(web::PayloadConfig::new(crate::otlp::MAX_BODY_BYTES))
                .route("/v1/traces", web::post().to(traces))
        })
        // One worker: decoding is cheap next to what is being measured, and
        // the bench shares two cores with the pipeline.
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        let handle = server.handle();
        let task = tokio::spawn(server);
        Ok(Sink {
            addr,
            counts,
            handle,
            task: Some(task),
        })
    }

    /// `http://{addr}`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn counts(&self) -> SinkCounts {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if self.task.is_some() {
            drop(self.handle.stop(false));
        }
    }
}

async fn traces(
    request: HttpRequest,
    body: web::Bytes,
    counts: web::Data<Mutex<SinkCounts>>,
) -> HttpResponse {
    let protobuf = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-protobuf"));
    if !protobuf {
        // The bench sets OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf.
        return HttpResponse::UnsupportedMediaType().body("application/x-protobuf only");
    }
    // Decoded outside the lock: the lock only guards the counters.
    let decoded = ExportTraceServiceRequest::decode(body.as_ref());
    let Ok(mut counts) = counts.lock() else {
        return HttpResponse::InternalServerError().finish();
    };
    match decoded {
        Ok(export) => {
            counts.add(&export);
            drop(counts);
            HttpResponse::Ok()
                .content_type("application/x-protobuf")
                .body(ExportTraceServiceResponse::default().encode_to_vec())
        }
        Err(err) => {
            counts.rejected_requests += 1;
            HttpResponse::BadRequest().body(err.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    fn span(trace: u8, parent: bool) -> Span {
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![1; 8],
            parent_span_id: if parent { vec![2; 8] } else { vec![] },
            ..Default::default()
        }
    }

    fn export(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(service.into())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[actix_web::test]
    async fn counts_spans_roots_traces_and_services_from_real_requests() {
        let sink = Sink::start("127.0.0.1:0".parse().unwrap()).unwrap();
        let client = awc::Client::default();
        let url = format!("{}/v1/traces", sink.endpoint());
        for body in [
            export(
                "gateway",
                vec![span(1, false), span(1, true), span(2, false)],
            ),
            export("retrieval", vec![span(1, true)]),
        ] {
            let response = client
                .post(&url)
                .insert_header(("content-type", "application/x-protobuf"))
                .send_body(body.encode_to_vec())
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        let garbage = client
            .post(&url)
            .insert_header(("content-type", "application/x-protobuf"))
            .send_body(vec![0xff, 0xff, 0xff])
            .await
            .unwrap();
        assert_eq!(garbage.status(), 400);
        let json = client.post(&url).send_json(&"{}").await.unwrap();
        assert_eq!(json.status(), 415);

        let counts = sink.counts();
        assert_eq!(counts.export_requests, 2);
        assert_eq!(counts.rejected_requests, 1);
        assert_eq!(counts.spans, 4);
        assert_eq!(counts.root_spans, 2);
        assert_eq!(counts.traces(), 2);
        let one = u128::from_be_bytes([1; 16]);
        let two = u128::from_be_bytes([2; 16]);
        assert_eq!(counts.spans_of(&[one], 3), (3, 1));
        assert_eq!(counts.spans_of(&[one, two], 3), (4, 1));
        assert_eq!(counts.spans_of(&[7], 3), (0, 0));
        assert_eq!(counts.spans_by_service["gateway"], 3);
        assert_eq!(counts.spans_by_service["retrieval"], 1);
        sink.stop().await;
    }
}
