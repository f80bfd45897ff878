//! Request bodies of `POST /v1/traces` into [`SpanRecord`]s: protobuf with
//! prost, OTLP/JSON with `opentelemetry-proto`'s serde support after a
//! normalisation pass (see [`decode_json`]). The metric decoder
//! ([`super::metrics`]) reuses the attribute conversion and the
//! normalisation helpers.

use std::collections::BTreeMap;
use std::fmt;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{span, status};
use prost::Message;
use serde_json::Value;

use super::model::{
    EventRecord, LinkRecord, SpanKind, SpanRecord, SpanStatus, StatusCode, UNKNOWN_SERVICE,
};

/// Why a request body could not be decoded.
#[derive(Debug)]
pub enum DecodeError {
    Protobuf(prost::DecodeError),
    Json(serde_json::Error),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Protobuf(e) => write!(f, "invalid OTLP protobuf: {e}"),
            DecodeError::Json(e) => write!(f, "invalid OTLP/JSON: {e}"),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::Protobuf(e) => Some(e),
            DecodeError::Json(e) => Some(e),
        }
    }
}

/// Decodes a protobuf `ExportTraceServiceRequest`.
pub fn decode_protobuf(body: &[u8]) -> Result<Vec<SpanRecord>, DecodeError> {
    let req = ExportTraceServiceRequest::decode(body).map_err(DecodeError::Protobuf)?;
    Ok(spans_from_request(req))
}

/// Decodes an OTLP/JSON `ExportTraceServiceRequest`.
///
/// Accepts what the OTLP spec's JSON encoding defines: lowerCamelCase field
/// names, hex trace/span ids (either case), 64-bit integers as strings or
/// numbers, enums as integers. Before handing the document to
/// `opentelemetry-proto`'s serde support it is normalised so that these are
/// accepted too (that support alone rejects them):
///
/// * a missing `resourceSpans`, `values` (of `arrayValue`/`kvlistValue`) or
///   `key`, and fields set to `null` (protobuf JSON's "default value");
/// * enum values given by name (`"SPAN_KIND_SERVER"`, `"STATUS_CODE_ERROR"`),
///   which the protobuf JSON mapping allows;
/// * an empty `AnyValue` (`{}`): an attribute with it gets `null`, an array
///   element with it is dropped;
/// * `"NaN"`, `"Infinity"`, `"-Infinity"` as `doubleValue` (kept as those
///   strings, since JSON has no such numbers).
///
/// Unknown fields are ignored, as the spec requires.
pub fn decode_json(body: &[u8]) -> Result<Vec<SpanRecord>, DecodeError> {
    let mut doc: Value = serde_json::from_slice(body).map_err(DecodeError::Json)?;
    normalize_request(&mut doc);
    let req: ExportTraceServiceRequest = serde_json::from_value(doc).map_err(DecodeError::Json)?;
    Ok(spans_from_request(req))
}

/// A resource's attributes, and its `service.name` (or `unknown_service`).
pub(super) fn resource_and_service(
    resource: Option<opentelemetry_proto::tonic::resource::v1::Resource>,
) -> (BTreeMap<String, Value>, String) {
    let resource = resource
        .map(|r| attributes_to_map(r.attributes))
        .unwrap_or_default();
    let service_name = resource
        .get("service.name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or(UNKNOWN_SERVICE)
        .to_owned();
    (resource, service_name)
}

/// Flattens a request into span records.
pub fn spans_from_request(req: ExportTraceServiceRequest) -> Vec<SpanRecord> {
    let mut out = Vec::new();
    for rs in req.resource_spans {
        let (resource, service_name) = resource_and_service(rs.resource);
        for ss in rs.scope_spans {
            let scope_name = ss.scope.map(|s| s.name).unwrap_or_default();
            for s in ss.spans {
                let status = s.status.unwrap_or_default();
                out.push(SpanRecord {
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: (!s.parent_span_id.is_empty()).then(|| hex(&s.parent_span_id)),
                    name: s.name,
                    kind: SpanKind::from_otlp(s.kind),
                    service_name: service_name.clone(),
                    resource: resource.clone(),
                    scope_name: scope_name.clone(),
                    start_unix_nanos: s.start_time_unix_nano,
                    end_unix_nanos: s.end_time_unix_nano,
                    status: SpanStatus {
                        code: StatusCode::from_otlp(status.code),
                        message: status.message,
                    },
                    attributes: attributes_to_map(s.attributes),
                    events: s
                        .events
                        .into_iter()
                        .map(|e| EventRecord {
                            name: e.name,
                            time_unix_nanos: e.time_unix_nano,
                            attributes: attributes_to_map(e.attributes),
                        })
                        .collect(),
                    links: s
                        .links
                        .into_iter()
                        .map(|l| LinkRecord {
                            trace_id: hex(&l.trace_id),
                            span_id: hex(&l.span_id),
                            attributes: attributes_to_map(l.attributes),
                        })
                        .collect(),
                    trace_state: s.trace_state,
                });
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

pub(super) fn attributes_to_map(kvs: Vec<KeyValue>) -> BTreeMap<String, Value> {
    kvs.into_iter()
        .map(|kv| (kv.key, any_to_json(kv.value)))
        .collect()
}

fn any_to_json(v: Option<AnyValue>) -> Value {
    use any_value::Value as V;
    match v.and_then(|v| v.value) {
        None => Value::Null,
        Some(V::StringValue(s)) => Value::String(s),
        Some(V::BoolValue(b)) => Value::Bool(b),
        Some(V::IntValue(i)) => Value::from(i),
        // NaN and infinities have no JSON number: keep their spelling.
        Some(V::DoubleValue(d)) if !d.is_finite() => Value::String(
            if d.is_nan() {
                "NaN"
            } else if d > 0.0 {
                "Infinity"
            } else {
                "-Infinity"
            }
            .to_string(),
        ),
        Some(V::DoubleValue(d)) => Value::from(d),
        Some(V::ArrayValue(a)) => {
            Value::Array(a.values.into_iter().map(|v| any_to_json(Some(v))).collect())
        }
        Some(V::KvlistValue(kv)) => Value::Object(
            kv.values
                .into_iter()
                .map(|kv| (kv.key, any_to_json(kv.value)))
                .collect(),
        ),
        Some(V::BytesValue(b)) => Value::String(hex(&b)),
        // Only used by the profiles signal (an index into a string table).
        Some(V::StringValueStrindex(_)) => Value::Null,
    }
}

// --- OTLP/JSON normalisation ------------------------------------------------

fn normalize_request(doc: &mut Value) {
    strip_nulls(doc);
    let Some(root) = doc.as_object_mut() else {
        return; // not an object: let serde report the error
    };
    let rss = root
        .entry("resourceSpans")
        .or_insert_with(|| Value::Array(Vec::new()));
    for rs in as_array_mut(Some(rss)) {
        if let Some(res) = rs.get_mut("resource") {
            normalize_attributes(res.get_mut("attributes"));
        }
        for ss in as_array_mut(rs.get_mut("scopeSpans")) {
            if let Some(scope) = ss.get_mut("scope") {
                normalize_attributes(scope.get_mut("attributes"));
            }
            for sp in as_array_mut(ss.get_mut("spans")) {
                normalize_span(sp);
            }
        }
    }
}

fn normalize_span(sp: &mut Value) {
    let Some(obj) = sp.as_object_mut() else {
        return;
    };
    if let Some(kind) = obj.get_mut("kind") {
        enum_by_name(kind, |name| {
            span::SpanKind::from_str_name(name).map(|k| k as i32)
        });
    }
    if let Some(code) = obj.get_mut("status").and_then(|s| s.get_mut("code")) {
        enum_by_name(code, |name| {
            status::StatusCode::from_str_name(name).map(|c| c as i32)
        });
    }
    normalize_attributes(obj.get_mut("attributes"));
    for ev in as_array_mut(obj.get_mut("events")) {
        normalize_attributes(ev.get_mut("attributes"));
    }
    for link in as_array_mut(obj.get_mut("links")) {
        normalize_attributes(link.get_mut("attributes"));
    }
}

pub(super) fn enum_by_name(v: &mut Value, by_name: impl Fn(&str) -> Option<i32>) {
    if let Value::String(s) = v {
        let n = by_name(s).or_else(|| s.parse().ok()).unwrap_or(0);
        *v = Value::from(n);
    }
}

/// Normalises a `repeated KeyValue` list.
pub(super) fn normalize_attributes(list: Option<&mut Value>) {
    for kv in as_array_mut(list) {
        let Some(obj) = kv.as_object_mut() else {
            continue;
        };
        obj.entry("key")
            .or_insert_with(|| Value::String(String::new()));
        let empty = match obj.get_mut("value") {
            Some(v) => !normalize_any_value(v),
            None => false,
        };
        if empty {
            obj.remove("value");
        }
    }
}

/// Normalises an `AnyValue`; returns false if it holds no value.
fn normalize_any_value(v: &mut Value) -> bool {
    let Some(obj) = v.as_object_mut() else {
        return true; // not an object: let serde report the error
    };
    if let Some(d) = obj.get("doubleValue").and_then(Value::as_str)
        && matches!(d, "NaN" | "Infinity" | "-Infinity")
    {
        let s = Value::String(d.to_string());
        obj.remove("doubleValue");
        obj.insert("stringValue".to_string(), s);
    }
    if let Some(a) = obj.get_mut("arrayValue").and_then(Value::as_object_mut) {
        let values = a
            .entry("values")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = values {
            items.retain_mut(normalize_any_value);
        }
    }
    if let Some(k) = obj.get_mut("kvlistValue").and_then(Value::as_object_mut) {
        let values = k
            .entry("values")
            .or_insert_with(|| Value::Array(Vec::new()));
        normalize_attributes(Some(values));
    }
    const KNOWN: [&str; 7] = [
        "stringValue",
        "boolValue",
        "intValue",
        "doubleValue",
        "arrayValue",
        "kvlistValue",
        "bytesValue",
    ];
    KNOWN.iter().any(|k| obj.contains_key(*k))
}

pub(super) fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

pub(super) fn as_array_mut(v: Option<&mut Value>) -> impl Iterator<Item = &mut Value> {
    v.and_then(Value::as_array_mut).into_iter().flatten()
}
