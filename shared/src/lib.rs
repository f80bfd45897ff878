//! `shared`: what every ragtrace service has in common.
//!
//! The services differ in *what* they instrument; everything about *how* a
//! span is exported, how context crosses the wire and what an error looks like
//! lives here, once:
//!
//! - [`telemetry`]: OTel init (propagator, tracer and meter providers,
//!   subscriber) and the shutdown guard that flushes spans and metrics on exit;
//!   its submodules hold the exporter machinery (the hand-written span
//!   exporter is the `otlp-fast` crate).
//! - [`propagation`]: W3C `traceparent` / `tracestate` / `baggage`, extract
//!   and inject.
//! - [`w3c`]: the Trace Context rules the SDK propagator does not apply
//!   (header grammar, tracestate limits, the Level 2 random flag).
//! - [`server`]: the SERVER span per request, and the service skeleton.
//! - [`client`]: the one outbound-call helper (CLIENT span + injection).
//! - [`http`]: the HTTP plumbing around those two (JSON body extractor,
//!   probes and default routes, request duration, downstream errors).
//! - [`streaming`], [`sse`]: Server-Sent Events, served and relayed, with
//!   their spans.
//! - [`query`]: the one query validator every hop applies.
//! - [`attributes`]: every span and metric attribute name, with its convention.
//! - [`metrics`]: the OTLP metrics (GenAI operation duration, token usage,
//!   time to first chunk, HTTP server duration) and their bucket boundaries.
//! - [`prices`]: the price table per model and the cost of a call, on its
//!   span and in a metric.
//! - [`dialects`]: the one mapping from our span facts to GenAI, Confident AI
//!   and OpenInference attributes.
//! - [`wire`]: the JSON contracts between services.
//! - [`error`]: the shared error body.
//! - [`redact`]: PII and secret redaction of captured content.
//! - [`logs`]: JSON log lines carrying the trace and span ids.
//! - [`config`]: environment parsing helpers.
//! - [`faults`]: HotROD-style latency and error injection, off by default.
//! - [`provider`]: provider names and endpoints of OpenAI-compatible APIs.
//! - [`hashing`]: the built-in hashing embedder, shared by retrieval (its
//!   offline model) and query-processor (its groundedness evaluator).

pub mod attributes;
pub mod client;
pub mod config;
pub mod dialects;
pub mod error;
pub mod faults;
pub mod hashing;
pub mod http;
pub mod logs;
pub mod metrics;
pub mod prices;
pub mod propagation;
pub mod provider;
pub mod query;
pub mod redact;
pub mod server;
pub mod sse;
pub mod streaming;
pub mod telemetry;
pub mod w3c;
pub mod wire;
