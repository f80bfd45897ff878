//! Settings from the environment.

use std::net::SocketAddr;

use shared::client::Downstream;
use shared::config;
use shared::provider::Secret;

pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8000";
pub const DEFAULT_QUERY_PROCESSOR_URL: &str = "http://127.0.0.1:3000";

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_addr: SocketAddr,
    pub query_processor: Downstream,
    /// `DEPLOYMENT_ENVIRONMENT`, recorded as `confident.trace.environment`.
    pub environment: String,
    /// `GATEWAY_TRUST_INCOMING_CONTEXT` (default `true`): continue a caller's
    /// `traceparent`/`baggage`, or (`false`, for a public endpoint) start a
    /// new trace and link to the caller's.
    pub trust_incoming_context: bool,
    /// `GATEWAY_API_KEY`: when set, `/chat` requires `Authorization: Bearer <key>`.
    pub api_key: Option<Secret>,
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            listen_addr: config::listen_addr(DEFAULT_LISTEN_ADDR)?,
            query_processor: Downstream::new(
                "query-processor",
                &config::env_string("QUERY_PROCESSOR_URL", DEFAULT_QUERY_PROCESSOR_URL),
                config::env_millis("QUERY_PROCESSOR_TIMEOUT_MS", 30_000)?,
            )?,
            environment: config::env_string("DEPLOYMENT_ENVIRONMENT", "development"),
            trust_incoming_context: config::env_or("GATEWAY_TRUST_INCOMING_CONTEXT", true)?,
            api_key: config::env_opt("GATEWAY_API_KEY").map(Secret::new),
        })
    }
}
