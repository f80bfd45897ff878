//! `POST /embed`: texts to vectors with the embedder this service searches
//! with, so an evaluator elsewhere can compare texts the way retrieval does
//! (query-processor's groundedness, when the embedder is a remote model).
//! The call gets the same `embeddings {model}` span as a query.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use shared::error::ApiError;
use shared::http::error_codes;
use shared::http::json_body::JsonBody;
use shared::provider::{Api, ProviderError};
use shared::wire::{EmbedRequest, EmbedResponse, MAX_EMBED_TEXTS, MAX_QUERY_CHARS};

use crate::retriever::Retriever;

/// Longest text accepted: a passage is longer than a query.
const MAX_TEXT_CHARS: usize = 4 * MAX_QUERY_CHARS;

#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    #[error(
        "texts must hold 1 to {MAX_EMBED_TEXTS} strings of at most {MAX_TEXT_CHARS} characters"
    )]
    Invalid,
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl ApiError for EmbedError {
    fn status(&self) -> StatusCode {
        error_codes::relayed(self.code()).map_or(StatusCode::BAD_GATEWAY, |entry| entry.status)
    }
    fn code(&self) -> &'static str {
        match self {
            Self::Invalid => "invalid_query",
            Self::Provider(err) => err.code(Api::Embeddings),
        }
    }
}
shared::impl_response_error!(EmbedError);

pub async fn embed(
    JsonBody(request): JsonBody<EmbedRequest>,
    retriever: web::Data<Retriever>,
) -> Result<HttpResponse, EmbedError> {
    let texts = request.texts;
    if texts.is_empty()
        || texts.len() > MAX_EMBED_TEXTS
        || texts.iter().any(|t| t.chars().count() > MAX_TEXT_CHARS)
    {
        return Err(EmbedError::Invalid);
    }
    let embedder = retriever.embedder();
    let vectors = embedder.embed(&texts).await?;
    Ok(HttpResponse::Ok().json(EmbedResponse {
        model: embedder.model_name(),
        vectors,
    }))
}
