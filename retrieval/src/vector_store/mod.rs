//! Where the vectors live: the in-process exact index, or Qdrant over gRPC
//! (`qdrant-client`).
//!
//! Each operation gets a database span named `{db.operation.name}
//! {db.collection.name}` with the database semantic conventions. The
//! in-process index is INTERNAL with a custom `db.system.name`; Qdrant is a
//! CLIENT span with `db.system.name=qdrant` and `server.address`/`port`, so a
//! trace shows time spent on the network separately from time in the store.

pub mod memory;
mod qdrant;

use std::sync::RwLock;

use shared::attributes::db;
use shared::wire::Passage;
use tracing::{Instrument, Span};

use crate::chunker::Chunk;
use memory::VectorIndex;
pub use qdrant::QdrantStore;

/// `db.system.name` for the in-process index. Not a well-known value: the
/// conventions ask for a custom name when none fits.
pub const IN_MEMORY_DB_SYSTEM: &str = "ragtrace.in_memory";
pub const QDRANT_DB_SYSTEM: &str = "qdrant";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("vector store unreachable: {0}")]
    Unavailable(String),
    #[error(
        "collection {collection:?} holds {existing}-dimensional vectors but the embedder makes \
         {wanted}-dimensional ones; use another QDRANT_COLLECTION or recreate it"
    )]
    DimensionMismatch {
        collection: String,
        existing: u64,
        wanted: u64,
    },
    #[error("vector store error: {0}")]
    Failed(String),
}

impl StoreError {
    /// Worth retrying later (the store may come back), as opposed to a
    /// configuration error that no retry fixes.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

pub enum VectorStore {
    Memory {
        collection: String,
        index: RwLock<Option<VectorIndex>>,
    },
    Qdrant(QdrantStore),
}

impl VectorStore {
    pub fn memory(collection: &str) -> Self {
        Self::Memory {
            collection: collection.to_owned(),
            index: RwLock::new(None),
        }
    }

    pub fn qdrant(
        url: &str,
        api_key: Option<String>,
        collection: &str,
    ) -> Result<Self, StoreError> {
        QdrantStore::connect(url, api_key, collection).map(Self::Qdrant)
    }

    pub fn collection(&self) -> &str {
        match self {
            Self::Memory { collection, .. } => collection,
            Self::Qdrant(q) => &q.collection,
        }
    }

    pub fn db_system(&self) -> &'static str {
        match self {
            Self::Memory { .. } => IN_MEMORY_DB_SYSTEM,
            Self::Qdrant(_) => QDRANT_DB_SYSTEM,
        }
    }

    /// The database span for `operation` on this store, in the database
    /// conventions' words: INTERNAL in process, CLIENT across the network.
    fn span(&self, operation: &str) -> Span {
        let name = format!("{operation} {}", self.collection());
        match self {
            Self::Memory { .. } => tracing::info_span!(
                "vector store",
                otel.name = %name,
                otel.kind = "internal",
                "db.system.name" = IN_MEMORY_DB_SYSTEM,
                "db.operation.name" = operation,
                "db.collection.name" = %self.collection(),
                "db.response.returned_rows" = tracing::field::Empty,
            ),
            Self::Qdrant(q) => tracing::info_span!(
                "vector store",
                otel.name = %name,
                otel.kind = "client",
                "db.system.name" = QDRANT_DB_SYSTEM,
                "db.operation.name" = operation,
                "db.collection.name" = %q.collection,
                "server.address" = %q.host,
                "server.port" = i64::from(q.port),
                "db.response.returned_rows" = tracing::field::Empty,
            ),
        }
    }

    /// Make sure the collection exists with `dimension`-sized cosine vectors.
    /// An existing collection of another dimension is an error: mixing
    /// embedders would return garbage, silently.
    pub async fn ensure_collection(&self, dimension: usize) -> Result<(), StoreError> {
        match self {
            Self::Memory { index, .. } => {
                let mut index = index.write().expect("index lock");
                match index.as_ref() {
                    Some(existing) if existing.dimension() != dimension => {
                        Err(StoreError::DimensionMismatch {
                            collection: self.collection().to_owned(),
                            existing: existing.dimension() as u64,
                            wanted: dimension as u64,
                        })
                    }
                    Some(_) => Ok(()),
                    None => {
                        *index = Some(VectorIndex::new(dimension));
                        Ok(())
                    }
                }
            }
            Self::Qdrant(q) => {
                let span = self.span("create_collection");
                let result = q
                    .ensure_collection(dimension as u64)
                    .instrument(span.clone())
                    .await;
                record(&span, &result);
                result
            }
        }
    }

    /// Insert or replace `points` (ids derived from chunk ids).
    pub async fn upsert(&self, points: Vec<(Chunk, Vec<f32>)>) -> Result<(), StoreError> {
        let span = self.span("upsert");
        let result = match self {
            Self::Memory { index, .. } => {
                let _entered = span.enter();
                let mut guard = index.write().expect("index lock");
                let index = guard
                    .as_mut()
                    .ok_or_else(|| StoreError::Failed("collection not created".into()))?;
                points
                    .into_iter()
                    .try_for_each(|(chunk, vector)| index.insert(chunk, vector))
                    .map_err(|err| StoreError::Failed(err.to_string()))
            }
            Self::Qdrant(q) => q.upsert(points).instrument(span.clone()).await,
        };
        record(&span, &result);
        result
    }

    /// The `top_k` nearest chunks to `vector` by cosine similarity.
    pub async fn search(&self, vector: &[f32], top_k: usize) -> Result<Vec<Passage>, StoreError> {
        let span = self.span("search");
        let result = match self {
            Self::Memory { index, collection } => {
                let _entered = span.enter();
                memory_search(index, collection, vector, top_k)
            }
            Self::Qdrant(q) => q.search(vector, top_k).instrument(span.clone()).await,
        };
        if let Ok(contexts) = &result {
            span.record(db::RESPONSE_RETURNED_ROWS, contexts.len() as i64);
        }
        record(&span, &result);
        result
    }

    /// Number of stored points.
    pub async fn count(&self) -> Result<u64, StoreError> {
        match self {
            Self::Memory { index, .. } => Ok(index
                .read()
                .expect("index lock")
                .as_ref()
                .map_or(0, |i| i.len() as u64)),
            Self::Qdrant(q) => q
                .client
                .count(qdrant_client::qdrant::CountPointsBuilder::new(&q.collection).exact(true))
                .await
                .map(|r| r.result.map_or(0, |c| c.count))
                .map_err(StoreError::from_qdrant),
        }
    }

    /// Is the store reachable? (Not traced: it backs `/readyz`.)
    pub async fn health(&self) -> Result<(), String> {
        match self {
            Self::Memory { .. } => Ok(()),
            Self::Qdrant(q) => q.client.health_check().await.map(|_| ()).map_err(|err| {
                format!(
                    "qdrant at {}:{}: {}",
                    q.host,
                    q.port,
                    StoreError::from_qdrant(err)
                )
            }),
        }
    }
}

fn memory_search(
    index: &RwLock<Option<VectorIndex>>,
    collection: &str,
    vector: &[f32],
    top_k: usize,
) -> Result<Vec<Passage>, StoreError> {
    let guard = index.read().expect("index lock");
    let index = guard
        .as_ref()
        .ok_or_else(|| StoreError::Failed("index not loaded".into()))?;
    // The index panics on a vector of another dimension; a remote embedder
    // that changed models under us must not crash the service.
    if vector.len() != index.dimension() {
        return Err(StoreError::DimensionMismatch {
            collection: collection.to_owned(),
            existing: index.dimension() as u64,
            wanted: vector.len() as u64,
        });
    }
    Ok(index
        .search(vector, top_k)
        .into_iter()
        .map(|hit| Passage {
            id: hit.chunk.id.clone(),
            source: hit.chunk.source.clone(),
            text: hit.chunk.text.clone(),
            score: hit.score,
        })
        .collect())
}

fn record<T>(span: &Span, result: &Result<T, StoreError>) {
    if let Err(err) = result {
        let code = if err.is_transient() {
            "vector_store_unavailable"
        } else {
            "vector_store_error"
        };
        shared::telemetry::record_error(span, code, &err.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::qdrant::point_id;

    #[test]
    fn a_query_of_another_dimension_is_an_error_not_a_panic() {
        use super::memory::VectorIndex;
        use super::{StoreError, memory_search};
        use crate::chunker::Chunk;
        let mut index = VectorIndex::new(3);
        let chunk = Chunk {
            id: "a#0".into(),
            source: "a".into(),
            title: "A".into(),
            text: "a".into(),
        };
        index.insert(chunk, vec![1.0, 0.0, 0.0]).unwrap();
        let index = std::sync::RwLock::new(Some(index));
        let err = memory_search(&index, "c", &[1.0, 0.0], 1).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::DimensionMismatch {
                    existing: 3,
                    wanted: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            memory_search(&index, "c", &[1.0, 0.0, 0.0], 1)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn point_ids_are_stable_and_distinct() {
        assert_eq!(point_id("a.md#0"), point_id("a.md#0"));
        assert_ne!(point_id("a.md#0"), point_id("a.md#1"));
        // Pinned: changing the hash would duplicate every point on upgrade.
        assert_eq!(point_id(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(point_id("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
