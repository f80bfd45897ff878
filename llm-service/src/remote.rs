//! Generation through any OpenAI-compatible chat completions API (OpenAI,
//! Ollama, vLLM, llama.cpp server, ...) with `async-openai`.
//!
//! The call is a GenAI inference span of kind CLIENT (the model is behind a
//! network call), named `chat {gen_ai.request.model}`, carrying the request
//! parameters before the call and, after it, exactly what the API reported:
//! response id and model, finish reasons, token usage. The API key never
//! reaches a span, a log line or an error body.

use std::pin::Pin;
use std::time::{Duration, Instant};

use async_openai::types::chat::{
    ChatCompletionRequestMessage, ChatCompletionRequestSystemMessageArgs,
    ChatCompletionRequestUserMessageArgs, ChatCompletionResponseStream,
    ChatCompletionStreamOptions, CreateChatCompletionRequest, CreateChatCompletionRequestArgs,
};
use futures_util::{Stream, StreamExt};
use shared::attributes::gen_ai;
use shared::dialects;
use shared::error::ErrorBody;
use shared::metrics::{self, GenAiOperation};
use shared::provider::{Api, Endpoint, ProviderError, Secret};
use shared::redact::Content;
use shared::wire::{Passage, Usage};
use shared::wire::{StreamDone, StreamEvent};
use tracing::{Instrument, Span, field};
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
                metrics::record_operation(
                    &GenAiOperation {
                        response_model: Some(&completion.model),
                        ..operation
                    },
                    started.elapsed(),
                    Some(completion.usage.input_tokens),
                    Some(completion.usage.output_tokens),
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

/// A chat answer being streamed: its `chat {model}` span (open until the
/// stream ends), when the request started, and the events.
pub struct ChatStream {
    pub span: Span,
    pub events: Pin<Box<dyn Stream<Item = StreamEvent>>>,
}

impl RemoteChat {
    /// One streamed chat completion (`"stream": true` with
    /// `stream_options.include_usage`, so the API's last chunk reports the
    /// token usage) inside a `chat {model}` CLIENT span.
    ///
    /// Errors before the first chunk (the API refusing the request) are
    /// returned; later ones become an `error` event. `LLM_TIMEOUT_MS` bounds
    /// the wait for the response head and then for each chunk.
    pub async fn stream(
        &self,
        query: &str,
        contexts: &[Passage],
    ) -> Result<ChatStream, ProviderError> {
        let started = Instant::now();
        let span = self.span(query, contexts);
        span.record("gen_ai.request.stream", true);
        let opened = async {
            let mut request = self.request(query, contexts)?;
            request.stream_options = Some(ChatCompletionStreamOptions {
                include_usage: Some(true),
                include_obfuscation: None,
            });
            self.endpoint
                .call(
                    self.settings.timeout,
                    self.endpoint.client.chat().create_stream(request),
                )
                .await
        }
        .instrument(span.clone())
        .await;
        let chunks = match opened {
            Ok(chunks) => chunks,
            Err(err) => {
                shared::telemetry::record_error(&span, err.code(Api::Chat), &err.to_string());
                return Err(err);
            }
        };
        let state = Accumulator {
            chunks,
            endpoint: self.endpoint.clone(),
            timeout: self.settings.timeout,
            span: span.clone(),
            completion: Completion {
                answer: String::new(),
                model: self.settings.model.clone(),
                usage: Usage::default(),
                finish_reason: "unknown".to_owned(),
            },
            response_id: None,
            request_model: self.settings.model.clone(),
            usage_reported: false,
            started,
            first_chunk: false,
            ended: false,
        };
        let events = futures_util::stream::unfold(state, |mut state| async move {
            let event = state.next_event().await?;
            Some((event, state))
        });
        Ok(ChatStream {
            span,
            events: Box::pin(events),
        })
    }
}

/// Turns the API's chunks into our events, keeping what the span needs.
struct Accumulator {
    chunks: ChatCompletionResponseStream,
    endpoint: Endpoint,
    timeout: Duration,
    span: Span,
    completion: Completion,
    response_id: Option<String>,
    request_model: String,
    usage_reported: bool,
    started: Instant,
    first_chunk: bool,
    ended: bool,
}

impl Drop for Accumulator {
    fn drop(&mut self) {
        if !self.ended {
            // Our client left mid-answer: the API call is cut off (and what
            // it generated so far is billed), so it counts, as `cancelled`.
            metrics::record_operation(
                &self.operation(Some(shared::streaming::CANCELLED)),
                self.started.elapsed(),
                None,
                None,
            );
        }
    }
}

impl Accumulator {
    async fn next_event(&mut self) -> Option<StreamEvent> {
        if self.ended {
            return None;
        }
        loop {
            let next = tokio::time::timeout(self.timeout, self.chunks.next()).await;
            let chunk = match next {
                Err(_) => {
                    return Some(self.fail(ProviderError::Timeout {
                        provider: self.endpoint.provider.clone(),
                        after: self.timeout,
                    }));
                }
                Ok(None) => return Some(self.finish()),
                Ok(Some(Err(err))) => {
                    let err = self.endpoint.error(err);
                    return Some(self.fail(err));
                }
                Ok(Some(Ok(chunk))) => chunk,
            };
            self.response_id.get_or_insert(chunk.id);
            self.completion.model = chunk.model;
            if let Some(usage) = chunk.usage {
                self.usage_reported = true;
                self.completion.usage = Usage {
                    input_tokens: u64::from(usage.prompt_tokens),
                    output_tokens: u64::from(usage.completion_tokens),
                };
            }
            let Some(choice) = chunk.choices.into_iter().next() else {
                continue;
            };
            if let Some(reason) = choice
                .finish_reason
                .and_then(|reason| serde_json::to_value(reason).ok())
                .and_then(|value| value.as_str().map(str::to_owned))
            {
                self.completion.finish_reason = reason;
            }
            match choice.delta.content {
                Some(text) if !text.is_empty() => {
                    if !std::mem::replace(&mut self.first_chunk, true) {
                        let after = self.started.elapsed();
                        let after_s = after.as_secs_f64();
                        self.span
                            .record("gen_ai.response.time_to_first_chunk", after_s);
                        metrics::record_time_to_first_chunk(&self.operation(None), after);
                    }
                    self.completion.answer.push_str(&text);
                    return Some(StreamEvent::Delta(text));
                }
                _ => continue,
            }
        }
    }

    /// The metric attributes of this call; the response model once known.
    fn operation(&self, error_type: Option<&'static str>) -> GenAiOperation<'_> {
        GenAiOperation {
            response_model: self
                .response_id
                .as_ref()
                .map(|_| self.completion.model.as_str()),
            error_type,
            ..self
                .endpoint
                .operation(gen_ai::operation::CHAT, &self.request_model)
        }
    }

    fn finish(&mut self) -> StreamEvent {
        self.ended = true;
        record_completion(&self.span, &self.completion, self.response_id.as_deref());
        // Usage only if the API sent it (a server that ignores
        // `include_usage` sends none; we never make up a 0).
        let usage = self.usage_reported.then_some(self.completion.usage);
        metrics::record_operation(
            &self.operation(None),
            self.started.elapsed(),
            usage.map(|u| u.input_tokens),
            usage.map(|u| u.output_tokens),
        );
        StreamEvent::Done(StreamDone {
            model: self.completion.model.clone(),
            usage: self.completion.usage,
            finish_reason: self.completion.finish_reason.clone(),
            trace_id: None,
        })
    }

    fn fail(&mut self, err: ProviderError) -> StreamEvent {
        self.ended = true;
        metrics::record_operation(
            &self.operation(Some(err.code(Api::Chat))),
            self.started.elapsed(),
            None,
            None,
        );
        StreamEvent::Error(ErrorBody {
            error: err.code(Api::Chat).to_owned(),
            message: err.to_string(),
            trace_id: shared::telemetry::current_trace_id(),
        })
    }
}
