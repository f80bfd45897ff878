//! Turning text into vectors: the built-in hashing embedder, or any
//! OpenAI-compatible `/v1/embeddings` endpoint through `async-openai`.
//!
//! Either way the call gets a GenAI `embeddings {model}` span. The built-in
//! model runs in-process (INTERNAL span); a remote one is a network call
//! (CLIENT span with `server.address`/`server.port`, and the usage the API
//! reported).

/// The built-in model lives in `shared`: query-processor's groundedness
/// evaluator embeds with the very same function.
pub use shared::hashing;

use hashing::HashingEmbedder;

use std::time::{Duration, Instant};

use async_openai::types::embeddings::{CreateEmbeddingRequestArgs, EmbeddingInput};
use shared::attributes::gen_ai;
use shared::dialects;
use shared::metrics::{self, GenAiOperation};
use shared::prices;
use shared::provider::{Api, Endpoint, ProviderError, Secret};
use tracing::{Instrument, field};

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
    endpoint: Endpoint,
    settings: RemoteEmbedderSettings,
}

impl Embedder {
    pub fn remote(settings: RemoteEmbedderSettings) -> Self {
        Self::Remote(Box::new(RemoteEmbedder {
            endpoint: Endpoint::new(
                &settings.base_url,
                &settings.api_key,
                settings.provider.as_deref(),
            ),
            settings,
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
            Self::Remote(r) => &r.endpoint.provider,
        }
    }

    /// Embed `texts`, in order, inside one `embeddings {model}` span.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ProviderError> {
        match self {
            Self::Hashing(hashing) => {
                let model = hashing.model_name();
                let tokens: usize = texts.iter().map(|t| hashing::tokens(t).len()).sum();
                // GenAI embeddings span: `embeddings {gen_ai.request.model}`,
                // INTERNAL (the model runs in this process).
                let span = tracing::info_span!(
                    "embeddings",
                    otel.name = %format!("embeddings {model}"),
                    otel.kind = "internal",
                    "gen_ai.operation.name" = "embeddings",
                    "gen_ai.provider.name" = gen_ai::PROVIDER_RAGTRACE,
                    "gen_ai.request.model" = model.as_str(),
                    "gen_ai.response.model" = model.as_str(),
                    "gen_ai.embeddings.dimension.count" = hashing.dimension() as i64,
                    "gen_ai.usage.input_tokens" = tokens as i64,
                );
                dialects::embedding_texts(&span, texts);
                let started = Instant::now();
                let vectors: Vec<Vec<f32>> =
                    span.in_scope(|| texts.iter().map(|t| hashing.embed(t)).collect());
                // In-process model: no server.address/port. It cannot fail.
                let operation = GenAiOperation {
                    operation: gen_ai::operation::EMBEDDINGS,
                    provider: gen_ai::PROVIDER_RAGTRACE,
                    request_model: &model,
                    response_model: Some(&model),
                    server_address: None,
                    server_port: None,
                    error_type: None,
                };
                // Free and local: a cost of 0.
                prices::record_cost(&span, &operation, tokens as u64, 0);
                metrics::record_operation(&operation, started.elapsed(), Some(tokens as u64), None);
                Ok(vectors)
            }
            Self::Remote(remote) => remote.embed(texts).await,
        }
    }
}

impl RemoteEmbedder {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ProviderError> {
        let model = &self.settings.model;
        // GenAI embeddings span, CLIENT: the model runs behind a network call.
        let span = tracing::info_span!(
            "embeddings",
            otel.name = %format!("embeddings {model}"),
            otel.kind = "client",
            "gen_ai.operation.name" = "embeddings",
            "gen_ai.provider.name" = self.endpoint.provider.as_str(),
            "gen_ai.request.model" = model.as_str(),
            "gen_ai.response.model" = field::Empty,
            "gen_ai.embeddings.dimension.count" = field::Empty,
            "gen_ai.usage.input_tokens" = field::Empty,
            "server.address" = %self.endpoint.host,
            "server.port" = i64::from(self.endpoint.port),
        );
        dialects::embedding_texts(&span, texts);
        let started = Instant::now();
        let result = self.call(texts).instrument(span.clone()).await;
        // The metrics carry the span's outcome (see llm-service's chat).
        let operation = self
            .endpoint
            .operation(gen_ai::operation::EMBEDDINGS, model);
        match &result {
            Ok((vectors, response_model, input_tokens)) => {
                let dimension = vectors.first().map_or(0, Vec::len);
                span.record("gen_ai.response.model", response_model.as_str());
                span.record("gen_ai.embeddings.dimension.count", dimension as i64);
                span.record("gen_ai.usage.input_tokens", i64::from(*input_tokens));
                let answered = GenAiOperation {
                    response_model: Some(response_model),
                    ..operation
                };
                prices::record_cost(&span, &answered, u64::from(*input_tokens), 0);
                metrics::record_operation(
                    &answered,
                    started.elapsed(),
                    Some(u64::from(*input_tokens)),
                    None,
                );
            }
            Err(err) => {
                shared::telemetry::record_error(&span, err.code(Api::Embeddings), &err.to_string());
                metrics::record_operation(
                    &GenAiOperation {
                        error_type: Some(err.code(Api::Embeddings)),
                        ..operation
                    },
                    started.elapsed(),
                    None,
                    None,
                );
            }
        }
        result.map(|(vectors, _, _)| vectors)
    }

    async fn call(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, String, u32), ProviderError> {
        let invalid = |message: String| ProviderError::InvalidResponse {
            provider: self.endpoint.provider.clone(),
            message,
        };
        let request = CreateEmbeddingRequestArgs::default()
            .model(self.settings.model.clone())
            .input(EmbeddingInput::StringArray(texts.to_vec()))
            .build()
            .map_err(|err| invalid(err.to_string()))?;
        let response = self
            .endpoint
            .call(
                self.settings.timeout,
                self.endpoint.client.embeddings().create(request),
            )
            .await?;
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
