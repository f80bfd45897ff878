mod generate;

pub use generate::{GenerateError, generate, generate_stream};

use actix_web::HttpResponse;

/// The offline generator has no dependencies: ready as soon as it serves.
pub async fn readyz() -> HttpResponse {
    shared::http::routes::readiness(&[("generator", Ok(()))])
}
