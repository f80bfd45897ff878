mod retrieve;

pub use retrieve::{RetrieveError, retrieve};

use actix_web::{HttpResponse, web};

use crate::store::Store;

/// Ready when the corpus is ingested and the vector store answers.
pub async fn readyz(store: web::Data<Store>) -> HttpResponse {
    shared::server::readiness(&[("vector store", store.readiness().await)])
}
