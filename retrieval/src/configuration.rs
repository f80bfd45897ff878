//! Settings from the environment.
//!
//! Nothing set: the embedded defaults (built-in embedder, in-memory index).
//! `QDRANT_URL` switches the store to Qdrant; `EMBEDDINGS_BASE_URL` +
//! `EMBEDDINGS_MODEL` switch the embedder to an OpenAI-compatible API.

use std::net::SocketAddr;
use std::path::PathBuf;

use shared::config::{self, ConfigError};

use crate::chunker::ChunkerConfig;
use crate::corpus;
use crate::embedder::RemoteEmbedderSettings;
use crate::embedder::hashing::HashingEmbedder;

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8080";
/// The collection name: Qdrant's collection, or the in-memory index's name;
/// `gen_ai.data_source.id` on retrieval spans either way.
pub const DEFAULT_COLLECTION: &str = "ragtrace";
/// Loopback, and the name compose gives this service.
pub const DEFAULT_MCP_ALLOWED_HOSTS: &str = "localhost,127.0.0.1,::1,retrieval";

#[derive(Debug, Clone)]
pub struct QdrantSettings {
    /// gRPC endpoint, e.g. `http://localhost:6334`.
    pub url: String,
    pub api_key: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_addr: SocketAddr,
    /// `CORPUS_DIR`: the folder of `.md`/`.txt` documents ingested at startup.
    pub corpus_dir: PathBuf,
    pub chunker: ChunkerConfig,
    /// `EMBEDDING_DIMENSION` of the built-in hashing embedder.
    pub embedding_dimension: usize,
    /// `QDRANT_COLLECTION`.
    pub collection: String,
    pub qdrant: Option<QdrantSettings>,
    pub remote_embedder: Option<RemoteEmbedderSettings>,
    /// `MCP_ALLOWED_HOSTS`: the `Host` values `/mcp` accepts, comma-separated
    /// (DNS-rebinding protection; loopback and `retrieval` by default).
    pub mcp_allowed_hosts: Vec<String>,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let dimension = config::env_or("EMBEDDING_DIMENSION", HashingEmbedder::DEFAULT_DIMENSION)?;
        if dimension == 0 {
            return Err(ConfigError {
                name: "EMBEDDING_DIMENSION",
                value: "0".into(),
                reason: "must be at least 1".into(),
            });
        }
        let qdrant = config::env_opt("QDRANT_URL").map(|url| QdrantSettings {
            url,
            api_key: config::env_opt("QDRANT_API_KEY"),
        });
        let remote_embedder = match config::env_pair("EMBEDDINGS_BASE_URL", "EMBEDDINGS_MODEL")? {
            Some((base_url, model)) => Some(RemoteEmbedderSettings {
                base_url,
                model,
                api_key: shared::provider::api_key("EMBEDDINGS_API_KEY"),
                provider: config::env_opt("EMBEDDINGS_PROVIDER"),
                timeout: config::env_millis("EMBEDDINGS_TIMEOUT_MS", 4_000)?,
            }),
            None => None,
        };
        Ok(Self {
            listen_addr: config::listen_addr(DEFAULT_LISTEN_ADDR)?,
            corpus_dir: std::env::var_os("CORPUS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(corpus::default_corpus_dir),
            chunker: ChunkerConfig {
                max_words: config::env_or("CHUNK_MAX_WORDS", ChunkerConfig::default().max_words)?,
                overlap_words: config::env_or("CHUNK_OVERLAP_WORDS", 0)?,
            },
            embedding_dimension: dimension,
            collection: config::env_string("QDRANT_COLLECTION", DEFAULT_COLLECTION),
            qdrant,
            remote_embedder,
            mcp_allowed_hosts: config::env_string("MCP_ALLOWED_HOSTS", DEFAULT_MCP_ALLOWED_HOSTS)
                .split(',')
                .map(|host| host.trim().to_owned())
                .filter(|host| !host.is_empty())
                .collect(),
        })
    }
}
