mod embed;
mod retrieve;

pub use embed::{EmbedError, embed};
pub use retrieve::{RetrieveError, retrieve};

use actix_web::{HttpResponse, web};

use crate::retriever::Retriever;

/// Ready when the corpus is ingested and the vector store answers.
pub async fn readyz(retriever: web::Data<Retriever>) -> HttpResponse {
    shared::http::routes::readiness(&[("vector store", retriever.readiness().await)])
}
