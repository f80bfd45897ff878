//! `otlp-fast`: an OTLP/HTTP protobuf span exporter written by hand, in place
//! of `opentelemetry-otlp`'s for `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`.
//!
//! ragtrace uses it when `RAGTRACE_SPAN_EXPORTER=fast` (the default);
//! `RAGTRACE_SPAN_EXPORTER=otlp` uses `opentelemetry-otlp` as shipped, and
//! `http/json` and `grpc` always do (`shared::telemetry::exporter` chooses).
//! Nothing about tracing is different with it: the same SDK span data, the
//! same batch span processor, the same `OTEL_EXPORTER_OTLP_*` variables and
//! the same bytes on the wire.
//!
//! # Why it exists
//!
//! `opentelemetry-otlp` exports a batch in two steps: it first *converts*
//! every [`SpanData`](opentelemetry_sdk::trace::SpanData) into the generated
//! protobuf structs of `opentelemetry-proto` (a `String` for every attribute
//! key, string value, span name and scope; a `Vec` for every id; a map to
//! group spans by scope), then lets prost encode those structs, computing
//! each nested message's length as it goes. `ragtrace bench` measured the
//! export thread at 63 µs of CPU per `/chat` with it (~5 µs per span), on the
//! same two cores as the requests being traced: the largest single cost of
//! tracing there after recording itself. With this crate: 20 µs, HTTP and
//! freeing the spans included (`docs/bench.md`).
//!
//! - [`TraceEncoder`] (`encode.rs`): `SpanData` to protobuf bytes, one
//!   buffer per batch.
//! - [`ProtobufHttpExporter`] (`http.rs`): a
//!   [`SpanExporter`](opentelemetry_sdk::trace::SpanExporter) that posts
//!   those bytes with `reqwest`'s blocking client, configured from the
//!   `OTEL_EXPORTER_OTLP_*` variables.

mod encode;
mod http;

pub use encode::TraceEncoder;
pub use http::{Error, ProtobufHttpExporter};
