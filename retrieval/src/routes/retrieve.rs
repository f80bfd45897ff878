use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use shared::error::ApiError;
use shared::server::JsonBody;
use shared::wire::{MAX_QUERY_CHARS, MAX_TOP_K, RetrieveRequest, RetrieveResponse};

use crate::retriever::{RetrievalError, Retriever, error_code};

#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    #[error("query must not be empty")]
    EmptyQuery,
    #[error("query is {0} characters long; the limit is {MAX_QUERY_CHARS}")]
    QueryTooLong(usize),
    #[error("top_k must be between 1 and {MAX_TOP_K}, got {0}")]
    InvalidTopK(u32),
    #[error(transparent)]
    Retrieval(#[from] RetrievalError),
}

impl ApiError for RetrieveError {
    fn status(&self) -> StatusCode {
        match self {
            Self::Retrieval(RetrievalError::NotReady(_)) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Retrieval(RetrievalError::VectorStore(err)) if err.is_transient() => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Retrieval(RetrievalError::VectorStore(_)) => StatusCode::BAD_GATEWAY,
            Self::Retrieval(RetrievalError::Embedding(err)) => err.status(),
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::EmptyQuery | Self::QueryTooLong(_) => "invalid_query",
            Self::InvalidTopK(_) => "invalid_top_k",
            Self::Retrieval(err) => error_code(err),
        }
    }
}
shared::impl_response_error!(RetrieveError);

/// `POST /retrieve`: the top-k passages for a query.
pub async fn retrieve(
    JsonBody(request): JsonBody<RetrieveRequest>,
    retriever: web::Data<Retriever>,
) -> Result<HttpResponse, RetrieveError> {
    let query = request.query.trim();
    if query.is_empty() {
        return Err(RetrieveError::EmptyQuery);
    }
    let chars = query.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(RetrieveError::QueryTooLong(chars));
    }
    if request.top_k == 0 || request.top_k > MAX_TOP_K {
        return Err(RetrieveError::InvalidTopK(request.top_k));
    }
    let contexts = retriever.retrieve(query, request.top_k as usize).await?;
    Ok(HttpResponse::Ok().json(RetrieveResponse {
        contexts,
        embedder: retriever.embedder_name(),
        data_source: retriever.collection().to_owned(),
    }))
}
