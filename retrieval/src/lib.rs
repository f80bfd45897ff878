//! retrieval: embeds a query and searches the vector store for the passages
//! that best match it.
//!
//! What this service teaches is the *retrieval* part of a RAG trace:
//!
//! ```text
//! retrieval SERVER POST /retrieve
//!   retrieval {collection}     gen_ai.operation.name=retrieval, confident.span.type=retriever
//!     embeddings {model}       gen_ai.operation.name=embeddings
//!     search {collection}      db.system.name, db.operation.name, db.collection.name
//! ```
//!
//! The spans are opened in [`store::Store::retrieve`]; the route only
//! validates input. On the embedded defaults the embedder is a deterministic
//! feature-hashing model and the store an exact in-memory cosine index, both
//! in-process, so their spans are INTERNAL.

pub mod chunker;
pub mod configuration;
pub mod corpus;
pub mod embedder;
pub mod index;
pub mod routes;
pub mod startup;
pub mod store;

/// This binary's `service.name`.
pub const SERVICE_NAME: &str = "retrieval";

/// Telemetry, settings, server: what `main` runs.
pub async fn run() -> anyhow::Result<()> {
    let _telemetry = shared::telemetry::init(SERVICE_NAME)?;
    let settings = configuration::Settings::from_env()?;
    let application = startup::build(&settings)?;
    tracing::info!(port = application.port(), "retrieval listening");
    application.run_until_stopped().await?;
    Ok(())
}
