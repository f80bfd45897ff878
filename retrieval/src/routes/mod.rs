mod retrieve;

pub use retrieve::{RetrieveError, retrieve};

use actix_web::{HttpResponse, web};

use crate::store::Store;

/// Ready when the index holds at least one chunk.
pub async fn readyz(store: web::Data<Store>) -> HttpResponse {
    let index = if store.is_empty() {
        Err("index is empty".to_owned())
    } else {
        Ok(())
    };
    shared::server::readiness(&[("index", index)])
}
