use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use shared::error::ApiError;
use shared::http::error_codes;
use shared::http::json_body::JsonBody;
use shared::query::{self, QueryError};
use shared::wire::{RetrieveRequest, RetrieveResponse};

use crate::retriever::{RetrievalError, Retriever, body_message, error_code};

#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Retrieval(#[from] RetrievalError),
}

impl ApiError for RetrieveError {
    /// The status of the code in the table every hop keeps
    /// (`shared::http::error_codes`): 503 for a vector store or index that
    /// may come back, 502 for one that failed otherwise, the provider's and
    /// the query's own.
    fn status(&self) -> StatusCode {
        error_codes::relayed(self.code()).map_or(StatusCode::BAD_GATEWAY, |entry| entry.status)
    }
    fn code(&self) -> &'static str {
        match self {
            Self::Query(err) => err.code(),
            Self::Retrieval(err) => error_code(err),
        }
    }
}
/// The body says what failed (`body_message`); the span and the log line
/// keep the whole cause.
impl actix_web::ResponseError for RetrieveError {
    fn status_code(&self) -> StatusCode {
        ApiError::status(self)
    }
    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Retrieval(err) => shared::error::respond_summary(self, &body_message(err)),
            Self::Query(_) => shared::error::respond(self),
        }
    }
}

/// `POST /retrieve`: the top-k passages for a query.
pub async fn retrieve(
    JsonBody(request): JsonBody<RetrieveRequest>,
    retriever: web::Data<Retriever>,
) -> Result<HttpResponse, RetrieveError> {
    let query = query::validate(&request.query)?;
    let top_k = query::top_k(Some(request.top_k))?;
    let contexts = retriever.retrieve(&query, top_k as usize).await?;
    Ok(HttpResponse::Ok().json(RetrieveResponse {
        contexts,
        embedder: retriever.embedder_name(),
        data_source: retriever.collection().to_owned(),
    }))
}
