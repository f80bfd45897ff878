//! Settings from the environment.

use std::net::SocketAddr;

use shared::client::Downstream;
use shared::config;

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:3000";
pub const DEFAULT_RETRIEVAL_URL: &str = "http://127.0.0.1:8080";
pub const DEFAULT_LLM_SERVICE_URL: &str = "http://127.0.0.1:8081";

/// Per-hop timeouts nest: each is shorter than the caller's
/// (`QUERY_PROCESSOR_TIMEOUT_MS`, 30 s, in the gateway), so the innermost
/// failing hop times out first and the 504 names it.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_addr: SocketAddr,
    pub retrieval: Downstream,
    pub llm_service: Downstream,
    /// `RETRIEVAL_PROTOCOL`: `http` (`POST /retrieve`, the default) or `mcp`
    /// (the `search_documents` tool at `POST /mcp`).
    pub retrieval_protocol: RetrievalProtocol,
}

/// How query-processor asks retrieval for passages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetrievalProtocol {
    Http,
    Mcp,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            listen_addr: config::listen_addr(DEFAULT_LISTEN_ADDR)?,
            retrieval: Downstream::new(
                "retrieval",
                &config::env_string("RETRIEVAL_URL", DEFAULT_RETRIEVAL_URL),
                config::env_millis("RETRIEVAL_TIMEOUT_MS", 5_000)?,
            )?,
            llm_service: Downstream::new(
                "llm-service",
                &config::env_string("LLM_SERVICE_URL", DEFAULT_LLM_SERVICE_URL),
                config::env_millis("LLM_SERVICE_TIMEOUT_MS", 20_000)?,
            )?,
            retrieval_protocol: match config::env_string("RETRIEVAL_PROTOCOL", "http").as_str() {
                "http" => RetrievalProtocol::Http,
                "mcp" => RetrievalProtocol::Mcp,
                other => anyhow::bail!("RETRIEVAL_PROTOCOL must be http or mcp, got {other:?}"),
            },
        })
    }
}
