use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use futures_util::StreamExt;
use opentelemetry::KeyValue;
use opentelemetry::baggage::BaggageExt;
use shared::attributes::baggage;
use shared::dialects;
use shared::error::ApiError;
use shared::http::downstream_error::DownstreamError;
use shared::http::error_codes;
use shared::http::json_body::JsonBody;
use shared::propagation;
use shared::query::{self, QueryError};
use shared::redact::Content;
use shared::streaming;
use shared::telemetry;
use shared::wire::{ChatRequest, ChatResponse, ProcessRequest, ProcessResponse};
use shared::wire::{ErrorBody, StreamDone, StreamEvent};
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::configuration::Settings;

const AGENT_NAME: &str = "ragtrace";
const MAX_ID_CHARS: usize = 128;
use shared::propagation::{MAX_TAG_CHARS, MAX_TAGS};

#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("{0} must be 1 to {MAX_ID_CHARS} printable characters")]
    InvalidId(&'static str),
    #[error("tags: at most {MAX_TAGS} tags of 1 to {MAX_TAG_CHARS} printable characters each")]
    InvalidTags,
    #[error(transparent)]
    Downstream(#[from] DownstreamError),
}

impl ApiError for ChatError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Query(err) => err.status(),
            Self::Downstream(err) => err.status(),
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::Query(err) => err.code(),
            Self::InvalidId(_) => "invalid_id",
            Self::InvalidTags => "invalid_tags",
            Self::Downstream(err) => err.code(),
        }
    }
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Downstream(err) => err.retry_after(),
            _ => None,
        }
    }
}

/// The gateway is the public edge: a downstream failure answers with its
/// code and status and the code's fixed message (`shared::http::error_codes`);
/// the whole cause, hops and addresses included, stays on the spans and in
/// the log line. The client's own mistakes keep their message, which only
/// describes the request.
impl actix_web::ResponseError for ChatError {
    fn status_code(&self) -> StatusCode {
        ApiError::status(self)
    }
    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Downstream(err) => {
                shared::error::respond_summary(self, error_codes::public_message(err.code()))
            }
            _ => shared::error::respond(self),
        }
    }
}

/// A downstream's `error` event as the public client sees it: the code, the
/// code's fixed message and our trace id. The callee's message is on the
/// CLIENT span that received it.
fn public_event(event: StreamEvent, trace_id: &str) -> StreamEvent {
    match event {
        StreamEvent::Error(body) => {
            let known = error_codes::relayed(&body.error).unwrap_or(&error_codes::BAD_GATEWAY);
            StreamEvent::Error(ErrorBody {
                error: known.code.to_owned(),
                message: known.message.to_owned(),
                trace_id: trace_id.to_owned(),
            })
        }
        other => other,
    }
}

fn printable(value: &str, max: usize) -> bool {
    let chars = value.chars().count();
    (1..=max).contains(&chars) && !value.chars().any(char::is_control)
}

/// The request with its query normalised (`shared::query`), or why it
/// cannot be served. `top_k` is checked but travels on as sent: the default
/// is applied where it is used, in query-processor.
fn validate(mut request: ChatRequest) -> Result<ChatRequest, ChatError> {
    request.query = query::validate(&request.query)?;
    query::top_k(request.top_k)?;
    for (name, id) in [
        ("user_id", &request.user_id),
        ("session_id", &request.session_id),
    ] {
        if id.as_deref().is_some_and(|id| !printable(id, MAX_ID_CHARS)) {
            return Err(ChatError::InvalidId(name));
        }
    }
    if let Some(tags) = &request.tags
        && (tags.len() > MAX_TAGS || !tags.iter().all(|t| printable(t, MAX_TAG_CHARS)))
    {
        return Err(ChatError::InvalidTags);
    }
    Ok(request)
}

/// `POST /chat`: answer a question, grounded in the indexed documents.
pub async fn chat(
    JsonBody(request): JsonBody<ChatRequest>,
    client: web::Data<awc::Client>,
    settings: web::Data<Settings>,
) -> Result<HttpResponse, ChatError> {
    let (process, span) = open(request, &settings)?;
    let result: Result<ProcessResponse, DownstreamError> = settings
        .query_processor
        .post_json(&client, "/process", &process)
        .instrument(span.clone())
        .await;
    let processed = match result {
        Ok(processed) => processed,
        Err(err) => {
            telemetry::record_error(&span, err.code(), &err.to_string());
            return Err(err.into());
        }
    };
    record_answer(&span, &Span::current(), &processed.answer);
    drop(span);

    let trace_id = telemetry::current_trace_id();
    Ok(HttpResponse::Ok().json(ChatResponse {
        answer: processed.answer,
        contexts: processed.contexts,
        trace_url: settings.trace_url(&trace_id),
        trace_id,
        model: processed.model,
        usage: processed.usage,
        evaluations: processed.evaluations,
    }))
}

/// The validated request for query-processor, and the request's agent span.
fn open(request: ChatRequest, settings: &Settings) -> Result<(ProcessRequest, Span), ChatError> {
    let request = validate(request)?;
    let span = agent_span(&request, settings);
    let process = ProcessRequest {
        query: request.query,
        top_k: request.top_k,
    };
    Ok((process, span))
}

/// The agent span: GenAI `invoke_agent {gen_ai.agent.name}`, INTERNAL (the
/// agent runs in this process). Its context carries the request's user,
/// session and tags as W3C baggage to every downstream hop.
fn agent_span(request: &ChatRequest, settings: &Settings) -> Span {
    let span = tracing::info_span!(
        "invoke_agent",
        otel.name = %format!("invoke_agent {AGENT_NAME}"),
        otel.kind = "internal",
        "gen_ai.operation.name" = "invoke_agent",
        "gen_ai.agent.name" = AGENT_NAME,
    );
    dialects::trace(
        &span,
        "ragtrace chat",
        &settings.environment,
        settings.confident_metric_collection.as_deref(),
    );
    // The question: on the agent span and on the root (HTTP SERVER) span,
    // where trace lists (Phoenix's among them) read a trace's input.
    let root = Span::current();
    let question = Content::capture(&request.query);
    dialects::input(&span, &question);
    dialects::trace_input(&span, &question);
    dialects::input(&root, &question);

    let mut entries = Vec::new();
    if let Some(user) = &request.user_id {
        entries.push(KeyValue::new(baggage::USER_ID, user.clone()));
    }
    if let Some(session) = &request.session_id {
        entries.push(KeyValue::new(baggage::SESSION_ID, session.clone()));
    }
    if let Some(tags) = &request.tags {
        entries.push(KeyValue::new(baggage::TAGS, propagation::encode_tags(tags)));
    }
    if !entries.is_empty() {
        let cx = root.context().with_baggage(entries);
        // The agent and root spans record `user.id`, `session.id` and the
        // tags as every downstream SERVER span will, from the baggage.
        propagation::record_baggage(&span, &cx);
        propagation::record_baggage(&root, &cx);
        let _ = span.set_parent(cx);
    }
    span
}

/// The answer, on the agent span and on the root span.
fn record_answer(agent: &Span, root: &Span, answer: &str) {
    let answer = Content::capture(answer);
    dialects::output(agent, &answer);
    dialects::trace_output(agent, &answer);
    dialects::output(root, &answer);
}

/// `POST /chat/stream`: the same answer as Server-Sent Events — `contexts`,
/// then `delta` chunks as the model writes, then `done` with the usage and
/// the `trace_id` (see [`shared::wire::StreamEvent`]).
///
/// The agent span stays open until the stream ends and records how it ended
/// (`ragtrace.stream.outcome`); a client that disconnects ends it as
/// `cancelled`, and the disconnect travels down the chain hop by hop.
pub async fn chat_stream(
    JsonBody(request): JsonBody<ChatRequest>,
    client: web::Data<awc::Client>,
    settings: web::Data<Settings>,
) -> Result<HttpResponse, ChatError> {
    let (process, span) = open(request, &settings)?;
    let upstream = settings
        .query_processor
        .post_stream(&client, "/process/stream", &process)
        .instrument(span.clone())
        .await
        .inspect_err(|err| telemetry::record_error(&span, err.code(), &err.to_string()))?;

    let trace_id = telemetry::current_trace_id();
    let trace_url = settings.trace_url(&trace_id);
    let events = streaming::relay(upstream).map(move |event| match event {
        StreamEvent::Done(done) => StreamEvent::Done(StreamDone {
            trace_id: Some(trace_id.clone()),
            trace_url: trace_url.clone(),
            ..done
        }),
        other => public_event(other, &trace_id),
    });
    let spans = vec![span.clone(), Span::current()];
    let root = Span::current();
    Ok(streaming::respond(events, spans, move |_, observed| {
        record_answer(&span, &root, &observed.text);
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_downstream_error_event_leaves_with_the_codes_message_only() {
        let event = StreamEvent::Error(ErrorBody {
            error: "model_unavailable".into(),
            message: "llm-service: openai is unreachable at http://127.0.0.1:9/v1".into(),
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
        });
        let StreamEvent::Error(body) = public_event(event, "4bf92f3577b34da6a3ce929d0e0e4736")
        else {
            panic!("still an error event");
        };
        assert_eq!(body.error, "model_unavailable");
        assert_eq!(
            body.message,
            error_codes::public_message("model_unavailable")
        );
        assert_eq!(body.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");

        let unknown = StreamEvent::Error(ErrorBody {
            error: "stream_incomplete".into(),
            message: "cut off".into(),
            trace_id: String::new(),
        });
        let StreamEvent::Error(body) = public_event(unknown, "t") else {
            panic!("still an error event");
        };
        assert_eq!(body.error, "bad_gateway");
    }
}
