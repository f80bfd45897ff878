//! Build the store and ingest the corpus, then bind.
//!
//! With the embedded defaults, ingest finishes before the server binds (it
//! takes milliseconds and cannot fail). With Qdrant or a remote embedder, a
//! transient failure (the store or API is down) does not stop the service:
//! it serves `/readyz` 503 and retries in the background until the corpus is
//! in. A configuration error, such as a collection of another dimension,
//! stops startup with a clear message.

use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use shared::server::{Application, post_resource};

use crate::chunker::Chunk;
use crate::configuration::Settings;
use crate::embedder::Embedder;
use crate::embedder::hashing::HashingEmbedder;
use crate::mcp::{self, SearchDocuments};
use crate::retriever::{IngestError, Retriever};
use crate::routes;
use crate::vector_store::VectorStore;

/// How often a failed startup ingest is retried.
const RETRY_EVERY: Duration = Duration::from_secs(2);

/// The store described by `settings` (not yet ingested).
pub fn retriever(settings: &Settings) -> anyhow::Result<Retriever> {
    let embedder = match &settings.remote_embedder {
        Some(remote) => Embedder::remote(remote.clone()),
        None => Embedder::Hashing(HashingEmbedder::new(settings.embedding_dimension)),
    };
    let vectors = match &settings.qdrant {
        Some(qdrant) => {
            VectorStore::qdrant(&qdrant.url, qdrant.api_key.clone(), &settings.collection)?
        }
        None => VectorStore::memory(&settings.collection),
    };
    Ok(Retriever::new(
        embedder,
        vectors,
        settings.chunker.max_words,
    ))
}

/// The retriever with the corpus in it, and the corpus's chunks. With the
/// store or embeddings API down, the ingest goes on in the background (see
/// the module docs).
pub async fn ingested(settings: &Settings) -> anyhow::Result<(Arc<Retriever>, Vec<Chunk>)> {
    let started = std::time::Instant::now();
    let chunks: Vec<Chunk> = crate::corpus::load_corpus(&settings.corpus_dir, &settings.chunker)?;
    let retriever = Arc::new(retriever(settings)?);
    match retriever.ingest_corpus(&chunks).await {
        Ok(report) => tracing::info!(
            chunks = report.chunks,
            collection = retriever.collection(),
            store = retriever.vectors().db_system(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "corpus ingested"
        ),
        Err(err) if err.is_transient() => {
            tracing::warn!(error = %err, "corpus not ingested yet; serving (not ready) and retrying in the background");
            let (retriever, chunks) = (retriever.clone(), chunks.clone());
            tokio::spawn(async move { retriever.ingest_until_ready(&chunks, RETRY_EVERY).await });
        }
        Err(err @ IngestError::VectorStore(_)) | Err(err @ IngestError::Embedding(_)) => {
            return Err(err.into());
        }
    }
    Ok((retriever, chunks))
}

pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
    let (retriever, chunks) = ingested(settings).await?;
    // The same retriever behind `POST /retrieve` and the MCP tool.
    let search = Arc::new(SearchDocuments::new(retriever.clone(), &chunks));
    let mcp = web::Data::new(mcp::http::service(search, &settings.mcp_allowed_hosts));
    let retriever = web::Data::from(retriever);
    let application = Application::build(settings.listen_addr, move |cfg| {
        cfg.app_data(retriever.clone())
            .app_data(mcp.clone())
            .route("/readyz", web::get().to(routes::readyz))
            .service(post_resource("/retrieve", routes::retrieve))
            .service(post_resource("/embed", routes::embed))
            .route("/mcp", web::route().to(mcp::http::handle));
    })?;
    Ok(application)
}
