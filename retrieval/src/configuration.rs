//! Settings from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;

use shared::config::{self, ConfigError};

use crate::chunker::ChunkerConfig;
use crate::corpus;
use crate::embedder::HashingEmbedder;

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8080";
/// The in-memory index's name, `gen_ai.data_source.id` on retrieval spans.
pub const DEFAULT_COLLECTION: &str = "ragtrace";

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_addr: SocketAddr,
    /// `CORPUS_DIR`: the folder of `.md`/`.txt` documents indexed at startup.
    pub corpus_dir: PathBuf,
    pub chunker: ChunkerConfig,
    /// `EMBEDDING_DIMENSION` of the built-in hashing embedder.
    pub embedding_dimension: usize,
    pub collection: String,
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
        })
    }
}
