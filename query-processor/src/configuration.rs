//! Settings from the environment.

use std::net::SocketAddr;

use shared::client::Downstream;
use shared::config;

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:3000";
pub const DEFAULT_RETRIEVAL_URL: &str = "http://127.0.0.1:8080";
pub const DEFAULT_LLM_SERVICE_URL: &str = "http://127.0.0.1:8081";

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_addr: SocketAddr,
    pub retrieval: Downstream,
    pub llm_service: Downstream,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let timeout = config::env_millis("DOWNSTREAM_TIMEOUT_MS", 10_000)?;
        Ok(Self {
            listen_addr: config::listen_addr(DEFAULT_LISTEN_ADDR)?,
            retrieval: Downstream::new(
                "retrieval",
                &config::env_string("RETRIEVAL_URL", DEFAULT_RETRIEVAL_URL),
                timeout,
            )?,
            llm_service: Downstream::new(
                "llm-service",
                &config::env_string("LLM_SERVICE_URL", DEFAULT_LLM_SERVICE_URL),
                timeout,
            )?,
        })
    }
}
