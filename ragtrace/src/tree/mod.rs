//! Trace trees for the console: building, a one-line health summary,
//! plain-text rendering, and a printer that shows each finished trace once.
//!
//! The offline quick start has no Jaeger: the spans the services export land
//! in [`crate::receiver::Receiver`], and [`spawn_printer`] prints every trace as a
//! tree as soon as it looks finished, so you see at a glance that one request
//! crossed all four services as one trace, how long each hop took, and how
//! many tokens the LLM call used. The end-to-end tests use [`build()`] and
//! [`health()`] to assert on the shape of real traces.
//!
//! Rendering is a pure function without colours, so the output is
//! deterministic, grep-able and testable:
//!
//! ```text
//! trace 4bf92f3577b34da6a3ce929d0e0e4736
//!   [gateway] SERVER POST /v1/chat                   150.0 ms
//!   └─ [gateway] CLIENT POST                         148.0 ms
//!      └─ [query-processor] SERVER POST /query       146.0 ms
//!         ├─ [retrieval] SERVER POST /search          27.0 ms  gen_ai.request.top_k=4 gen_ai.data_source.id=corpus
//!         │  ├─ [retrieval] CLIENT embeddings nomic    6.0 ms  gen_ai.usage.input_tokens=9
//!         │  └─ [retrieval] INTERNAL vector search    18.0 ms  db.system.name=in-memory
//!         └─ [llm-service] SERVER POST /generate     100.0 ms  http.response.status_code=503 error.type=overloaded ERROR: model overloaded
//!            └─ [llm-service] CLIENT chat llama3      98.0 ms  gen_ai.request.model=llama3 gen_ai.usage.input_tokens=201 gen_ai.usage.output_tokens=32
//!   trace 4bf92f35…: 8 spans, 4 services (gateway, llm-service, query-processor, retrieval), depth 5, 1 hop, 0 orphans, 1 error, 233 tokens (201 in / 32 out)
//! ```
//!
//! Each level of the tree indents by one 3-column glyph (`├─ `, `└─ `, `│  `)
//! under a 2-space margin; the duration column is aligned across the trace
//! (unless a line's tree part is longer than 72 columns). Key attributes
//! ([`KEY_ATTRIBUTES`]) follow as `key=value`; `http.response.status_code`
//! only when it is 400 or more, `gen_ai.tool.name` only on MCP spans (an
//! MCP span's line reads `mcp.method.name=tools/call
//! gen_ai.tool.name=search_documents`); string values with spaces are
//! JSON-quoted.
//!
//! The health line counts hops: a SERVER span called by a CLIENT span of the
//! trace is an HTTP hop, a SERVER span with `mcp.method.name` an MCP hop
//! (`3 hops (2 http, 1 mcp)`; the `POST /mcp` HTTP span under the MCP CLIENT
//! span is its transport, not another hop). Above, only gateway →
//! query-processor is one: retrieval and llm-service are called without a
//! CLIENT span.
//!
//! # Layout
//!
//! * `build.rs`: spans into a [`TraceTree`] by parent id, orphans and
//!   cycles included;
//! * `health.rs`: the [`Health`] summary line and its counts;
//! * `render.rs`: the text above ([`render()`]);
//! * `printer.rs`: the background task that decides when a trace is
//!   finished and prints it once ([`spawn_printer`]).

mod build;
mod health;
mod printer;
mod render;
#[cfg(test)]
mod tests;

pub use build::{TraceTree, TreeNode, build};
pub use health::{Health, INFERENCE_OPERATIONS, MCP_METHOD, health, is_inference, is_mcp};
pub use printer::{Printer, PrinterConfig, spawn_printer, spawn_printer_with};
pub use render::{KEY_ATTRIBUTES, format_ms, render};
