//! retrieval: embeds a query and searches the vector store for the passages
//! that best match it.
//!
//! What this service teaches is the *retrieval* part of a RAG trace:
//!
//! ```text
//! retrieval SERVER POST /retrieve        (or tools/call search_documents, MCP)
//!   retrieval {collection}     gen_ai.operation.name=retrieval, confident.span.type=retriever
//!     embeddings {model}       gen_ai.operation.name=embeddings, gen_ai.cost.*
//!     search {collection}      db.system.name, db.operation.name, db.collection.name
//! ```
//!
//! The spans are opened in [`retriever`], [`embedder`] and [`vector_store`];
//! the route only validates input. The same retriever also answers MCP
//! tool calls ([`mcp`]), at `POST /mcp` and over stdio. On the embedded
//! defaults the embedder is a deterministic feature-hashing model and the
//! store an exact in-memory cosine index, both in-process, so their spans
//! are INTERNAL. With
//! `QDRANT_URL` the store is Qdrant, and with `EMBEDDINGS_BASE_URL` the
//! embedder is an OpenAI-compatible API: both network calls, CLIENT spans.

pub mod chunker;
pub mod configuration;
pub mod corpus;
pub mod embedder;
pub mod mcp;
pub mod retriever;
pub mod routes;
pub mod startup;
pub mod vector_store;

/// This binary's `service.name`.
pub const SERVICE_NAME: &str = "retrieval";

/// Telemetry, settings, server: what `main` runs.
pub async fn run() -> anyhow::Result<()> {
    let _telemetry = shared::telemetry::init(SERVICE_NAME)?;
    let settings = configuration::Settings::from_env()?;
    shared::prices::init()?;
    let application = startup::build(&settings).await?;
    tracing::info!(port = application.port(), "retrieval listening");
    application.run_until_stopped().await?;
    Ok(())
}

/// `ragtrace mcp`: the same corpus and tool as `POST /mcp`, served on
/// stdin and stdout, with spans exported as `retrieval`'s.
pub async fn serve_mcp_stdio() -> anyhow::Result<()> {
    let _telemetry = shared::telemetry::init(SERVICE_NAME)?;
    let settings = configuration::Settings::from_env()?;
    shared::prices::init()?;
    let (retriever, chunks) = startup::ingested(&settings).await?;
    let search = std::sync::Arc::new(mcp::SearchDocuments::new(retriever, &chunks));
    mcp::stdio::serve(search).await
}

/// `ragtrace ingest <dir>`: chunk, embed and upsert a folder of documents
/// into the configured Qdrant collection, a span per batch. Idempotent.
pub async fn ingest_dir(dir: &std::path::Path) -> anyhow::Result<retriever::IngestReport> {
    let settings = configuration::Settings::from_env()?;
    shared::prices::init()?;
    anyhow::ensure!(
        settings.qdrant.is_some(),
        "ingest needs QDRANT_URL: the in-memory index lives inside the retrieval process"
    );
    let chunks = corpus::load_corpus(dir, &settings.chunker)?;
    let retriever = startup::retriever(&settings)?;
    let report = retriever.ingest(&chunks).await?;
    Ok(report)
}
