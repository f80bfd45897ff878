//! The Qdrant side of [`super::VectorStore`]: the gRPC client
//! (`qdrant-client`), point ids, and how its errors map to [`StoreError`].

use std::collections::HashMap;
use std::time::Duration;

use qdrant_client::qdrant::value::Kind;
use qdrant_client::qdrant::vectors_config::Config as VectorsConfig;
use qdrant_client::qdrant::{
    CreateCollectionBuilder, Distance, PointStruct, QueryPointsBuilder, UpsertPointsBuilder, Value,
    VectorParamsBuilder,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use shared::wire::Passage;

use super::StoreError;
use crate::chunker::Chunk;

pub struct QdrantStore {
    pub(super) client: Qdrant,
    pub(super) collection: String,
    pub(super) host: String,
    pub(super) port: u16,
}

/// Qdrant point id for a chunk: a stable 64-bit hash (FNV-1a) of its id, so
/// re-ingesting the same corpus (a restart, a second replica) overwrites the
/// same points instead of adding copies.
pub fn point_id(chunk_id: &str) -> u64 {
    chunk_id.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl StoreError {
    pub(super) fn from_qdrant(err: QdrantError) -> Self {
        use tonic::Code;
        match &err {
            QdrantError::ResponseError { status }
            | QdrantError::ResourceExhaustedError { status, .. } => {
                // qdrant-client reports a refused connection as `Internal`
                // ("Failed to connect to ..."), not `Unavailable`.
                let down = matches!(
                    status.code(),
                    Code::Unavailable
                        | Code::DeadlineExceeded
                        | Code::Cancelled
                        | Code::Unknown
                        | Code::ResourceExhausted
                ) || (status.code() == Code::Internal
                    && status.message().contains("connect"));
                if down {
                    Self::Unavailable(status.message().to_owned())
                } else {
                    Self::Failed(format!("{}: {}", status.code(), status.message()))
                }
            }
            _ => Self::Failed(err.to_string()),
        }
    }
}

impl QdrantStore {
    /// A client for `collection` on the Qdrant at `url` (gRPC).
    pub(super) fn connect(
        url: &str,
        api_key: Option<String>,
        collection: &str,
    ) -> Result<Self, StoreError> {
        let client = Qdrant::from_url(url)
            .api_key(api_key)
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            // The check is a blocking call at build time; readiness covers it.
            .skip_compatibility_check()
            .build()
            .map_err(|err| StoreError::Failed(err.to_string()))?;
        let (host, port) = shared::provider::host_port(url);
        Ok(QdrantStore {
            client,
            collection: collection.to_owned(),
            host,
            port,
        })
    }

    pub(super) async fn ensure_collection(&self, dimension: u64) -> Result<(), StoreError> {
        let exists = self
            .client
            .collection_exists(&self.collection)
            .await
            .map_err(StoreError::from_qdrant)?;
        if !exists {
            let created = self
                .client
                .create_collection(
                    CreateCollectionBuilder::new(&self.collection)
                        .vectors_config(VectorParamsBuilder::new(dimension, Distance::Cosine)),
                )
                .await;
            match created {
                Ok(_) => return Ok(()),
                // Another replica created it first: fall through and check it.
                Err(QdrantError::ResponseError { status })
                    if status.code() == tonic::Code::AlreadyExists => {}
                Err(err) => return Err(StoreError::from_qdrant(err)),
            }
        }
        let info = self
            .client
            .collection_info(&self.collection)
            .await
            .map_err(StoreError::from_qdrant)?;
        let existing = info
            .result
            .and_then(|i| i.config)
            .and_then(|c| c.params)
            .and_then(|p| p.vectors_config)
            .and_then(|v| v.config);
        match existing {
            Some(VectorsConfig::Params(params)) if params.size == dimension => Ok(()),
            Some(VectorsConfig::Params(params)) => Err(StoreError::DimensionMismatch {
                collection: self.collection.clone(),
                existing: params.size,
                wanted: dimension,
            }),
            _ => Err(StoreError::Failed(format!(
                "collection {:?} has no single unnamed vector configuration",
                self.collection
            ))),
        }
    }

    pub(super) async fn upsert(&self, points: Vec<(Chunk, Vec<f32>)>) -> Result<(), StoreError> {
        let points: Vec<PointStruct> = points
            .into_iter()
            .map(|(chunk, vector)| {
                let mut payload = Payload::new();
                payload.insert("chunk_id", chunk.id.as_str());
                payload.insert("source", chunk.source.as_str());
                payload.insert("title", chunk.title.as_str());
                payload.insert("text", chunk.text.as_str());
                PointStruct::new(point_id(&chunk.id), vector, payload)
            })
            .collect();
        self.client
            .upsert_points(UpsertPointsBuilder::new(&self.collection, points).wait(true))
            .await
            .map(|_| ())
            .map_err(StoreError::from_qdrant)
    }

    pub(super) async fn search(
        &self,
        vector: &[f32],
        top_k: usize,
    ) -> Result<Vec<Passage>, StoreError> {
        let response = self
            .client
            .query(
                QueryPointsBuilder::new(&self.collection)
                    .query(vector.to_vec())
                    .limit(top_k as u64)
                    .with_payload(true),
            )
            .await
            .map_err(StoreError::from_qdrant)?;
        Ok(response
            .result
            .into_iter()
            .map(|point| {
                let text = |key: &str| payload_str(&point.payload, key);
                Passage {
                    id: text("chunk_id"),
                    source: text("source"),
                    text: text("text"),
                    score: point.score,
                }
            })
            .collect())
    }
}

fn payload_str(payload: &HashMap<String, Value>, key: &str) -> String {
    match payload.get(key).and_then(|v| v.kind.as_ref()) {
        Some(Kind::StringValue(s)) => s.clone(),
        _ => String::new(),
    }
}
