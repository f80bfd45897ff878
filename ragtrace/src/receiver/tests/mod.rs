//! The receiver's tests, one file per source file, and the fixtures they
//! share: a request that sets every span field, a document written as the
//! OTLP/JSON spec writes it, and small builders that the metric and tree
//! tests use too.

mod decode;
mod model;
mod server;
mod store;

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};

use super::{SpanKind, SpanRecord, SpanStatus, StatusCode};

pub(crate) fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(v) }),
        key_strindex: 0,
    }
}

pub(crate) fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.to_string())
}

const TRACE: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];
const TRACE_HEX: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn sample_request() -> ExportTraceServiceRequest {
    use any_value::Value as V;
    let root = Span {
        trace_id: TRACE.to_vec(),
        span_id: vec![0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7],
        trace_state: "vendor=1".into(),
        parent_span_id: vec![],
        flags: 0x101,
        name: "POST /v1/chat".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: 1_000_000_000,
        end_time_unix_nano: 1_012_345_678,
        attributes: vec![
            kv("http.response.status_code", V::IntValue(200)),
            kv("flag", V::BoolValue(true)),
            kv("ratio", V::DoubleValue(0.25)),
            kv("raw", V::BytesValue(vec![0xde, 0xad, 0xbe, 0xef])),
            kv(
                "list",
                V::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(V::IntValue(1)),
                        },
                        AnyValue {
                            value: Some(s("two")),
                        },
                        AnyValue { value: None },
                    ],
                }),
            ),
            kv(
                "nested",
                V::KvlistValue(KeyValueList {
                    values: vec![
                        kv("a", V::IntValue(-7)),
                        kv(
                            "b",
                            V::KvlistValue(KeyValueList {
                                values: vec![kv("c", s("deep"))],
                            }),
                        ),
                    ],
                }),
            ),
            KeyValue {
                key: "empty".into(),
                value: None,
                key_strindex: 0,
            },
        ],
        dropped_attributes_count: 0,
        events: vec![span::Event {
            time_unix_nano: 1_005_000_000,
            name: "cache miss".into(),
            attributes: vec![kv("k", s("v"))],
            dropped_attributes_count: 0,
        }],
        dropped_events_count: 0,
        links: vec![span::Link {
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            trace_state: String::new(),
            attributes: vec![kv("link.kind", s("follows"))],
            dropped_attributes_count: 0,
            flags: 0,
        }],
        dropped_links_count: 0,
        status: Some(Status {
            message: String::new(),
            code: status::StatusCode::Ok as i32,
        }),
    };
    let child = Span {
        trace_id: TRACE.to_vec(),
        span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
        parent_span_id: root.span_id.clone(),
        name: "chat llama3".into(),
        kind: span::SpanKind::Client as i32,
        start_time_unix_nano: 1_001_000_000,
        end_time_unix_nano: 1_002_000_000,
        status: Some(Status {
            message: "upstream timed out".into(),
            code: status::StatusCode::Error as i32,
        }),
        ..Default::default()
    };
    let no_status = Span {
        trace_id: TRACE.to_vec(),
        span_id: vec![9; 8],
        parent_span_id: vec![1, 2, 3, 4, 5, 6, 7, 8],
        name: "weird".into(),
        kind: 42, // unknown kind number
        status: None,
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", s("gateway")),
                        kv("service.version", s("0.1.0")),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "tracing-actix-web".into(),
                        ..Default::default()
                    }),
                    spans: vec![root, child],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
            ResourceSpans {
                resource: None,
                scope_spans: vec![ScopeSpans {
                    scope: None,
                    spans: vec![no_status],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
        ],
    }
}

/// A document written the way the OTLP spec's JSON encoding describes
/// (and its examples/trace.json shows): camelCase names, hex ids,
/// 64-bit integers as strings, enums as integers.
const SPEC_JSON: &str = r#"{
  "resourceSpans": [{
    "resource": {"attributes": [
      {"key": "service.name", "value": {"stringValue": "retrieval"}}
    ]},
    "scopeSpans": [{
      "scope": {"name": "my.library", "version": "1.0.0"},
      "spans": [
        {
          "traceId": "5B8EFFF798038103D269B633813FC60C",
          "spanId": "EEE19B7EC3C1B174",
          "parentSpanId": "",
          "name": "POST /search",
          "startTimeUnixNano": "1544712660000000000",
          "endTimeUnixNano": "1544712661000000000",
          "kind": 2,
          "attributes": [
            {"key": "gen_ai.request.top_k", "value": {"intValue": "42"}},
            {"key": "as.number", "value": {"intValue": 7}},
            {"key": "score", "value": {"doubleValue": 0.5}},
            {"key": "ok", "value": {"boolValue": true}},
            {"key": "tags", "value": {"arrayValue": {"values": [
              {"stringValue": "a"}, {"intValue": "2"}
            ]}}},
            {"key": "map", "value": {"kvlistValue": {"values": [
              {"key": "x", "value": {"stringValue": "y"}}
            ]}}},
            {"key": "blob", "value": {"bytesValue": "3q2+7w=="}}
          ],
          "events": [{"timeUnixNano": "1544712660500000000", "name": "ev",
                      "attributes": [{"key": "n", "value": {"intValue": "1"}}]}],
          "links": [{"traceId": "5b8efff798038103d269b633813fc60c",
                     "spanId": "0000000000000001", "attributes": []}],
          "status": {"code": 2, "message": "boom"},
          "someFutureField": {"ignored": true}
        },
        {
          "traceId": "5b8efff798038103d269b633813fc60c",
          "spanId": "0000000000000002",
          "parentSpanId": "eee19b7ec3c1b174",
          "name": "embed",
          "startTimeUnixNano": 1544712660100000000,
          "endTimeUnixNano": 1544712660200000000,
          "kind": 3
        }
      ]
    }]
  }]
}"#;

pub(crate) fn rec(trace: &str, id: &str, parent: Option<&str>) -> SpanRecord {
    SpanRecord {
        trace_id: trace.to_string(),
        span_id: id.to_string(),
        parent_span_id: parent.map(str::to_string),
        name: format!("span {id}"),
        kind: SpanKind::Internal,
        service_name: "svc".into(),
        resource: BTreeMap::new(),
        scope_name: String::new(),
        start_unix_nanos: 0,
        end_unix_nanos: 0,
        status: SpanStatus {
            code: StatusCode::Unset,
            message: String::new(),
        },
        attributes: BTreeMap::new(),
        events: vec![],
        links: vec![],
        trace_state: String::new(),
    }
}
