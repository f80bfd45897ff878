use std::collections::BTreeMap;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::{Value, json};

use super::{SPEC_JSON, TRACE_HEX, sample_request};
use crate::receiver::{
    DecodeError, EventRecord, SpanKind, StatusCode, UNKNOWN_SERVICE, decode_json, decode_protobuf,
};

#[test]
fn protobuf_round_trip_maps_every_field() {
    let body = sample_request().encode_to_vec();
    let spans = decode_protobuf(&body).unwrap();
    assert_eq!(spans.len(), 3);

    let root = &spans[0];
    assert_eq!(root.trace_id, TRACE_HEX);
    assert_eq!(root.span_id, "00f067aa0ba902b7");
    assert_eq!(root.parent_span_id, None);
    assert!(root.is_root());
    assert_eq!(root.name, "POST /v1/chat");
    assert_eq!(root.kind, SpanKind::Server);
    assert_eq!(root.kind.as_str(), "SERVER");
    assert_eq!(root.service_name, "gateway");
    assert_eq!(root.resource["service.version"], json!("0.1.0"));
    assert_eq!(root.scope_name, "tracing-actix-web");
    assert_eq!(root.start_unix_nanos, 1_000_000_000);
    assert_eq!(root.end_unix_nanos, 1_012_345_678);
    assert_eq!(root.duration(), Duration::from_nanos(12_345_678));
    assert_eq!(root.status.code, StatusCode::Ok);
    assert!(!root.is_error());
    assert_eq!(root.trace_state, "vendor=1");
    assert_eq!(root.attributes["http.response.status_code"], json!(200));
    assert!(root.attributes["http.response.status_code"].is_i64());
    assert_eq!(root.attr_i64("http.response.status_code"), Some(200));
    assert_eq!(root.attributes["flag"], json!(true));
    assert_eq!(root.attributes["ratio"], json!(0.25));
    assert_eq!(root.attributes["raw"], json!("deadbeef"));
    assert_eq!(root.attributes["list"], json!([1, "two", null]));
    assert_eq!(
        root.attributes["nested"],
        json!({"a": -7, "b": {"c": "deep"}})
    );
    assert_eq!(root.attributes["empty"], Value::Null);
    assert_eq!(root.attr_str("flag"), None);
    assert_eq!(root.attr_str("missing"), None);
    assert_eq!(
        root.events,
        vec![EventRecord {
            name: "cache miss".into(),
            time_unix_nanos: 1_005_000_000,
            attributes: BTreeMap::from([("k".to_string(), json!("v"))]),
        }]
    );
    assert_eq!(root.links.len(), 1);
    assert_eq!(root.links[0].trace_id, "ab".repeat(16));
    assert_eq!(root.links[0].span_id, "cd".repeat(8));
    assert_eq!(root.links[0].attributes["link.kind"], json!("follows"));

    let child = &spans[1];
    assert_eq!(child.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
    assert_eq!(child.span_id, "0102030405060708");
    assert_eq!(child.kind, SpanKind::Client);
    assert_eq!(child.status.code, StatusCode::Error);
    assert_eq!(child.status.message, "upstream timed out");
    assert!(child.is_error());
    assert_eq!(child.service_name, "gateway");

    let other = &spans[2];
    assert_eq!(other.service_name, UNKNOWN_SERVICE);
    assert!(other.resource.is_empty());
    assert_eq!(other.scope_name, "");
    assert_eq!(other.kind, SpanKind::Unspecified);
    assert_eq!(other.status.code, StatusCode::Unset);
    assert_eq!(other.duration(), Duration::ZERO);

    // Serialises with readable enums.
    let j = serde_json::to_value(root).unwrap();
    assert_eq!(j["kind"], json!("SERVER"));
    assert_eq!(j["status"]["code"], json!("OK"));
    assert_eq!(j["parent_span_id"], Value::Null);
}

#[test]
fn garbage_protobuf_is_an_error() {
    let err = decode_protobuf(b"\xff\xff\xff\xff not protobuf").unwrap_err();
    assert!(matches!(err, DecodeError::Protobuf(_)));
    assert!(err.to_string().contains("protobuf"), "{err}");
}

#[test]
fn json_as_the_spec_writes_it() {
    let spans = decode_json(SPEC_JSON.as_bytes()).unwrap();
    assert_eq!(spans.len(), 2);
    let a = &spans[0];
    assert_eq!(a.trace_id, "5b8efff798038103d269b633813fc60c");
    assert_eq!(a.span_id, "eee19b7ec3c1b174");
    assert_eq!(a.parent_span_id, None);
    assert_eq!(a.service_name, "retrieval");
    assert_eq!(a.scope_name, "my.library");
    assert_eq!(a.kind, SpanKind::Server);
    assert_eq!(a.start_unix_nanos, 1_544_712_660_000_000_000);
    assert_eq!(a.duration(), Duration::from_secs(1));
    assert_eq!(a.attributes["gen_ai.request.top_k"], json!(42));
    assert_eq!(a.attr_i64("gen_ai.request.top_k"), Some(42));
    assert_eq!(a.attributes["as.number"], json!(7));
    assert_eq!(a.attributes["score"], json!(0.5));
    assert_eq!(a.attributes["ok"], json!(true));
    assert_eq!(a.attributes["tags"], json!(["a", 2]));
    assert_eq!(a.attributes["map"], json!({"x": "y"}));
    assert_eq!(a.attributes["blob"], json!("deadbeef"));
    assert_eq!(a.events[0].name, "ev");
    assert_eq!(a.events[0].time_unix_nanos, 1_544_712_660_500_000_000);
    assert_eq!(a.events[0].attributes["n"], json!(1));
    assert_eq!(a.links[0].span_id, "0000000000000001");
    assert_eq!(a.status.code, StatusCode::Error);
    assert_eq!(a.status.message, "boom");
    let b = &spans[1];
    assert_eq!(b.parent_span_id.as_deref(), Some("eee19b7ec3c1b174"));
    assert_eq!(b.kind, SpanKind::Client);
    assert_eq!(b.status.code, StatusCode::Unset);
    assert_eq!(b.duration(), Duration::from_millis(100));
}

#[test]
fn json_edge_cases_the_crate_alone_rejects() {
    // Each of these is valid OTLP/JSON (or protobuf JSON) that
    // opentelemetry-proto's serde derive rejects without normalisation.
    let cases: &[(&str, &str)] = &[
        ("empty request", r#"{}"#),
        (
            "null field",
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"traceId":"01010101010101010101010101010101","spanId":"0202020202020202",
             "parentSpanId":null,"name":"n","kind":1}]}]}]}"#,
        ),
        (
            "enum names",
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"traceId":"01010101010101010101010101010101","spanId":"0202020202020202",
             "name":"n","kind":"SPAN_KIND_CLIENT","status":{"code":"STATUS_CODE_ERROR"}}]}]}]}"#,
        ),
        (
            "empty AnyValue and empty lists",
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[
            {"traceId":"01010101010101010101010101010101","spanId":"0202020202020202",
             "name":"n","attributes":[{"key":"e","value":{}},
               {"key":"arr","value":{"arrayValue":{"values":[{}, {"boolValue":false}]}}},
               {"key":"noarr","value":{"arrayValue":{}}},
               {"key":"nokv","value":{"kvlistValue":{}}},
               {"key":"nan","value":{"doubleValue":"NaN"}}]}]}]}]}"#,
        ),
    ];
    for (what, doc) in cases {
        let raw: Result<ExportTraceServiceRequest, _> = serde_json::from_str(doc);
        assert!(
            raw.is_err(),
            "{what}: the crate now accepts it; drop the workaround?"
        );
        let spans = decode_json(doc.as_bytes()).unwrap_or_else(|e| panic!("{what}: {e}"));
        if let Some(sp) = spans.first() {
            assert_eq!(sp.trace_id, "01".repeat(16), "{what}");
            assert_eq!(sp.parent_span_id, None, "{what}");
        }
        match *what {
            "empty request" => assert!(spans.is_empty()),
            "enum names" => {
                assert_eq!(spans[0].kind, SpanKind::Client);
                assert_eq!(spans[0].status.code, StatusCode::Error);
            }
            "empty AnyValue and empty lists" => {
                let a = &spans[0].attributes;
                assert_eq!(a["e"], Value::Null);
                assert_eq!(a["arr"], json!([false]));
                assert_eq!(a["noarr"], json!([]));
                assert_eq!(a["nokv"], json!({}));
                assert_eq!(a["nan"], json!("NaN"));
            }
            _ => assert_eq!(spans.len(), 1, "{what}"),
        }
    }
}

#[test]
fn json_serialised_by_the_crate_round_trips() {
    // What opentelemetry-otlp's http-json exporter sends is this crate's
    // serde serialisation of the request.
    let req = sample_request();
    let body = serde_json::to_vec(&req).unwrap();
    let from_json = decode_json(&body).unwrap();
    let from_pb = decode_protobuf(&req.encode_to_vec()).unwrap();
    // The empty AnyValue array element is the one documented difference.
    let mut expected = from_pb.clone();
    expected[0]
        .attributes
        .insert("list".into(), json!([1, "two"]));
    assert_eq!(from_json, expected);
}

#[test]
fn bad_json_is_an_error() {
    for doc in [
        "not json",
        r#"{"resourceSpans": 5}"#,
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#,
    ] {
        let err = decode_json(doc.as_bytes()).unwrap_err();
        assert!(matches!(err, DecodeError::Json(_)), "{doc}");
    }
}
