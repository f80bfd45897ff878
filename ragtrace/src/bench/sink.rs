//! The bench's OTLP/HTTP receiver: decodes every span of every export
//! request and counts what it holds, keeping nothing else.
//!
//! Why not [`crate::receiver::Receiver`]: its [`crate::receiver::SpanStore`] keeps
//! every span, with its attributes turned into JSON values, for tests and the
//! console view to read back. At 100,000 requests that is 1.3 million span
//! records (gigabytes), and the conversion costs CPU on the same two cores as
//! the pipeline being measured.
//!
//! Why not decode into `opentelemetry-proto`'s structs either: that allocates
//! a `String` for every attribute key and value, ~3.5 us per span measured
//! here, charged to tracing by a bench that runs its collector on the
//! pipeline's own cores (a real collector runs elsewhere). So the receiver
//! decodes the OTLP messages through a schema of its own ([`wire`]) with just
//! the fields it counts: each span's trace id, span id, parent and name, and
//! the resource's `service.name`. Everything else, attributes included, is
//! skipped by its length prefix, as protobuf decoders skip fields they do not
//! know. The framing of the whole request is still checked: a truncated or
//! malformed export is rejected (400) and counted, as a real backend would,
//! and so is a span without a 16-byte trace id and an 8-byte span id.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use actix_web::http::header;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

use crate::receiver::Running;

/// The subset of the OTLP trace schema the receiver reads. Field numbers are
/// those of `opentelemetry/proto/{collector/trace,trace,resource,common}/v1`;
/// fields left out are skipped when decoding.
mod wire {
    use bytes::Bytes;

    /// `ExportTraceServiceRequest`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }

    /// `AnyValue` with only its `string_value` member.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(string, optional, tag = "1")]
        pub string_value: Option<String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
    }

    /// A span's identity. The ids are slices of the request body, not copies.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(bytes = "bytes", tag = "1")]
        pub trace_id: Bytes,
        #[prost(bytes = "bytes", tag = "2")]
        pub span_id: Bytes,
        #[prost(bytes = "bytes", tag = "4")]
        pub parent_span_id: Bytes,
        #[prost(bytes = "bytes", tag = "5")]
        pub name: Bytes,
    }
}

/// What arrived so far.
#[derive(Debug, Default, Clone)]
pub struct SinkCounts {
    /// `POST /v1/traces` requests decoded.
    pub export_requests: u64,
    /// Requests that did not decode, or held a span without valid ids
    /// (answered 400, their spans not counted).
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

    fn add(&mut self, request: &wire::ExportRequest) {
        self.export_requests += 1;
        for resource_spans in &request.resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| kv.value.as_ref()?.string_value.as_deref())
                .unwrap_or(crate::receiver::UNKNOWN_SERVICE);
            let mut in_resource = 0;
            for span in resource_spans.scope_spans.iter().flat_map(|s| &s.spans) {
                in_resource += 1;
                if span.parent_span_id.is_empty() {
                    self.root_spans += 1;
                }
                let trace_id = <[u8; 16]>::try_from(span.trace_id.as_ref())
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

/// Whether every span of `request` has the ids OTLP requires.
fn well_formed(request: &wire::ExportRequest) -> bool {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
        .all(|span| {
            span.trace_id.len() == 16
                && span.span_id.len() == 8
                && matches!(span.parent_span_id.len(), 0 | 8)
                && std::str::from_utf8(&span.name).is_ok()
        })
}

/// A running counting receiver on its own actix worker thread.
pub struct Sink {
    pub addr: SocketAddr,
    counts: Arc<Mutex<SinkCounts>>,
    server: Running,
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
                .app_data(web::PayloadConfig::new(crate::receiver::MAX_BODY_BYTES))
                .route("/v1/traces", web::post().to(traces))
        })
        // One worker: decoding is cheap next to what is being measured, and
        // the bench shares two cores with the pipeline.
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        Ok(Sink {
            addr,
            counts,
            server: Running::spawn(server),
        })
    }

    /// `http://{addr}`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn counts(&self) -> SinkCounts {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub async fn stop(self) {
        self.server.stop().await;
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
    let decoded = match wire::ExportRequest::decode(body) {
        Ok(export) if well_formed(&export) => Ok(export),
        Ok(_) => Err("a span with malformed ids (trace 16 bytes, span and parent 8) or a name that is not UTF-8".to_owned()),
        Err(err) => Err(err.to_string()),
    };
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
            HttpResponse::BadRequest().body(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    /// A span as an SDK exports it: name, kind, times, attributes of every
    /// kind (the receiver skips them, and must skip them correctly).
    fn span(trace: u8, parent: bool) -> Span {
        let value = |value| Some(AnyValue { value: Some(value) });
        Span {
            trace_id: vec![trace; 16],
            span_id: vec![1; 8],
            parent_span_id: if parent { vec![2; 8] } else { vec![] },
            name: "POST /chat".into(),
            kind: 2,
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            attributes: vec![
                KeyValue {
                    key: "http.route".into(),
                    value: value(any_value::Value::StringValue("/chat".repeat(40))),
                    ..Default::default()
                },
                KeyValue {
                    key: "http.response.status_code".into(),
                    value: value(any_value::Value::IntValue(200)),
                    ..Default::default()
                },
                KeyValue {
                    key: "gen_ai.request.temperature".into(),
                    value: value(any_value::Value::DoubleValue(0.2)),
                    ..Default::default()
                },
            ],
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
        let mut bad_id = export("gateway", vec![span(3, false)]);
        bad_id.resource_spans[0].scope_spans[0].spans[0].trace_id = vec![3; 5];
        let bad_id = client
            .post(&url)
            .insert_header(("content-type", "application/x-protobuf"))
            .send_body(bad_id.encode_to_vec())
            .await
            .unwrap();
        assert_eq!(bad_id.status(), 400);
        let mut truncated = export("gateway", vec![span(4, false)]).encode_to_vec();
        truncated.pop();
        let truncated = client
            .post(&url)
            .insert_header(("content-type", "application/x-protobuf"))
            .send_body(truncated)
            .await
            .unwrap();
        assert_eq!(truncated.status(), 400);
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
        assert_eq!(counts.rejected_requests, 3);
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
