//! query-processor: the orchestrator. It normalises the query, asks
//! retrieval for the top-k passages, then asks llm-service for an answer.
//!
//! What this service teaches is the *fan-out*: one SERVER span with a tool
//! span under it, and one CLIENT span per outbound call, each carrying its own
//! span id in `traceparent` so the callee's SERVER span hangs under the
//! right call:
//!
//! ```text
//! query-processor SERVER POST /process
//!   execute_tool process_query     confident.span.type=tool
//!     CLIENT POST /retrieve   -> retrieval SERVER POST /retrieve ...
//!     CLIENT POST /generate   -> llm-service SERVER POST /generate ...
//!     evaluation context_relevance   gen_ai.evaluation.score.value=1.0
//!     evaluation groundedness        gen_ai.evaluation.score.label=pass
//!     evaluation citation_validity   ...
//! ```
//!
//! Once the answer is in, [`evaluation`] scores it and writes the results on
//! the trace and in the response.
//!
//! With `RETRIEVAL_PROTOCOL=mcp`, retrieval is called as an MCP tool
//! instead ([`mcp`]): `CLIENT tools/call search_documents` stands where
//! `CLIENT POST /retrieve` stood.

pub mod configuration;
pub mod evaluation;
pub mod mcp;
pub mod routes;
pub mod startup;

/// This binary's `service.name`.
pub const SERVICE_NAME: &str = "query-processor";

/// Telemetry, settings, server: what `main` runs.
pub async fn run() -> anyhow::Result<()> {
    let _telemetry = shared::telemetry::init(SERVICE_NAME)?;
    let settings = configuration::Settings::from_env()?;
    // The model judge's calls are priced.
    shared::prices::init()?;
    let application = startup::build(&settings)?;
    tracing::info!(port = application.port(), "query-processor listening");
    application.run_until_stopped().await?;
    Ok(())
}
