//! The retrieval pipeline (embed, then search) and its spans.
//!
//! Each step gets the span the GenAI and database conventions describe, so a
//! trace UI shows *where* retrieval time goes: embedding the query or
//! scanning the index. Attribute keys come from [`shared::attributes`].

use opentelemetry::{Array, StringValue, Value};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use shared::attributes::{confident, db, gen_ai, ragtrace};
use shared::wire::Context;

use crate::chunker::ChunkerConfig;
use crate::corpus::{self, CorpusError};
use crate::embedder::{self, HashingEmbedder};
use crate::index::VectorIndex;

/// `db.system.name` for the in-process index. Not one of the well-known
/// values: the conventions ask for a custom name when none fits.
pub const IN_MEMORY_DB_SYSTEM: &str = "ragtrace.in_memory";

/// Embedder + index, built once at startup and shared read-only by workers.
pub struct Store {
    embedder: HashingEmbedder,
    index: VectorIndex,
    collection: String,
    chunk_size: usize,
}

impl Store {
    /// Chunk, embed and index every document of `corpus_dir`.
    pub fn load(
        corpus_dir: &std::path::Path,
        chunker: &ChunkerConfig,
        dimension: usize,
        collection: &str,
    ) -> Result<Self, CorpusError> {
        let chunks = corpus::load_corpus(corpus_dir, chunker)?;
        let embedder = HashingEmbedder::new(dimension);
        let mut index = VectorIndex::with_capacity(dimension, chunks.len());
        for chunk in chunks {
            // The title is embedded with the passage: it names the subject
            // that the passage's own sentences often leave implicit.
            let vector = embedder.embed(&format!("{}\n{}", chunk.title, chunk.text));
            index
                .insert(chunk, vector)
                .expect("the embedder's vectors match the index dimension");
        }
        Ok(Self {
            embedder,
            index,
            collection: collection.to_owned(),
            chunk_size: chunker.max_words,
        })
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn embedder_name(&self) -> String {
        self.embedder.model_name()
    }

    pub fn collection(&self) -> &str {
        &self.collection
    }

    /// The top-`top_k` passages for `query`, inside a `retrieval {collection}`
    /// span with an `embeddings` and a `search` child.
    pub fn retrieve(&self, query: &str, top_k: usize) -> Vec<Context> {
        let model = self.embedder.model_name();
        // GenAI retrieval span: name `retrieval {gen_ai.data_source.id}`.
        // INTERNAL because the store is in-process (CLIENT for a remote one).
        let span = tracing::info_span!(
            "retrieval",
            otel.name = %format!("retrieval {}", self.collection),
            otel.kind = "internal",
            "gen_ai.operation.name" = gen_ai::operation::RETRIEVAL,
            "gen_ai.data_source.id" = %self.collection,
            "gen_ai.request.top_k" = top_k,
            "confident.span.type" = confident::span_type::RETRIEVER,
            "confident.retriever.embedder" = %model,
            "confident.retriever.top_k" = top_k,
            "confident.retriever.chunk_size" = self.chunk_size,
        );
        let _entered = span.enter();

        let vector = self.embed(query, &model);
        let contexts = self.search(&vector, top_k);

        span.set_attribute(ragtrace::CONTEXTS_RETURNED, contexts.len() as i64);
        if shared::telemetry::capture_content() {
            // The chunks themselves are user-visible content: recorded only
            // when content capture is on.
            let texts: Vec<StringValue> = contexts.iter().map(|c| c.text.clone().into()).collect();
            span.set_attribute(
                confident::SPAN_RETRIEVAL_CONTEXT,
                Value::Array(Array::String(texts)),
            );
            span.set_attribute(confident::SPAN_INPUT, query.to_owned());
        }
        contexts
    }

    /// GenAI embeddings span: `embeddings {model}`, INTERNAL (in-process model).
    fn embed(&self, query: &str, model: &str) -> Vec<f32> {
        let span = tracing::info_span!(
            "embeddings",
            otel.name = %format!("embeddings {model}"),
            otel.kind = "internal",
            "gen_ai.operation.name" = gen_ai::operation::EMBEDDINGS,
            "gen_ai.provider.name" = gen_ai::PROVIDER_RAGTRACE,
            "gen_ai.request.model" = model,
            "gen_ai.response.model" = model,
            "gen_ai.embeddings.dimension.count" = self.embedder.dimension(),
            "gen_ai.usage.input_tokens" = embedder::tokens(query).len(),
        );
        let _entered = span.enter();
        self.embedder.embed(query)
    }

    /// Database span for the vector search: `{db.operation.name} {db.collection.name}`.
    fn search(&self, vector: &[f32], top_k: usize) -> Vec<Context> {
        let span = tracing::info_span!(
            "vector search",
            otel.name = %format!("search {}", self.collection),
            otel.kind = "internal",
            "db.system.name" = IN_MEMORY_DB_SYSTEM,
            "db.operation.name" = "search",
            "db.collection.name" = %self.collection,
            "db.response.returned_rows" = tracing::field::Empty,
        );
        let _entered = span.enter();
        let hits = self.index.search(vector, top_k);
        Span::current().record(db::RESPONSE_RETURNED_ROWS, hits.len());
        hits.into_iter()
            .map(|hit| Context {
                id: hit.chunk.id.clone(),
                source: hit.chunk.source.clone(),
                text: hit.chunk.text.clone(),
                score: hit.score,
            })
            .collect()
    }
}
