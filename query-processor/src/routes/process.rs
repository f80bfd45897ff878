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
    GenerateRequest, GenerateResponse, Passage, ProcessRequest, ProcessResponse, RetrieveRequest,
    RetrieveResponse,
};
use tracing::{Instrument, Span};

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

/// `POST /process`: retrieve, then generate.
pub async fn process(
    JsonBody(request): JsonBody<ProcessRequest>,
    client: web::Data<awc::Client>,
    downstreams: web::Data<Downstreams>,
) -> Result<HttpResponse, ProcessError> {
    let (query, top_k, span) = open(&request)?;
    let response = async {
        let (contexts, generate) = retrieve(&client, &downstreams, query, top_k).await?;
        let generated: GenerateResponse = downstreams
            .llm_service
            .post_json(&client, "/generate", &generate)
            .await?;
        Ok::<_, ProcessError>(ProcessResponse {
            answer: generated.answer,
            contexts,
            model: generated.model,
            usage: generated.usage,
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

/// `POST /process/stream`: retrieve, then stream the generation.
///
/// Retrieval is an ordinary call; its contexts go out first, as a
/// `contexts` event. Then llm-service's `/generate/stream` events are relayed
/// as they arrive. The tool span and its CLIENT span to llm-service stay open
/// until the stream ends; if our client leaves, dropping the relay closes
/// the connection to llm-service, which ends its spans too.
pub async fn process_stream(
    JsonBody(request): JsonBody<ProcessRequest>,
    client: web::Data<awc::Client>,
    downstreams: web::Data<Downstreams>,
) -> Result<HttpResponse, ProcessError> {
    let (query, top_k, span) = open(&request)?;
    let opened = async {
        let (contexts, generate) = retrieve(&client, &downstreams, query, top_k).await?;
        let generation = downstreams
            .llm_service
            .post_stream(&client, "/generate/stream", &generate)
            .await?;
        Ok::<_, ProcessError>((contexts, generation))
    }
    .instrument(span.clone())
    .await
    .inspect_err(|err| shared::telemetry::record_error(&span, err.code(), &err.to_string()));
    let (contexts, generation) = opened?;

    let events = futures_util::stream::once(std::future::ready(StreamEvent::Contexts(contexts)))
        .chain(streaming::relay(generation));
    let spans = vec![span.clone(), Span::current()];
    Ok(streaming::respond(events, spans, move |_, observed| {
        dialects::output(&span, &Content::capture(&observed.text));
    }))
}

/// The validated query and `top_k`, and the request's tool span.
fn open(request: &ProcessRequest) -> Result<(String, u32, Span), ProcessError> {
    let query = query::validate(&request.query)?;
    let top_k = query::top_k(request.top_k)?;
    let span = tool_span(&query, top_k);
    Ok((query, top_k, span))
}

/// The top-k passages for `query`, from retrieval, and the request that asks
/// llm-service to answer from them.
async fn retrieve(
    client: &awc::Client,
    downstreams: &Downstreams,
    query: String,
    top_k: u32,
) -> Result<(Vec<Passage>, GenerateRequest), DownstreamError> {
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
    let contexts = retrieved.contexts;
    let generate = GenerateRequest {
        query,
        contexts: contexts.clone(),
    };
    Ok((contexts, generate))
}
