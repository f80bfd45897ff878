//! OTLP/protobuf encoding of finished spans, straight from the SDK's
//! [`SpanData`] into bytes.
//!
//! This module writes the `ExportTraceServiceRequest` message field by
//! field, into one buffer per batch. Nothing is allocated per span; each
//! nested message is written in place behind a one-byte length slot, which is
//! widened (the message moved right by a byte or two) when it turns out to be
//! 128 bytes or longer, as most spans are: one `memmove` of the message
//! instead of computing every length before writing it, as prost does. The
//! result decodes to exactly what the SDK's conversion produces (the unit
//! tests decode both with `opentelemetry-proto` and compare them), so a
//! collector cannot tell the difference.
//!
//! The schema is `opentelemetry/proto/collector/trace/v1/trace_service.proto`
//! and the messages it includes (`trace/v1`, `common/v1`, `resource/v1`);
//! field numbers below are those of the `.proto` files.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

// Wire types.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// `SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`: the exporter knows
/// whether the parent is remote (always, for SDK spans).
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
/// `SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`.
const FLAG_IS_REMOTE: u32 = 0x200;

/// Encodes `ExportTraceServiceRequest`s for one process's resource.
#[derive(Debug, Default)]
pub struct TraceEncoder {
    /// The `Resource` message of this process, encoded once.
    resource: Vec<u8>,
    resource_schema_url: String,
    /// The size of the last request, to allocate the next one's buffer once.
    last_len: AtomicUsize,
}

impl TraceEncoder {
    pub fn new(resource: &Resource) -> Self {
        let mut encoder = Self::default();
        encoder.set_resource(resource);
        encoder
    }

    /// The resource every batch is exported under (the SDK hands it to the
    /// exporter once the tracer provider is built).
    pub fn set_resource(&mut self, resource: &Resource) {
        let mut w = Writer(Vec::new());
        for (key, value) in resource.iter() {
            w.message(1, |w| w.key_value(key.as_str(), value));
        }
        self.resource = w.0;
        self.resource_schema_url = resource.schema_url().unwrap_or_default().to_owned();
    }

    /// `spans` as one `ExportTraceServiceRequest`: one `ResourceSpans`, with
    /// one `ScopeSpans` per instrumentation scope (in order of first
    /// appearance). One allocation, sized after the previous request.
    pub fn encode(&self, spans: &[SpanData]) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(
            self.last_len.load(Ordering::Relaxed) + 1024,
        ));
        if !spans.is_empty() {
            // ExportTraceServiceRequest.resource_spans = 1
            w.message(1, |w| {
                // ResourceSpans.resource = 1
                w.message(1, |w| w.0.extend_from_slice(&self.resource));
                for scope in scopes(spans) {
                    // ResourceSpans.scope_spans = 2
                    w.message(2, |w| {
                        // ScopeSpans.scope = 1
                        w.message(1, |w| w.scope(scope));
                        for span in spans.iter().filter(|s| &s.instrumentation_scope == scope) {
                            // ScopeSpans.spans = 2
                            w.message(2, |w| w.span(span));
                        }
                        // ScopeSpans.schema_url = 3
                        w.string(3, scope.schema_url().unwrap_or_default());
                    });
                }
                // ResourceSpans.schema_url = 3
                w.string(3, &self.resource_schema_url);
            });
        }
        self.last_len.store(w.0.len(), Ordering::Relaxed);
        w.0
    }
}

/// The distinct scopes of `spans`, in order of first appearance. A service
/// has one tracer, so this is nearly always a single comparison per span.
fn scopes(spans: &[SpanData]) -> Vec<&InstrumentationScope> {
    let mut scopes: Vec<&InstrumentationScope> = Vec::with_capacity(1);
    for span in spans {
        let scope = &span.instrumentation_scope;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    scopes
}

fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn kind(kind: &SpanKind) -> u64 {
    // Span.SpanKind: UNSPECIFIED 0, INTERNAL 1, SERVER 2, CLIENT 3,
    // PRODUCER 4, CONSUMER 5.
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn flags(context: &SpanContext, parent_is_remote: bool) -> u32 {
    let mut flags = u32::from(context.trace_flags().to_u8()) | FLAG_HAS_IS_REMOTE;
    if parent_is_remote {
        flags |= FLAG_IS_REMOTE;
    }
    flags
}

/// Protobuf primitives over a byte buffer. Proto3 rules: scalar fields with
/// their default value are left out (as prost does); `oneof` members and
/// messages are always written.
struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn tag(&mut self, field: u32, wire_type: u32) {
        self.varint(u64::from((field << 3) | wire_type));
    }

    fn uint(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.tag(field, VARINT);
            self.varint(value);
        }
    }

    fn fixed64(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.tag(field, FIXED64);
            self.0.extend_from_slice(&value.to_le_bytes());
        }
    }

    fn fixed32(&mut self, field: u32, value: u32) {
        if value != 0 {
            self.tag(field, FIXED32);
            self.0.extend_from_slice(&value.to_le_bytes());
        }
    }

    fn bytes(&mut self, field: u32, value: &[u8]) {
        if !value.is_empty() {
            self.bytes_always(field, value);
        }
    }

    fn bytes_always(&mut self, field: u32, value: &[u8]) {
        self.tag(field, LEN);
        self.varint(value.len() as u64);
        self.0.extend_from_slice(value);
    }

    fn string(&mut self, field: u32, value: &str) {
        self.bytes(field, value.as_bytes());
    }

    /// A nested message: its length is known only once it is written, so it
    /// is written behind a one-byte length slot, and the slot is widened
    /// (shifting the message right) when the length needs more than 7 bits.
    fn message(&mut self, field: u32, body: impl FnOnce(&mut Self)) {
        self.tag(field, LEN);
        let slot = self.0.len();
        self.0.push(0);
        body(self);
        let len = self.0.len() - slot - 1;
        if len < 0x80 {
            self.0[slot] = len as u8;
        } else {
            let mut prefix = Writer(Vec::with_capacity(10));
            prefix.varint(len as u64);
            self.0.splice(slot..=slot, prefix.0);
        }
    }

    fn key_value(&mut self, key: &str, value: &Value) {
        // KeyValue.key = 1, KeyValue.value = 2
        self.string(1, key);
        self.message(2, |w| w.any_value(value));
    }

    fn attributes(&mut self, field: u32, attributes: &[KeyValue]) {
        for kv in attributes {
            self.message(field, |w| w.key_value(kv.key.as_str(), &kv.value));
        }
    }

    /// `AnyValue`: a oneof, so even a default value (`0`, `""`, `false`)
    /// is written.
    fn any_value(&mut self, value: &Value) {
        match value {
            // string_value = 1
            Value::String(s) => self.bytes_always(1, s.as_str().as_bytes()),
            // bool_value = 2
            Value::Bool(b) => {
                self.tag(2, VARINT);
                self.varint(u64::from(*b));
            }
            // int_value = 3 (int64: two's complement as a varint)
            Value::I64(i) => {
                self.tag(3, VARINT);
                self.varint(*i as u64);
            }
            // double_value = 4
            Value::F64(f) => {
                self.tag(4, FIXED64);
                self.0.extend_from_slice(&f.to_le_bytes());
            }
            // array_value = 5: ArrayValue.values = 1
            Value::Array(array) => self.message(5, |w| match array {
                Array::Bool(values) => values
                    .iter()
                    .for_each(|v| w.message(1, |w| w.any_value(&Value::Bool(*v)))),
                Array::I64(values) => values
                    .iter()
                    .for_each(|v| w.message(1, |w| w.any_value(&Value::I64(*v)))),
                Array::F64(values) => values
                    .iter()
                    .for_each(|v| w.message(1, |w| w.any_value(&Value::F64(*v)))),
                Array::String(values) => values
                    .iter()
                    .for_each(|v| w.message(1, |w| w.bytes_always(1, v.as_str().as_bytes()))),
                // A kind of array added by a later API version: its text.
                other => w.message(1, |w| w.bytes_always(1, other.to_string().as_bytes())),
            }),
            // A kind of value added by a later API version: its text.
            other => self.bytes_always(1, other.as_str().as_bytes()),
        }
    }

    fn scope(&mut self, scope: &InstrumentationScope) {
        // InstrumentationScope: name = 1, version = 2, attributes = 3
        self.string(1, scope.name());
        self.string(2, scope.version().unwrap_or_default());
        for kv in scope.attributes() {
            self.message(3, |w| w.key_value(kv.key.as_str(), &kv.value));
        }
    }

    fn span(&mut self, span: &SpanData) {
        let context = &span.span_context;
        // Span: trace_id = 1, span_id = 2, trace_state = 3, parent_span_id = 4
        self.bytes(1, &context.trace_id().to_bytes());
        self.bytes(2, &context.span_id().to_bytes());
        let trace_state = context.trace_state().header();
        self.string(3, &trace_state);
        if span.parent_span_id != opentelemetry::trace::SpanId::INVALID {
            self.bytes(4, &span.parent_span_id.to_bytes());
        }
        // flags = 16, name = 5, kind = 6, times = 7 and 8
        self.fixed32(16, flags(context, span.parent_span_is_remote));
        self.string(5, &span.name);
        self.uint(6, kind(&span.span_kind));
        self.fixed64(7, unix_nanos(span.start_time));
        self.fixed64(8, unix_nanos(span.end_time));
        // attributes = 9, dropped_attributes_count = 10
        self.attributes(9, &span.attributes);
        self.uint(10, u64::from(span.dropped_attributes_count));
        // events = 11: Event.time_unix_nano = 1, name = 2, attributes = 3,
        // dropped_attributes_count = 4
        for event in span.events.iter() {
            self.message(11, |w| {
                w.fixed64(1, unix_nanos(event.timestamp));
                w.string(2, &event.name);
                w.attributes(3, &event.attributes);
                w.uint(4, u64::from(event.dropped_attributes_count));
            });
        }
        // dropped_events_count = 12
        self.uint(12, u64::from(span.events.dropped_count));
        // links = 13: Link.trace_id = 1, span_id = 2, trace_state = 3,
        // attributes = 4, dropped_attributes_count = 5, flags = 6
        for link in span.links.iter() {
            let linked = &link.span_context;
            self.message(13, |w| {
                w.bytes(1, &linked.trace_id().to_bytes());
                w.bytes(2, &linked.span_id().to_bytes());
                w.string(3, &linked.trace_state().header());
                w.attributes(4, &link.attributes);
                w.uint(5, u64::from(link.dropped_attributes_count));
                w.fixed32(6, flags(linked, linked.is_remote()));
            });
        }
        // dropped_links_count = 14
        self.uint(14, u64::from(span.links.dropped_count));
        // status = 15 (always present, as the SDK's conversion writes it):
        // Status.message = 2, code = 3 (UNSET 0, OK 1, ERROR 2)
        self.message(15, |w| match &span.status {
            Status::Unset => {}
            Status::Ok => w.uint(3, 1),
            Status::Error { description } => {
                w.string(2, description);
                w.uint(3, 2);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::Duration;

    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
    use prost::Message;

    use super::*;

    fn context(trace: u128, span: u64, remote: bool, state: &str) -> SpanContext {
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            remote,
            state.parse::<TraceState>().unwrap(),
        )
    }

    fn long_text(len: usize) -> String {
        "é-".repeat(len / 3 + 1)
    }

    fn span(i: u64, scope: &InstrumentationScope) -> SpanData {
        let start = UNIX_EPOCH + Duration::from_nanos(1_764_000_000_123_456_789 + i);
        let mut events = SpanEvents::default();
        let mut links = SpanLinks::default();
        if i.is_multiple_of(2) {
            events.events.push(opentelemetry::trace::Event::new(
                "exception",
                start + Duration::from_micros(5),
                vec![
                    KeyValue::new("exception.type", "timeout"),
                    KeyValue::new("exception.message", long_text(300)),
                ],
                1,
            ));
            events.dropped_count = 2;
            links.links.push(opentelemetry::trace::Link::new(
                context(7, 9, true, "vendor=x"),
                vec![KeyValue::new("link.reason", "untrusted")],
                3,
            ));
            links.dropped_count = 1;
        }
        SpanData {
            span_context: context(0xabcdef + u128::from(i), 100 + i, false, "ro=1,co=2"),
            parent_span_id: if i == 0 {
                SpanId::INVALID
            } else {
                SpanId::from(i)
            },
            parent_span_is_remote: i == 1,
            span_kind: [
                SpanKind::Server,
                SpanKind::Client,
                SpanKind::Internal,
                SpanKind::Producer,
                SpanKind::Consumer,
            ][i as usize % 5]
                .clone(),
            name: Cow::Owned(format!("POST /chat {i}")),
            start_time: start,
            end_time: start + Duration::from_millis(3),
            attributes: vec![
                KeyValue::new("http.request.method", "POST"),
                KeyValue::new("http.response.status_code", 200_i64),
                KeyValue::new("negative", -42_i64),
                KeyValue::new("zero", 0_i64),
                KeyValue::new("empty", ""),
                KeyValue::new("falsy", false),
                KeyValue::new("truthy", true),
                KeyValue::new("gen_ai.request.temperature", 0.25_f64),
                KeyValue::new("nought", 0.0_f64),
                KeyValue::new("long", long_text(1000)),
                KeyValue::new(
                    "confident.trace.tags",
                    Value::Array(Array::String(vec![
                        StringValue::from("a"),
                        StringValue::from(""),
                    ])),
                ),
                KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
                KeyValue::new("ints", Value::Array(Array::I64(vec![0, -1, 1 << 40]))),
                KeyValue::new("floats", Value::Array(Array::F64(vec![1.5, 0.0]))),
                KeyValue::new("none", Value::Array(Array::String(vec![]))),
            ],
            dropped_attributes_count: u32::try_from(i).unwrap(),
            events,
            links,
            status: match i % 3 {
                0 => Status::Unset,
                1 => Status::Ok,
                _ => Status::error("upstream failed"),
            },
            instrumentation_scope: scope.clone(),
        }
    }

    fn resource() -> Resource {
        Resource::builder_empty()
            .with_service_name("gateway")
            .with_attribute(KeyValue::new("service.version", "0.1.0"))
            .with_attribute(KeyValue::new("deployment.environment.name", "test"))
            .with_schema_url(
                Vec::<KeyValue>::new(),
                "https://opentelemetry.io/schemas/1.30.0",
            )
            .build()
    }

    /// What `opentelemetry-otlp` would have sent for the same spans.
    fn sdk_request(resource: &Resource, spans: Vec<SpanData>) -> ExportTraceServiceRequest {
        let resource = ResourceAttributesWithSchema::from(resource);
        ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(spans, &resource),
        }
    }

    /// Scope order is not part of the message's meaning (the SDK groups
    /// through a hash map); attribute order within a resource neither.
    fn normalized(mut request: ExportTraceServiceRequest) -> ExportTraceServiceRequest {
        for rs in &mut request.resource_spans {
            rs.scope_spans
                .sort_by_key(|s| s.scope.as_ref().map(|s| s.name.clone()));
            if let Some(resource) = &mut rs.resource {
                resource.attributes.sort_by(|a, b| a.key.cmp(&b.key));
            }
        }
        request
    }

    #[test]
    fn decodes_to_exactly_what_the_sdks_conversion_produces() {
        let scope = InstrumentationScope::builder("gateway")
            .with_version("0.1.0")
            .with_schema_url("https://opentelemetry.io/schemas/1.30.0")
            .with_attributes([KeyValue::new("scope.attr", 1_i64)])
            .build();
        let other = InstrumentationScope::builder("other").build();
        let mut spans: Vec<SpanData> = (0..40).map(|i| span(i, &scope)).collect();
        spans.extend((40..43).map(|i| span(i, &other)));
        let resource = resource();

        let encoder = TraceEncoder::new(&resource);
        let ours = ExportTraceServiceRequest::decode(encoder.encode(&spans).as_slice()).unwrap();
        let theirs = sdk_request(&resource, spans.clone());
        assert_eq!(normalized(ours), normalized(theirs));

        // A second, smaller batch after a large one.
        let ours =
            ExportTraceServiceRequest::decode(encoder.encode(&spans[..1]).as_slice()).unwrap();
        assert_eq!(
            normalized(ours),
            normalized(sdk_request(&resource, spans[..1].to_vec()))
        );
    }

    #[test]
    fn lengths_are_minimal_varints_at_every_size_boundary() {
        // A message whose body is 127, 128, 16383 and 16384 bytes long is
        // where a one-byte length slot must widen to two and three bytes.
        let scope = InstrumentationScope::builder("s").build();
        let resource = Resource::builder_empty().build();
        let encoder = TraceEncoder::new(&resource);
        for len in [0, 1, 100, 127, 128, 129, 16_383, 16_384, 70_000] {
            let mut one = span(3, &scope);
            one.attributes = vec![KeyValue::new("x", "y".repeat(len))];
            let bytes = encoder.encode(std::slice::from_ref(&one));
            let decoded = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
            assert_eq!(
                normalized(decoded.clone()),
                normalized(sdk_request(&resource, vec![one])),
                "attribute of {len} bytes"
            );
            // prost re-encodes with minimal varints: same length means ours
            // are minimal too.
            assert_eq!(decoded.encode_to_vec().len(), bytes.len(), "{len}");
        }
    }

    #[test]
    fn an_empty_batch_is_an_empty_request() {
        let encoder = TraceEncoder::new(&resource());
        assert!(encoder.encode(&[]).is_empty());
    }
}
