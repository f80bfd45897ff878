//! Generation through any OpenAI-compatible chat completions API (OpenAI,
//! Ollama, vLLM, llama.cpp server, ...) with `async-openai`.
//!
//! The call is a GenAI inference span of kind CLIENT (the model is behind a
//! network call), named `chat {gen_ai.request.model}`, carrying the request
//! parameters before the call and, after it, exactly what the API reported:
//! response id and model, finish reasons, token usage. The API key never
//! reaches a span, a log line or an error body.

use std::time::Duration;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessageArgs,
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs,
};
use opentelemetry::{Array, Value};
use shared::attributes::{confident, gen_ai};
use shared::genai::{Api, ProviderError, Secret};
use shared::wire::{Context, Usage};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The system instructions of the RAG prompt.
pub const SYSTEM_INSTRUCTIONS: &str = "You answer questions using only the numbered context passages \
you are given. Cite every passage you use as [n], where n is its number. If the passages do not \
contain the answer, say that you could not find it in the documents. Be concise.";

/// `LLM_*` settings.
#[derive(Debug, Clone)]
pub struct RemoteChatSettings {
    pub base_url: String,
    pub model: String,
    pub api_key: Secret,
    pub provider: Option<String>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    pub timeout: Duration,
}

/// What the API answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub answer: String,
    pub model: String,
    pub usage: Usage,
    pub finish_reason: String,
}

pub struct RemoteChat {
    client: Client<OpenAIConfig>,
    settings: RemoteChatSettings,
    provider: String,
    host: String,
    port: u16,
}

impl RemoteChat {
    pub fn new(settings: RemoteChatSettings) -> Self {
        let config = OpenAIConfig::new()
            .with_api_base(settings.base_url.trim_end_matches('/'))
            .with_api_key(settings.api_key.expose());
        let provider =
            shared::genai::provider_name(&settings.base_url, settings.provider.as_deref());
        let (host, port) = shared::genai::host_port(&settings.base_url);
        Self {
            client: Client::with_config(config),
            settings,
            provider,
            host,
            port,
        }
    }

    pub fn model(&self) -> &str {
        &self.settings.model
    }

    /// The RAG prompt: system instructions, then the numbered contexts and
    /// the question as the user message.
    pub fn messages(query: &str, contexts: &[Context]) -> Vec<(&'static str, String)> {
        let mut user = String::from("Context passages:\n");
        for (i, context) in contexts.iter().enumerate() {
            user.push_str(&format!(
                "[{}] ({}) {}\n",
                i + 1,
                context.source,
                context.text
            ));
        }
        if contexts.is_empty() {
            user.push_str("(none)\n");
        }
        user.push_str(&format!("\nQuestion: {query}"));
        vec![("system", SYSTEM_INSTRUCTIONS.to_owned()), ("user", user)]
    }

    fn request(
        &self,
        query: &str,
        contexts: &[Context],
    ) -> Result<CreateChatCompletionRequest, ProviderError> {
        let invalid = |err: async_openai::error::OpenAIError| ProviderError::InvalidResponse {
            provider: self.provider.clone(),
            message: err.to_string(),
        };
        let messages: Vec<ChatCompletionRequestMessage> = Self::messages(query, contexts)
            .into_iter()
            .map(|(role, content)| match role {
                "system" => ChatCompletionRequestSystemMessageArgs::default()
                    .content(content)
                    .build()
                    .map(Into::into),
                _ => ChatCompletionRequestUserMessageArgs::default()
                    .content(content)
                    .build()
                    .map(Into::into),
            })
            .collect::<Result<_, _>>()
            .map_err(invalid)?;
        let mut request = CreateChatCompletionRequestArgs::default();
        request
            .model(self.settings.model.clone())
            .messages(messages);
        if let Some(temperature) = self.settings.temperature {
            request.temperature(temperature);
        }
        if let Some(max_tokens) = self.settings.max_tokens {
            // `max_tokens`, not `max_completion_tokens`: it is deprecated by
            // OpenAI but the one every compatible server understands.
            #[allow(deprecated)]
            request.max_tokens(max_tokens);
        }
        request.build().map_err(invalid)
    }

    /// One chat completion inside a `chat {model}` CLIENT span.
    pub async fn complete(
        &self,
        query: &str,
        contexts: &[Context],
    ) -> Result<Completion, ProviderError> {
        let model = &self.settings.model;
        let span = tracing::info_span!(
            "chat",
            otel.name = %format!("{} {model}", gen_ai::operation::CHAT),
            otel.kind = "client",
            "gen_ai.operation.name" = gen_ai::operation::CHAT,
            "gen_ai.provider.name" = %self.provider,
            "gen_ai.request.model" = %model,
            "gen_ai.output.type" = "text",
            "server.address" = %self.host,
            "server.port" = self.port,
            "confident.span.type" = confident::span_type::LLM,
            "confident.llm.model" = %model,
        );
        if let Some(temperature) = self.settings.temperature {
            span.set_attribute(gen_ai::REQUEST_TEMPERATURE, f64::from(temperature));
        }
        if let Some(max_tokens) = self.settings.max_tokens {
            span.set_attribute(gen_ai::REQUEST_MAX_TOKENS, i64::from(max_tokens));
        }
        let result = self.call(query, contexts).instrument(span.clone()).await;
        match &result {
            Ok((completion, response_id)) => {
                span.set_attribute(gen_ai::RESPONSE_ID, response_id.clone());
                span.set_attribute(gen_ai::RESPONSE_MODEL, completion.model.clone());
                span.set_attribute(
                    gen_ai::RESPONSE_FINISH_REASONS,
                    Value::Array(Array::String(vec![completion.finish_reason.clone().into()])),
                );
                // Usage exactly as the API reported it.
                let (input, output) = (
                    completion.usage.input_tokens as i64,
                    completion.usage.output_tokens as i64,
                );
                span.set_attribute(gen_ai::USAGE_INPUT_TOKENS, input);
                span.set_attribute(gen_ai::USAGE_OUTPUT_TOKENS, output);
                span.set_attribute(confident::LLM_INPUT_TOKEN_COUNT, input);
                span.set_attribute(confident::LLM_OUTPUT_TOKEN_COUNT, output);
                if shared::telemetry::capture_content() {
                    span.set_attribute(confident::SPAN_INPUT, query.to_owned());
                    span.set_attribute(confident::SPAN_OUTPUT, completion.answer.clone());
                }
            }
            Err(err) => {
                shared::telemetry::record_error(&span, err.code(Api::Chat), &err.to_string())
            }
        }
        result.map(|(completion, _)| completion)
    }

    async fn call(
        &self,
        query: &str,
        contexts: &[Context],
    ) -> Result<(Completion, String), ProviderError> {
        let request = self.request(query, contexts)?;
        // async-openai retries 429/5xx/connection errors (3 times, with
        // backoff; generation has no side effects, so that is safe); the
        // deadline bounds the whole call, retries included.
        let response =
            tokio::time::timeout(self.settings.timeout, self.client.chat().create(request))
                .await
                .map_err(|_| ProviderError::Timeout {
                    provider: self.provider.clone(),
                    after: self.settings.timeout,
                })?
                .map_err(|err| {
                    ProviderError::from_openai(&self.provider, err, &self.settings.api_key)
                })?;
        let choice =
            response
                .choices
                .into_iter()
                .next()
                .ok_or_else(|| ProviderError::InvalidResponse {
                    provider: self.provider.clone(),
                    message: "no choices in the response".into(),
                })?;
        let finish_reason = choice
            .finish_reason
            .and_then(|reason| serde_json::to_value(reason).ok())
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned());
        let usage = response.usage.map_or_else(Usage::default, |u| Usage {
            input_tokens: u64::from(u.prompt_tokens),
            output_tokens: u64::from(u.completion_tokens),
        });
        Ok((
            Completion {
                answer: choice.message.content.unwrap_or_default(),
                model: response.model,
                usage,
                finish_reason,
            },
            response.id,
        ))
    }
}
