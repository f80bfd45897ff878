use actix_web::web;
use shared::server::{Application, post_resource};

use crate::configuration::Settings;
use crate::routes;

pub fn build(settings: &Settings) -> anyhow::Result<Application> {
    shared::server::set_trust_incoming_context(settings.trust_incoming_context);
    if !settings.trust_incoming_context {
        tracing::info!("untrusted edge: every request starts a new trace, linked to the caller's");
    }
    let settings = web::Data::new(settings.clone());
    let application = Application::build(settings.listen_addr, move |cfg| {
        cfg.app_data(web::Data::new(awc::Client::default()))
            .app_data(settings.clone())
            .route("/readyz", web::get().to(routes::readyz))
            .service(
                post_resource("/chat", routes::chat)
                    .wrap(actix_web::middleware::from_fn(routes::require_api_key)),
            )
            .service(
                post_resource("/chat/stream", routes::chat_stream)
                    .wrap(actix_web::middleware::from_fn(routes::require_api_key)),
            );
    })?;
    Ok(application)
}
