//! Generation through any OpenAI-compatible chat completions API (OpenAI,
//! Ollama, vLLM, llama.cpp server, ...) with `async-openai`.
//!
//! The call is a GenAI inference span of kind CLIENT (the model is behind a
//! network call), named `chat {gen_ai.request.model}`, carrying the request
//! parameters before the call and, after it, exactly what the API reported:
//! response id and model, finish reasons, token usage. The API key never
//! reaches a span, a log line or an error body.

use std::time::{Duration, Instant};

use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessageArgs,
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequest,
    CreateChatCompletionRequestArgs,
};
use shared::attributes::gen_ai;
use shared::dialects;
use shared::metrics::{self, GenAiOperation};
use shared::prices;
use shared::provider::{Api, Endpoint, ProviderError, Secret};
use shared::redact::Content;
use shared::wire::{Passage, Usage};
use tracing::{Instrument, Span, field};
use tracing_opentelemetry::OpenTelemetrySpanExt;

mod stream;

pub use stream::ChatStream;

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
    endpoint: Endpoint,
    settings: RemoteChatSettings,
}

impl RemoteChat {
    pub fn new(settings: RemoteChatSettings) -> Self {
        Self {
            endpoint: Endpoint::new(
                &settings.base_url,
                &settings.api_key,
                settings.provider.as_deref(),
            ),
            settings,
        }
    }

    pub fn model(&self) -> &str {
        &self.settings.model
    }

    /// The RAG prompt: system instructions, then the numbered contexts and
    /// the question as the user message.
    pub fn messages(query: &str, contexts: &[Passage]) -> Vec<(&'static str, String)> {
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
        contexts: &[Passage],
    ) -> Result<CreateChatCompletionRequest, ProviderError> {
        let invalid = |err: async_openai::error::OpenAIError| ProviderError::InvalidResponse {
            provider: self.endpoint.provider.clone(),
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

    /// The `chat {model}` span, with the request facts. CLIENT: the model
    /// runs behind a network call.
    fn span(&self, query: &str, contexts: &[Passage]) -> Span {
        let model = &self.settings.model;
        let span = tracing::info_span!(
            "chat",
            otel.name = %format!("chat {model}"),
            otel.kind = "client",
            "gen_ai.operation.name" = "chat",
            "gen_ai.provider.name" = self.endpoint.provider.as_str(),
            "gen_ai.request.model" = model.as_str(),
            "gen_ai.request.temperature" = self.settings.temperature.map(f64::from),
            "gen_ai.request.max_tokens" = self.settings.max_tokens.map(i64::from),
            "gen_ai.request.stream" = field::Empty,
            "gen_ai.output.type" = "text",
            "server.address" = %self.endpoint.host,
            "server.port" = i64::from(self.endpoint.port),
            // Known once the model has answered (`record_completion`).
            "gen_ai.response.id" = field::Empty,
            "gen_ai.response.model" = field::Empty,
            "gen_ai.usage.input_tokens" = field::Empty,
            "gen_ai.usage.output_tokens" = field::Empty,
            "gen_ai.response.time_to_first_chunk" = field::Empty,
        );
        dialects::input(&span, &Content::capture(query));
        // The messages as sent, when content capture is on.
        if shared::redact::capture_content() {
            let messages = Self::messages(query, contexts);
            let system = Content::capture(&messages[0].1);
            let user = Content::capture(&messages[1].1);
            dialects::chat_input(&span, Some(&system), &user);
        }
        span
    }

    /// One chat completion inside a `chat {model}` CLIENT span.
    pub async fn complete(
        &self,
        query: &str,
        contexts: &[Passage],
    ) -> Result<Completion, ProviderError> {
        let model = &self.settings.model;
        let span = self.span(query, contexts);
        let started = Instant::now();
        let result = self.call(query, contexts).instrument(span.clone()).await;
        // The metrics carry the span's outcome: same model names, same
        // `error.type`, and the duration the caller waited (retries included).
        let operation = self.endpoint.operation(gen_ai::operation::CHAT, model);
        match &result {
            Ok((completion, response_id)) => {
                record_completion(&span, completion, Some(response_id));
                let usage = completion.usage;
                let answered = GenAiOperation {
                    response_model: Some(&completion.model),
                    ..operation
                };
                prices::record_cost(&span, &answered, usage.input_tokens, usage.output_tokens);
                metrics::record_operation(
                    &answered,
                    started.elapsed(),
                    Some(usage.input_tokens),
                    Some(usage.output_tokens),
                );
            }
            Err(err) => {
                shared::telemetry::record_error(&span, err.code(Api::Chat), &err.to_string());
                metrics::record_operation(
                    &GenAiOperation {
                        error_type: Some(err.code(Api::Chat)),
                        ..operation
                    },
                    started.elapsed(),
                    None,
                    None,
                );
            }
        }
        result.map(|(completion, _)| completion)
    }

    async fn call(
        &self,
        query: &str,
        contexts: &[Passage],
    ) -> Result<(Completion, String), ProviderError> {
        let request = self.request(query, contexts)?;
        // Generation has no side effects, so the client's retries are safe.
        let response = self
            .endpoint
            .call(
                self.settings.timeout,
                self.endpoint.client.chat().create(request),
            )
            .await?;
        let choice =
            response
                .choices
                .into_iter()
                .next()
                .ok_or_else(|| ProviderError::InvalidResponse {
                    provider: self.endpoint.provider.clone(),
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

/// Response facts, exactly as the API reported them.
fn record_completion(span: &Span, completion: &Completion, response_id: Option<&str>) {
    let usage = completion.usage;
    span.record("gen_ai.response.id", response_id);
    span.record("gen_ai.response.model", completion.model.as_str());
    span.set_attribute(
        gen_ai::RESPONSE_FINISH_REASONS,
        gen_ai::finish_reasons(&completion.finish_reason),
    );
    span.record("gen_ai.usage.input_tokens", usage.input_tokens as i64);
    span.record("gen_ai.usage.output_tokens", usage.output_tokens as i64);
    let answer = Content::capture(&completion.answer);
    dialects::output(span, &answer);
    dialects::chat_output(span, &answer, &completion.finish_reason);
}
