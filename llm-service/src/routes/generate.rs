use std::time::Instant;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use shared::attributes::gen_ai;
use shared::dialects;
use shared::error::ApiError;
use shared::http::json_body::JsonBody;
use shared::metrics::{self, GenAiOperation};
use shared::prices;
use shared::provider::{Api, ProviderError};
use shared::query::{self, QueryError};
use shared::redact::Content;
use shared::streaming;
use shared::wire::{
    GenerateRequest, GenerateResponse, MAX_TOP_K, Passage, StreamDone, StreamEvent, Usage,
};
use tracing::{Span, field};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::generator::{self, Generation, GeneratorConfig, MODEL_NAME};
use crate::model::Model;
use crate::remote::ChatStream;
use crate::tokens;
use futures_util::StreamExt;

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("at most {MAX_TOP_K} contexts are accepted, got {0}")]
    TooManyContexts(usize),
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl ApiError for GenerateError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Query(err) => err.status(),
            Self::TooManyContexts(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Provider(err) => err.status(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::Query(err) => err.code(),
            Self::TooManyContexts(_) => "too_many_contexts",
            Self::Provider(err) => err.code(Api::Chat),
        }
    }
}
/// The body of a provider failure says what failed, not the provider's own
/// words (which may quote the prompt); the span and the log line keep them.
impl actix_web::ResponseError for GenerateError {
    fn status_code(&self) -> StatusCode {
        ApiError::status(self)
    }
    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Provider(err) => shared::error::respond_summary(self, &err.summary()),
            _ => shared::error::respond(self),
        }
    }
}

/// The normalised query (`shared::query`), or why the request cannot be
/// served.
fn validate(request: &GenerateRequest) -> Result<String, GenerateError> {
    let query = query::validate(&request.query)?;
    if request.contexts.len() > MAX_TOP_K as usize {
        return Err(GenerateError::TooManyContexts(request.contexts.len()));
    }
    Ok(query)
}

/// `POST /generate`: answer a question from the given contexts.
pub async fn generate(
    JsonBody(request): JsonBody<GenerateRequest>,
    model: web::Data<Model>,
) -> Result<HttpResponse, GenerateError> {
    let query = validate(&request)?;
    let response = match model.get_ref() {
        Model::Offline(config) => offline(&query, &request.contexts, config),
        Model::Remote(chat) => {
            let completion = chat.complete(&query, &request.contexts).await?;
            GenerateResponse {
                answer: completion.answer,
                model: completion.model,
                usage: completion.usage,
                finish_reason: completion.finish_reason,
            }
        }
    };
    Ok(HttpResponse::Ok().json(response))
}

/// `POST /generate/stream`: the same answer as Server-Sent Events, chunk by
/// chunk as the model produces it (see [`shared::wire::StreamEvent`]).
///
/// The `chat {model}` span stays open until the last chunk is out and gets
/// `gen_ai.request.stream = true`, `gen_ai.response.time_to_first_chunk` and,
/// once known, the usage. A provider failure before the first chunk is an
/// ordinary error response; after it, an `error` event.
pub async fn generate_stream(
    JsonBody(request): JsonBody<GenerateRequest>,
    model: web::Data<Model>,
) -> Result<HttpResponse, GenerateError> {
    let query = validate(&request)?;
    let chat = match model.get_ref() {
        Model::Offline(config) => offline_stream(&query, &request.contexts, config),
        Model::Remote(chat) => chat.stream(&query, &request.contexts).await?,
    };
    let ChatStream { span, events } = chat;
    // The chat span and the SERVER span end when the stream does.
    Ok(streaming::respond(
        events,
        vec![span, Span::current()],
        |_, _| {},
    ))
}

/// The offline generator's `chat {model}` span, with the request facts.
fn offline_span(query: &str, contexts: &[Passage], config: &GeneratorConfig) -> Span {
    // GenAI inference span: name `{gen_ai.operation.name} {gen_ai.request.model}`.
    // INTERNAL, because the offline model runs in this process; a call to a
    // hosted API is CLIENT (`crate::remote`).
    let span = tracing::info_span!(
        "chat",
        otel.name = %format!("chat {MODEL_NAME}"),
        otel.kind = "internal",
        "gen_ai.operation.name" = "chat",
        "gen_ai.provider.name" = gen_ai::PROVIDER_RAGTRACE,
        "gen_ai.request.model" = MODEL_NAME,
        "gen_ai.request.max_tokens" = config.max_output_tokens as i64,
        "gen_ai.request.stream" = field::Empty,
        "gen_ai.output.type" = "text",
        // Known once the model has answered (`record_generation`).
        "gen_ai.response.model" = field::Empty,
        "gen_ai.usage.input_tokens" = field::Empty,
        "gen_ai.usage.output_tokens" = field::Empty,
        "gen_ai.response.time_to_first_chunk" = field::Empty,
    );
    dialects::input(&span, &Content::capture(query));
    // What the offline model reads (its token count is the input usage);
    // built only when content capture is on.
    let prompt = Content::capture_with(|| generator::prompt_text(query, contexts));
    dialects::chat_input(&span, None, &prompt);
    span
}

/// The offline model's metric attributes: in-process, so no
/// `server.address`/`server.port`.
const OFFLINE_OPERATION: GenAiOperation<'static> = GenAiOperation {
    operation: gen_ai::operation::CHAT,
    provider: gen_ai::PROVIDER_RAGTRACE,
    request_model: MODEL_NAME,
    response_model: Some(MODEL_NAME),
    server_address: None,
    server_port: None,
    error_type: None,
};

/// Response, usage and cost (0: the offline model is free), known only once
/// the model has answered; the operation's metrics with them (it cannot fail).
fn record_generation(span: &Span, generation: &Generation, duration: std::time::Duration) {
    let finish_reason = generation.finish_reason.as_str();
    span.record("gen_ai.response.model", MODEL_NAME);
    span.set_attribute(
        gen_ai::RESPONSE_FINISH_REASONS,
        gen_ai::finish_reasons(finish_reason),
    );
    span.record("gen_ai.usage.input_tokens", generation.input_tokens as i64);
    span.record(
        "gen_ai.usage.output_tokens",
        generation.output_tokens as i64,
    );
    prices::record_cost(
        span,
        &OFFLINE_OPERATION,
        generation.input_tokens,
        generation.output_tokens,
    );
    let answer = Content::capture(&generation.answer);
    dialects::output(span, &answer);
    dialects::chat_output(span, &answer, finish_reason);
    metrics::record_operation(
        &OFFLINE_OPERATION,
        duration,
        Some(generation.input_tokens),
        Some(generation.output_tokens),
    );
}

fn usage(generation: &Generation) -> Usage {
    Usage {
        input_tokens: generation.input_tokens,
        output_tokens: generation.output_tokens,
    }
}

/// The offline generator, inside its `chat {model}` span.
fn offline(query: &str, contexts: &[Passage], config: &GeneratorConfig) -> GenerateResponse {
    let span = offline_span(query, contexts, config);
    let started = Instant::now();
    let generation = span.in_scope(|| generator::generate(query, contexts, config));
    record_generation(&span, &generation, started.elapsed());
    GenerateResponse {
        usage: usage(&generation),
        answer: generation.answer,
        model: MODEL_NAME.to_owned(),
        finish_reason: generation.finish_reason.as_str().to_owned(),
    }
}

/// The offline generator, streamed: the answer is extracted at once, then
/// sent one token piece per `delta` event, `config.stream_chunk_delay` apart
/// (0 by default; a delay makes streaming visible by eye and lets tests
/// disconnect mid-answer).
fn offline_stream(query: &str, contexts: &[Passage], config: &GeneratorConfig) -> ChatStream {
    let started = Instant::now();
    let span = offline_span(query, contexts, config);
    span.record("gen_ai.request.stream", true);
    let generation = span.in_scope(|| generator::generate(query, contexts, config));
    let chunks: Vec<String> = tokens::pieces(&generation.answer)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let delay = config.stream_chunk_delay;
    let first = span.clone();
    let deltas =
        futures_util::stream::iter(chunks.into_iter().enumerate()).then(move |(i, chunk)| {
            let first = first.clone();
            async move {
                if !delay.is_zero() {
                    actix_web::rt::time::sleep(delay).await;
                }
                if i == 0 {
                    let after = started.elapsed();
                    first.record("gen_ai.response.time_to_first_chunk", after.as_secs_f64());
                    metrics::record_time_to_first_chunk(&OFFLINE_OPERATION, after);
                }
                StreamEvent::Delta(chunk)
            }
        });
    // Recorded when the last chunk has been produced, not before: a client
    // that leaves early ends the span without a response or usage, and the
    // operation is counted as `cancelled` (the guard, dropped unfinished).
    let finished = span.clone();
    let guard = CancelGuard {
        started,
        armed: true,
    };
    let done = futures_util::stream::once(async move {
        guard.disarm();
        record_generation(&finished, &generation, started.elapsed());
        StreamEvent::Done(StreamDone {
            model: MODEL_NAME.to_owned(),
            usage: usage(&generation),
            finish_reason: generation.finish_reason.as_str().to_owned(),
            trace_id: None,
            trace_url: None,
            evaluations: Vec::new(),
        })
    });
    ChatStream {
        span,
        events: Box::pin(deltas.chain(done)),
    }
}

/// Counts an offline stream the client abandoned as a `cancelled` operation.
struct CancelGuard {
    started: Instant,
    armed: bool,
}

impl CancelGuard {
    /// The stream finished: nothing to count. (Consuming `self` also makes
    /// the `async move` block own the whole guard, not just one field.)
    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if self.armed {
            metrics::record_operation(
                &GenAiOperation {
                    error_type: Some(streaming::CANCELLED),
                    ..OFFLINE_OPERATION
                },
                self.started.elapsed(),
                None,
                None,
            );
        }
    }
}
