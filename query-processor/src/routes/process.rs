use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use futures_util::StreamExt;
use shared::dialects;
use shared::error::ApiError;
use shared::http::downstream_error::DownstreamError;
use shared::http::json_body::JsonBody;
use shared::query::{self, QueryError};
use shared::redact::Content;
use shared::streaming;
use shared::wire::StreamEvent;
use shared::wire::{
    GenerateRequest, GenerateResponse, ProcessRequest, ProcessResponse, RetrieveRequest,
    RetrieveResponse,
};
use tracing::{Instrument, Span};

use std::cell::RefCell;
use std::rc::Rc;

use crate::evaluation::embeddings::Vectors;
use crate::evaluation::{Answer, Evaluator};

use super::Downstreams;

const TOOL_NAME: &str = "process_query";
const TOOL_DESCRIPTION: &str =
    "Normalise the query, retrieve the top-k passages, generate a grounded answer";
/// The JSON Schema of the tool's arguments: the body of `POST /process`.
const TOOL_PARAMETERS: &str = r#"{"type":"object","properties":{"query":{"type":"string"},"top_k":{"type":"integer","minimum":1}},"required":["query"]}"#;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Downstream(#[from] DownstreamError),
}

impl ApiError for ProcessError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Query(err) => err.status(),
            Self::Downstream(err) => err.status(),
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::Query(err) => err.code(),
            Self::Downstream(err) => err.code(),
        }
    }
    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Query(_) => None,
            Self::Downstream(err) => err.retry_after(),
        }
    }
}
shared::impl_response_error!(ProcessError);

/// `POST /process`: retrieve, generate, then evaluate the answer.
pub async fn process(
    JsonBody(request): JsonBody<ProcessRequest>,
    client: web::Data<awc::Client>,
    downstreams: web::Data<Downstreams>,
    evaluator: web::Data<Evaluator>,
) -> Result<HttpResponse, ProcessError> {
    let (query, top_k, span) = open(&request)?;
    let response = async {
        let (retrieved, generate) = retrieve(&client, &downstreams, query, top_k).await?;
        let generated: GenerateResponse = downstreams
            .llm_service
            .post_json(&client, "/generate", &generate)
            .await?;
        let answer = Answer {
            question: &generate.query,
            contexts: &generate.contexts,
            text: &generated.answer,
        };
        let vectors = Vectors::for_embedder(&retrieved.embedder, &client, &downstreams.retrieval);
        let evaluations = evaluator.evaluate(&span, &answer, &vectors).await;
        Ok::<_, ProcessError>(ProcessResponse {
            answer: generated.answer,
            contexts: generate.contexts,
            model: generated.model,
            usage: generated.usage,
            evaluations,
        })
    }
    .instrument(span.clone())
    .await
    .inspect_err(|err| shared::telemetry::record_error(&span, err.code(), &err.to_string()))?;
    dialects::output(&span, &Content::capture(&response.answer));
    Ok(HttpResponse::Ok().json(response))
}

/// The GenAI tool span (`execute_tool {gen_ai.tool.name}`), INTERNAL, which
/// Confident AI renders as a tool step. Both outbound CLIENT spans are its
/// children.
fn tool_span(query: &str, top_k: u32) -> Span {
    let span = tracing::info_span!(
        "execute_tool",
        otel.name = %format!("execute_tool {TOOL_NAME}"),
        otel.kind = "internal",
        "gen_ai.operation.name" = "execute_tool",
        "gen_ai.tool.name" = TOOL_NAME,
        "gen_ai.tool.description" = TOOL_DESCRIPTION,
        "gen_ai.request.top_k" = i64::from(top_k),
    );
    dialects::tool_parameters(&span, TOOL_PARAMETERS);
    dialects::input(&span, &Content::capture(query));
    span
}

/// `POST /process/stream`: retrieve, then stream the generation, then
/// evaluate the answer.
///
/// Retrieval is an ordinary call; its contexts go out first, as a
/// `contexts` event. Then llm-service's `/generate/stream` events are relayed
/// as they arrive; the answer is evaluated when its `done` event arrives,
/// and that event goes on carrying the results. The tool span and its CLIENT
/// span to llm-service stay open until the stream ends; if our client
/// leaves, dropping the relay closes the connection to llm-service, which
/// ends its spans too.
pub async fn process_stream(
    JsonBody(request): JsonBody<ProcessRequest>,
    client: web::Data<awc::Client>,
    downstreams: web::Data<Downstreams>,
    evaluator: web::Data<Evaluator>,
) -> Result<HttpResponse, ProcessError> {
    let (query, top_k, span) = open(&request)?;
    let opened = async {
        let (retrieved, generate) = retrieve(&client, &downstreams, query, top_k).await?;
        let generation = downstreams
            .llm_service
            .post_stream(&client, "/generate/stream", &generate)
            .await?;
        Ok::<_, ProcessError>((retrieved.embedder, generate, generation))
    }
    .instrument(span.clone())
    .await
    .inspect_err(|err| shared::telemetry::record_error(&span, err.code(), &err.to_string()));
    let (embedder, generate, generation) = opened?;

    let contexts = StreamEvent::Contexts(generate.contexts.clone());
    let evaluate = Rc::new(EvaluateAtDone {
        evaluator,
        client,
        downstreams,
        evaluated: span.clone(),
        embedder,
        generate,
        answer: RefCell::new(String::new()),
    });
    let relayed = streaming::relay(generation).then(move |event| {
        let evaluate = evaluate.clone();
        async move { evaluate.pass(event).await }
    });
    let events = futures_util::stream::once(std::future::ready(contexts)).chain(relayed);
    let spans = vec![span.clone(), Span::current()];
    Ok(streaming::respond(events, spans, move |_, observed| {
        dialects::output(&span, &Content::capture(&observed.text));
    }))
}

/// What a streamed answer is evaluated with once its `done` event arrives.
struct EvaluateAtDone {
    evaluator: web::Data<Evaluator>,
    client: web::Data<awc::Client>,
    downstreams: web::Data<Downstreams>,
    evaluated: Span,
    embedder: String,
    generate: GenerateRequest,
    /// The deltas so far.
    answer: RefCell<String>,
}

impl EvaluateAtDone {
    /// `event`, passed on; a `done` event gains the evaluation results.
    async fn pass(&self, event: StreamEvent) -> StreamEvent {
        match event {
            StreamEvent::Delta(text) => {
                self.answer.borrow_mut().push_str(&text);
                StreamEvent::Delta(text)
            }
            StreamEvent::Done(mut done) => {
                let text = self.answer.take();
                let answer = Answer {
                    question: &self.generate.query,
                    contexts: &self.generate.contexts,
                    text: &text,
                };
                let retrieval = &self.downstreams.retrieval;
                let vectors = Vectors::for_embedder(&self.embedder, &self.client, retrieval);
                done.evaluations = self
                    .evaluator
                    .evaluate(&self.evaluated, &answer, &vectors)
                    .await;
                StreamEvent::Done(done)
            }
            other => other,
        }
    }
}

/// The validated query and `top_k`, and the request's tool span.
fn open(request: &ProcessRequest) -> Result<(String, u32, Span), ProcessError> {
    let query = query::validate(&request.query)?;
    let top_k = query::top_k(request.top_k)?;
    let span = tool_span(&query, top_k);
    Ok((query, top_k, span))
}

/// What retrieval answered, and the request that asks llm-service to answer
/// from its passages.
async fn retrieve(
    client: &awc::Client,
    downstreams: &Downstreams,
    query: String,
    top_k: u32,
) -> Result<(Retrieved, GenerateRequest), DownstreamError> {
    let request = RetrieveRequest {
        query: query.clone(),
        top_k,
    };
    let retrieved: RetrieveResponse = match &downstreams.retrieval_mcp {
        Some(mcp) => mcp.search_documents(&request.query, top_k).await?,
        None => {
            downstreams
                .retrieval
                .post_json(client, "/retrieve", &request)
                .await?
        }
    };
    let generate = GenerateRequest {
        query,
        contexts: retrieved.contexts,
    };
    let retrieved = Retrieved {
        embedder: retrieved.embedder,
    };
    Ok((retrieved, generate))
}

/// What the evaluators need to know of the retrieval beyond its passages.
struct Retrieved {
    /// The embedder it searched with (`RetrieveResponse::embedder`).
    embedder: String,
}
