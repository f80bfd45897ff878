//! A small, in-process OTLP/HTTP receiver: a span store and, in [`metrics`],
//! a metric store.
//!
//! # Why this exists
//!
//! ragtrace is a reference app for tracing a RAG pipeline, and two things need
//! to *see* the spans that the services export:
//!
//! * **The offline quick start.** `ragtrace` runs all four services locally and
//!   points their `OTEL_EXPORTER_OTLP_ENDPOINT` at this receiver, so every
//!   request's trace is printed as a tree in the terminal (see
//!   [`crate::tree`]). No Jaeger, no collector, no Docker.
//! * **The end-to-end tests.** They assert on the real OTLP that the real
//!   OpenTelemetry exporters sent over HTTP, not on an in-memory exporter: if a
//!   service stops propagating `traceparent`, mislabels a span kind or loses a
//!   `gen_ai.*` attribute, the test sees exactly what a real backend would see.
//!
//! # What it speaks
//!
//! OTLP/HTTP as in the [OTLP specification](https://opentelemetry.io/docs/specs/otlp/#otlphttp):
//!
//! | request | reply |
//! | --- | --- |
//! | `POST /v1/traces`, `Content-Type: application/x-protobuf` (or `application/protobuf`) | 200, an encoded empty `ExportTraceServiceResponse`, `application/x-protobuf` |
//! | `POST /v1/traces`, `Content-Type: application/json` | 200, `{}`, `application/json` |
//! | `POST /v1/traces` with any other or no content type | 415, JSON `{"error": …}` |
//! | `POST /v1/traces` whose body does not decode | 400, JSON `{"error": …}` |
//! | `POST /v1/traces` with a `Content-Encoding` other than `identity` | 415, JSON `{"error": …}` (gzip is not supported: the workspace builds actix-web without its compression features, and the exporters here do not compress unless told to) |
//! | `POST /v1/metrics`, protobuf or JSON | as for `/v1/traces`; the points go to [`Receiver::metrics`] (see [`metrics`]) |
//! | `POST /v1/logs` (protobuf or JSON) | 200 with the empty response of that encoding (empty body / `{}`); the data is discarded, so log exporters do not log errors |
//! | another method on one of those paths | 405 |
//! | any other path | 404 |
//!
//! Bodies are limited to 32 MiB (larger ones get 413).
//!
//! OTLP/JSON is decoded with `opentelemetry-proto`'s serde support, after a
//! normalisation pass ([`decode_json`]) that fills in what that support does
//! not accept but the spec allows: omitted or `null` fields, enum values given
//! by name, `{}` for an empty `AnyValue`, and `"NaN"`/`"Infinity"` doubles.
//!
//! # Runtimes
//!
//! [`Receiver::start`] needs a Tokio runtime; it works under
//! `#[actix_web::main]`/`#[actix_web::test]` (an actix `System`) and under a
//! plain `#[tokio::main]`/`#[tokio::test]` (actix-server then runs its worker on
//! its own thread with its own runtime). Both are tested (`tests/server.rs`).
//!
//! # Layout
//!
//! One file per job, so each can be read on its own:
//!
//! * `model.rs`: what a received span is ([`SpanRecord`], [`SpanKind`],
//!   [`StatusCode`]), the shape every consumer (the tree, the tests) reads;
//! * `decode.rs`: protobuf and OTLP/JSON request bodies into those records,
//!   with the JSON normalisation described above;
//! * `store.rs`: [`SpanStore`], the records indexed by trace, and the waits
//!   the tests use;
//! * `server.rs`: [`Receiver`], the HTTP endpoints of the table above;
//! * [`metrics`]: the same three steps for `/v1/metrics`.
//!
//! The module's public items are re-exported here: callers write
//! `ragtrace::receiver::SpanRecord`, whatever file it lives in.

mod decode;
pub mod metrics;
mod model;
mod server;
mod store;
#[cfg(test)]
pub(crate) mod tests;

pub use decode::{DecodeError, decode_json, decode_protobuf, spans_from_request};
pub use model::{
    EventRecord, LinkRecord, SpanKind, SpanRecord, SpanStatus, StatusCode, UNKNOWN_SERVICE,
};
pub(crate) use server::Running;
pub use server::{MAX_BODY_BYTES, Receiver};
pub use store::{SpanStore, TraceSummary};
