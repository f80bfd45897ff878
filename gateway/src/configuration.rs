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
    /// `TRACE_UI_URL`: where a trace can be seen, as a template with
    /// `{trace_id}` (or a prefix the id is appended to), e.g.
    /// `http://localhost:16686/trace/{trace_id}` for Jaeger.
    pub trace_ui_url: Option<String>,
    /// `CONFIDENT_METRIC_COLLECTION`: the Confident AI metric collection
    /// that evaluates every trace online (`confident.trace.metric_collection`).
    pub confident_metric_collection: Option<String>,
}

impl Settings {
    /// The link to `trace_id` in the trace UI, if one is configured.
    pub fn trace_url(&self, trace_id: &str) -> Option<String> {
        let template = self.trace_ui_url.as_deref()?;
        Some(match template.contains("{trace_id}") {
            true => template.replace("{trace_id}", trace_id),
            false => format!("{template}{trace_id}"),
        })
    }
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
            trace_ui_url: config::env_opt("TRACE_UI_URL"),
            confident_metric_collection: config::env_opt("CONFIDENT_METRIC_COLLECTION"),
        })
    }
}
