//! Turning text into vectors: the built-in hashing embedder, or any
//! OpenAI-compatible `/v1/embeddings` endpoint through `async-openai`.
//!
//! Either way the call gets a GenAI `embeddings {model}` span. The built-in
//! model runs in-process (INTERNAL span); a remote one is a network call
//! (CLIENT span with `server.address`/`server.port`, and the usage the API
//! reported).

use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::embeddings::{CreateEmbeddingRequestArgs, EmbeddingInput};
use shared::attributes::gen_ai;
use shared::genai::{Api, ProviderError, Secret};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::embedder::{self, HashingEmbedder};

/// Settings for a remote embedder (`EMBEDDINGS_*`).
#[derive(Debug, Clone)]
pub struct RemoteEmbedderSettings {
    pub base_url: String,
    pub model: String,
    pub api_key: Secret,
    pub provider: Option<String>,
    pub timeout: Duration,
}

pub enum Embedder {
    Hashing(HashingEmbedder),
    Remote(Box<RemoteEmbedder>),
}

pub struct RemoteEmbedder {
    client: Client<OpenAIConfig>,
    settings: RemoteEmbedderSettings,
    provider: String,
    host: String,
    port: u16,
}

impl Embedder {
    pub fn remote(settings: RemoteEmbedderSettings) -> Self {
        let config = OpenAIConfig::new()
            .with_api_base(settings.base_url.trim_end_matches('/'))
            .with_api_key(settings.api_key.expose());
        let provider =
            shared::genai::provider_name(&settings.base_url, settings.provider.as_deref());
        let (host, port) = shared::genai::host_port(&settings.base_url);
        Self::Remote(Box::new(RemoteEmbedder {
            client: Client::with_config(config),
            settings,
            provider,
            host,
            port,
        }))
    }

    /// `gen_ai.request.model`.
    pub fn model_name(&self) -> String {
        match self {
            Self::Hashing(h) => h.model_name(),
            Self::Remote(r) => r.settings.model.clone(),
        }
    }

    /// `gen_ai.provider.name`.
    pub fn provider(&self) -> &str {
        match self {
            Self::Hashing(_) => gen_ai::PROVIDER_RAGTRACE,
            Self::Remote(r) => &r.provider,
        }
    }

    /// Embed `texts`, in order, inside one `embeddings {model}` span.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ProviderError> {
        match self {
            Self::Hashing(hashing) => {
                let model = hashing.model_name();
                let span = tracing::info_span!(
                    "embeddings",
                    otel.name = %format!("embeddings {model}"),
                    otel.kind = "internal",
                    "gen_ai.operation.name" = gen_ai::operation::EMBEDDINGS,
                    "gen_ai.provider.name" = gen_ai::PROVIDER_RAGTRACE,
                    "gen_ai.request.model" = %model,
                    "gen_ai.response.model" = %model,
                    "gen_ai.embeddings.dimension.count" = hashing.dimension(),
                    "gen_ai.usage.input_tokens" =
                        texts.iter().map(|t| embedder::tokens(t).len()).sum::<usize>(),
                );
                let _entered = span.enter();
                Ok(texts.iter().map(|t| hashing.embed(t)).collect())
            }
            Self::Remote(remote) => remote.embed(texts).await,
        }
    }
}

impl RemoteEmbedder {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ProviderError> {
        let model = &self.settings.model;
        // CLIENT: the model runs behind a network call.
        let span = tracing::info_span!(
            "embeddings",
            otel.name = %format!("embeddings {model}"),
            otel.kind = "client",
            "gen_ai.operation.name" = gen_ai::operation::EMBEDDINGS,
            "gen_ai.provider.name" = %self.provider,
            "gen_ai.request.model" = %model,
            "server.address" = %self.host,
            "server.port" = self.port,
        );
        let result = self.call(texts).instrument(span.clone()).await;
        match &result {
            Ok((vectors, response_model, input_tokens)) => {
                span.set_attribute(gen_ai::RESPONSE_MODEL, response_model.clone());
                span.set_attribute(gen_ai::USAGE_INPUT_TOKENS, i64::from(*input_tokens));
                if let Some(first) = vectors.first() {
                    span.set_attribute(gen_ai::EMBEDDINGS_DIMENSION_COUNT, first.len() as i64);
                }
            }
            Err(err) => {
                shared::telemetry::record_error(&span, err.code(Api::Embeddings), &err.to_string())
            }
        }
        result.map(|(vectors, _, _)| vectors)
    }

    async fn call(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, String, u32), ProviderError> {
        let invalid = |message: String| ProviderError::InvalidResponse {
            provider: self.provider.clone(),
            message,
        };
        let request = CreateEmbeddingRequestArgs::default()
            .model(self.settings.model.clone())
            .input(EmbeddingInput::StringArray(texts.to_vec()))
            .build()
            .map_err(|err| invalid(err.to_string()))?;
        // async-openai retries 429/5xx/connection errors (3 times, with
        // backoff); the deadline bounds the whole call, retries included.
        let response = tokio::time::timeout(
            self.settings.timeout,
            self.client.embeddings().create(request),
        )
        .await
        .map_err(|_| ProviderError::Timeout {
            provider: self.provider.clone(),
            after: self.settings.timeout,
        })?
        .map_err(|err| ProviderError::from_openai(&self.provider, err, &self.settings.api_key))?;
        if response.data.len() != texts.len() {
            return Err(invalid(format!(
                "{} embeddings for {} inputs",
                response.data.len(),
                texts.len()
            )));
        }
        let mut data = response.data;
        data.sort_by_key(|e| e.index);
        let vectors: Vec<Vec<f32>> = data.into_iter().map(|e| e.embedding).collect();
        if vectors
            .iter()
            .any(|v| v.is_empty() || v.len() != vectors[0].len())
        {
            return Err(invalid("embeddings of unequal or zero dimension".into()));
        }
        Ok((vectors, response.model, response.usage.prompt_tokens))
    }
}
