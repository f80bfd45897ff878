//! What the receiver keeps of a span: one [`SpanRecord`] per span, flattened
//! out of its resource and scope, with the OTLP enums as [`SpanKind`] and
//! [`StatusCode`] and attribute values as JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::{span, status};
use serde::Serialize;
use serde_json::Value;

/// `service.name` used when a resource does not carry one (as the SDKs do).
pub const UNKNOWN_SERVICE: &str = "unknown_service";
/// The kind of a span (OTLP `Span.SpanKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// `"INTERNAL"`, `"SERVER"`, …
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "UNSPECIFIED",
            SpanKind::Internal => "INTERNAL",
            SpanKind::Server => "SERVER",
            SpanKind::Client => "CLIENT",
            SpanKind::Producer => "PRODUCER",
            SpanKind::Consumer => "CONSUMER",
        }
    }

    /// Maps the OTLP enum number; unknown numbers become `Unspecified`.
    pub fn from_otlp(kind: i32) -> SpanKind {
        match span::SpanKind::try_from(kind) {
            Ok(span::SpanKind::Internal) => SpanKind::Internal,
            Ok(span::SpanKind::Server) => SpanKind::Server,
            Ok(span::SpanKind::Client) => SpanKind::Client,
            Ok(span::SpanKind::Producer) => SpanKind::Producer,
            Ok(span::SpanKind::Consumer) => SpanKind::Consumer,
            Ok(span::SpanKind::Unspecified) | Err(_) => SpanKind::Unspecified,
        }
    }
}

impl fmt::Display for SpanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A span's status code (OTLP `Status.StatusCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StatusCode {
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    /// `"UNSET"`, `"OK"` or `"ERROR"`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusCode::Unset => "UNSET",
            StatusCode::Ok => "OK",
            StatusCode::Error => "ERROR",
        }
    }

    /// Maps the OTLP enum number; unknown numbers become `Unset`.
    pub fn from_otlp(code: i32) -> StatusCode {
        match status::StatusCode::try_from(code) {
            Ok(status::StatusCode::Ok) => StatusCode::Ok,
            Ok(status::StatusCode::Error) => StatusCode::Error,
            Ok(status::StatusCode::Unset) | Err(_) => StatusCode::Unset,
        }
    }
}

/// A span's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpanStatus {
    pub code: StatusCode,
    pub message: String,
}

/// A span event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRecord {
    pub name: String,
    pub time_unix_nanos: u64,
    pub attributes: BTreeMap<String, Value>,
}

/// A span link.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkRecord {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    pub attributes: BTreeMap<String, Value>,
}

/// One received span, flattened out of its resource and scope.
///
/// Attribute values are OTLP `AnyValue`s turned into JSON: string, bool,
/// int (as an `i64` number), double, array (JSON array), kvlist (JSON
/// object), bytes (lowercase hex string); an empty `AnyValue` is `null`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpanRecord {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// `None` when the span has no parent (empty `parent_span_id`).
    pub parent_span_id: Option<String>,
    pub name: String,
    pub kind: SpanKind,
    /// The resource attribute `service.name`, or `"unknown_service"`.
    pub service_name: String,
    pub resource: BTreeMap<String, Value>,
    /// The instrumentation scope's name (`""` when absent).
    pub scope_name: String,
    pub start_unix_nanos: u64,
    pub end_unix_nanos: u64,
    pub status: SpanStatus,
    pub attributes: BTreeMap<String, Value>,
    pub events: Vec<EventRecord>,
    pub links: Vec<LinkRecord>,
    pub trace_state: String,
}

impl SpanRecord {
    /// End minus start (zero if the end is before the start).
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.end_unix_nanos.saturating_sub(self.start_unix_nanos))
    }

    /// A string attribute.
    pub fn attr_str(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }

    /// An integer attribute; also accepts an integral double or a decimal
    /// string (some SDKs send counts that way).
    pub fn attr_i64(&self, key: &str) -> Option<i64> {
        json_as_i64(self.attributes.get(key)?)
    }

    /// Whether the span's status is `ERROR`.
    pub fn is_error(&self) -> bool {
        self.status.code == StatusCode::Error
    }

    /// Whether the span has no parent.
    pub fn is_root(&self) -> bool {
        self.parent_span_id.is_none()
    }
}

/// An integer out of a JSON attribute value: a number (an integral double
/// too) or a decimal string.
pub(super) fn json_as_i64(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            (f.fract() == 0.0 && f >= i64::MIN as f64 && f <= i64::MAX as f64).then_some(f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
