//! Settings from the environment.
//!
//! Nothing set: the offline extractive generator. `LLM_BASE_URL` +
//! `LLM_MODEL` switch to an OpenAI-compatible chat completions API.

use std::net::SocketAddr;

use shared::config::{self, ConfigError};

use crate::generator::GeneratorConfig;
use crate::remote::RemoteChatSettings;

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8081";

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_addr: SocketAddr,
    pub generator: GeneratorConfig,
    pub remote: Option<RemoteChatSettings>,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = GeneratorConfig::default();
        let max_tokens = config::env_parsed("LLM_MAX_TOKENS")?;
        let remote = match config::env_pair("LLM_BASE_URL", "LLM_MODEL")? {
            Some((base_url, model)) => Some(RemoteChatSettings {
                base_url,
                model,
                api_key: shared::provider::api_key("LLM_API_KEY"),
                provider: config::env_opt("LLM_PROVIDER"),
                temperature: config::env_parsed("LLM_TEMPERATURE")?,
                max_tokens,
                timeout: config::env_millis("LLM_TIMEOUT_MS", 15_000)?,
            }),
            None => None,
        };
        Ok(Self {
            listen_addr: config::listen_addr(DEFAULT_LISTEN_ADDR)?,
            generator: GeneratorConfig {
                max_sentences: config::env_or("GENERATOR_MAX_SENTENCES", defaults.max_sentences)?,
                max_output_tokens: max_tokens.map_or(defaults.max_output_tokens, u64::from),
                stream_chunk_delay: config::env_millis("GENERATOR_STREAM_DELAY_MS", 0)?,
            },
            remote,
        })
    }
}
