//! The streamed chat completion: the same `chat {model}` CLIENT span as
//! [`super::RemoteChat::complete`], kept open until the last chunk, with the
//! time to the first chunk and the usage the API reports at the end.

use std::pin::Pin;
use std::time::{Duration, Instant};

use async_openai::types::chat::{ChatCompletionResponseStream, ChatCompletionStreamOptions};
use futures_util::{Stream, StreamExt};
use shared::attributes::gen_ai;
use shared::error::ErrorBody;
use shared::metrics::{self, GenAiOperation};
use shared::prices;
use shared::provider::{Api, Endpoint, ProviderError};
use shared::wire::{Passage, Usage};
use shared::wire::{StreamDone, StreamEvent};
use tracing::{Instrument, Span};

use super::{Completion, RemoteChat, record_completion};

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
        // Usage, and so cost, only if the API sent it (a server that
        // ignores `include_usage` sends none; we never make up a 0).
        let usage = self.usage_reported.then_some(self.completion.usage);
        let operation = self.operation(None);
        if let Some(usage) = usage {
            prices::record_cost(
                &self.span,
                &operation,
                usage.input_tokens,
                usage.output_tokens,
            );
        }
        metrics::record_operation(
            &operation,
            self.started.elapsed(),
            usage.map(|u| u.input_tokens),
            usage.map(|u| u.output_tokens),
        );
        StreamEvent::Done(StreamDone {
            model: self.completion.model.clone(),
            usage: self.completion.usage,
            finish_reason: self.completion.finish_reason.clone(),
            trace_id: None,
            trace_url: None,
            evaluations: Vec::new(),
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
            message: err.summary(),
            trace_id: shared::telemetry::current_trace_id(),
        })
    }
}
