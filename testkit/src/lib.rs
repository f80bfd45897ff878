//! Test doubles for what this machine cannot reach, speaking the real wire
//! protocols so the code under test uses its real clients:
//!
//! - [`fake_qdrant`]: a Qdrant gRPC server (built from the server traits
//!   `qdrant-client` ships), in memory, with outage switches.
//! - [`fake_otlp_grpc`]: an OTLP/gRPC trace collector.
//! - [`fake_openai`]: an OpenAI-compatible HTTP API (`/v1/chat/completions`
//!   with JSON and SSE, `/v1/embeddings`, OpenAI error bodies), recording
//!   every request it gets.

pub mod fake_openai;
pub mod fake_otlp_grpc;
pub mod fake_qdrant;
