mod auth;
mod chat;

pub use auth::require_api_key;
pub use chat::{ChatError, chat, chat_stream};

use actix_web::{HttpResponse, web};
use shared::http::routes::{probe, readiness};

use crate::configuration::Settings;

/// Ready when query-processor answers its liveness probe.
pub async fn readyz(client: web::Data<awc::Client>, settings: web::Data<Settings>) -> HttpResponse {
    let query_processor = probe(&client, settings.query_processor.base_url()).await;
    readiness(&[("query-processor", query_processor)])
}
