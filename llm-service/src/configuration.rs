//! Settings from the environment.

use std::net::SocketAddr;

use shared::config::{self, ConfigError};

use crate::generator::GeneratorConfig;

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8081";

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_addr: SocketAddr,
    pub generator: GeneratorConfig,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = GeneratorConfig::default();
        Ok(Self {
            listen_addr: config::listen_addr(DEFAULT_LISTEN_ADDR)?,
            generator: GeneratorConfig {
                max_sentences: config::env_or("GENERATOR_MAX_SENTENCES", defaults.max_sentences)?,
                max_output_tokens: config::env_or("LLM_MAX_TOKENS", defaults.max_output_tokens)?,
            },
        })
    }
}
