//! The retrieval pipeline (embed, then search) and the ingest that fills the
//! store, with their spans.
//!
//! ```text
//! retrieval {collection}        gen_ai.operation.name=retrieval, confident.span.type=retriever
//!   embeddings {model}          INTERNAL (built-in) or CLIENT (OpenAI-compatible API)
//!   search {collection}         INTERNAL (in-memory) or CLIENT (Qdrant), db.* attributes
//! ```
//!
//! Ingest (at startup, or `ragtrace ingest <dir>`) is one `ingest
//! {collection}` span with a child per batch, each holding its `embeddings`
//! and `upsert` spans.

use std::sync::Mutex;
use std::time::Duration;

use shared::attributes::ragtrace;
use shared::dialects;
use shared::provider::{Api, ProviderError};
use shared::redact::{Content, Passages};
use shared::wire::Passage;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::chunker::Chunk;
use crate::embedder::Embedder;
use crate::vector_store::{StoreError, VectorStore};

/// Chunks per embeddings request and per upsert.
pub const INGEST_BATCH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum RetrievalError {
    #[error("the index is not ready yet: {0}")]
    NotReady(String),
    #[error(transparent)]
    VectorStore(#[from] StoreError),
    #[error("embedding the query failed: {0}")]
    Embedding(#[from] ProviderError),
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    VectorStore(#[from] StoreError),
    #[error("embedding failed: {0}")]
    Embedding(#[from] ProviderError),
}

impl IngestError {
    /// A later retry may succeed (the store or the embeddings API was down).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::VectorStore(err) => err.is_transient(),
            Self::Embedding(err) => matches!(
                err,
                ProviderError::Unavailable { .. }
                    | ProviderError::Timeout { .. }
                    | ProviderError::RateLimited { .. }
                    | ProviderError::Failed { .. }
            ),
        }
    }
}

/// What an ingest did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestReport {
    pub chunks: usize,
    pub batches: usize,
}

/// Embedder + vector store + the corpus they were loaded with.
pub struct Retriever {
    embedder: Embedder,
    vectors: VectorStore,
    chunk_size: usize,
    /// `Ok` once the corpus is in the store; the reason otherwise.
    state: Mutex<Result<(), String>>,
}

impl Retriever {
    pub fn new(embedder: Embedder, vectors: VectorStore, chunk_size: usize) -> Self {
        Self {
            embedder,
            vectors,
            chunk_size,
            state: Mutex::new(Err("corpus not ingested yet".into())),
        }
    }

    pub fn embedder_name(&self) -> String {
        self.embedder.model_name()
    }

    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    pub fn collection(&self) -> &str {
        self.vectors.collection()
    }

    pub fn vectors(&self) -> &VectorStore {
        &self.vectors
    }

    /// Load `chunks` into the store and mark it ready. Idempotent: point ids
    /// derive from chunk ids, so running it again overwrites, never adds.
    pub async fn ingest_corpus(&self, chunks: &[Chunk]) -> Result<IngestReport, IngestError> {
        let report = self.ingest(chunks).await;
        *self.state.lock().expect("state lock") = match &report {
            Ok(_) => Ok(()),
            Err(err) => Err(err.to_string()),
        };
        report
    }

    /// Keep retrying [`Retriever::ingest_corpus`] until it succeeds (the store or
    /// the embeddings API came back), then return.
    pub async fn ingest_until_ready(&self, chunks: &[Chunk], retry_every: Duration) {
        loop {
            match self.ingest_corpus(chunks).await {
                Ok(report) => {
                    tracing::info!(
                        chunks = report.chunks,
                        "corpus ingested; retrieval is ready"
                    );
                    return;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "ingest failed; retrying in {retry_every:?}");
                    tokio::time::sleep(retry_every).await;
                }
            }
        }
    }

    /// Embed and upsert `chunks` in batches, one span per batch.
    pub async fn ingest(&self, chunks: &[Chunk]) -> Result<IngestReport, IngestError> {
        let span = tracing::info_span!(
            "ingest",
            otel.name = %format!("ingest {}", self.collection()),
            otel.kind = "internal",
            "gen_ai.data_source.id" = %self.collection(),
            "ragtrace.ingest.chunks" = chunks.len() as i64,
            "ragtrace.ingest.batch_size" = INGEST_BATCH as i64,
        );
        let result = async {
            let mut batches = 0;
            for (n, batch) in chunks.chunks(INGEST_BATCH).enumerate() {
                let batch_span = tracing::info_span!(
                    "ingest batch",
                    otel.name = %format!("ingest_batch {}", self.collection()),
                    otel.kind = "internal",
                    "ragtrace.ingest.batch" = n as i64,
                    "ragtrace.ingest.chunks" = batch.len() as i64,
                );
                async {
                    // The title is embedded with the passage: it names the
                    // subject the passage's own sentences often leave implicit.
                    let texts: Vec<String> = batch
                        .iter()
                        .map(|c| format!("{}\n{}", c.title, c.text))
                        .collect();
                    let vectors = self.embedder.embed(&texts).await?;
                    if n == 0 {
                        self.vectors.ensure_collection(vectors[0].len()).await?;
                    }
                    self.vectors
                        .upsert(batch.iter().cloned().zip(vectors).collect())
                        .await?;
                    Ok::<_, IngestError>(())
                }
                .instrument(batch_span.clone())
                .await
                .inspect_err(|err| record_ingest_error(&batch_span, err))?;
                batches += 1;
            }
            Ok(IngestReport {
                chunks: chunks.len(),
                batches,
            })
        }
        .instrument(span.clone())
        .await;
        if let Err(err) = &result {
            record_ingest_error(&span, err);
        }
        result
    }

    /// Ready: the corpus is in, and the store answers.
    pub async fn readiness(&self) -> Result<(), String> {
        self.state.lock().expect("state lock").clone()?;
        self.vectors.health().await
    }

    /// The top-`top_k` passages for `query`, inside a `retrieval {collection}`
    /// span with an `embeddings` and a `search` child.
    pub async fn retrieve(
        &self,
        query: &str,
        top_k: usize,
    ) -> Result<Vec<Passage>, RetrievalError> {
        if let Err(reason) = self.state.lock().expect("state lock").clone() {
            return Err(RetrievalError::NotReady(reason));
        }
        let model = self.embedder.model_name();
        // GenAI retrieval span: name `retrieval {gen_ai.data_source.id}`.
        let span = tracing::info_span!(
            "retrieval",
            otel.name = %format!("retrieval {}", self.collection()),
            otel.kind = "internal",
            "gen_ai.operation.name" = "retrieval",
            "gen_ai.data_source.id" = self.collection(),
            "gen_ai.request.top_k" = top_k as i64,
            "db.system.name" = self.vectors.db_system(),
        );
        dialects::retriever(&span, &model, self.chunk_size);
        dialects::input(&span, &Content::capture(query));
        let result = async {
            let vector = self
                .embedder
                .embed(&[query.to_owned()])
                .await?
                .pop()
                .expect("one vector per input");
            Ok::<_, RetrievalError>(self.vectors.search(&vector, top_k).await?)
        }
        .instrument(span.clone())
        .await;

        match &result {
            Ok(contexts) => {
                span.set_attribute(ragtrace::CONTEXTS_RETURNED, contexts.len() as i64);
                // The passages are content: captured only with capture on.
                dialects::documents(&span, &Passages::capture(contexts));
            }
            Err(err) => shared::telemetry::record_error(&span, error_code(err), &err.to_string()),
        }
        result
    }
}

/// The machine code for a retrieval failure.
pub fn error_code(err: &RetrievalError) -> &'static str {
    match err {
        RetrievalError::NotReady(_) => "index_not_ready",
        RetrievalError::VectorStore(err) if err.is_transient() => "vector_store_unavailable",
        RetrievalError::VectorStore(_) => "vector_store_error",
        RetrievalError::Embedding(err) => err.code(Api::Embeddings),
    }
}

/// A retrieval failure for an error body: the cause, without an embeddings
/// provider's own message (which may quote the query); the span and the log
/// line keep it.
pub fn body_message(err: &RetrievalError) -> String {
    match err {
        RetrievalError::Embedding(err) => format!("embedding the query failed: {}", err.summary()),
        other => other.to_string(),
    }
}

fn record_ingest_error(span: &tracing::Span, err: &IngestError) {
    let code = match err {
        IngestError::VectorStore(err) if err.is_transient() => "vector_store_unavailable",
        IngestError::VectorStore(_) => "vector_store_error",
        IngestError::Embedding(err) => err.code(Api::Embeddings),
    };
    shared::telemetry::record_error(span, code, &err.to_string());
}
