use std::sync::Arc;

use actix_web::web;
use shared::server::{Application, post_resource};

use crate::configuration::Settings;
use crate::generator::GeneratorConfig;
use crate::remote::RemoteChat;
use crate::routes;

/// The model behind `/generate`.
pub enum Model {
    /// The offline extractive generator (embedded default).
    Offline(GeneratorConfig),
    /// An OpenAI-compatible chat completions API.
    Remote(Box<RemoteChat>),
}

pub fn build(settings: &Settings) -> anyhow::Result<Application> {
    let model = match &settings.remote {
        Some(remote) => Model::Remote(Box::new(RemoteChat::new(remote.clone()))),
        None => Model::Offline(settings.generator),
    };
    let model = web::Data::from(Arc::new(model));
    let application = Application::build(settings.listen_addr, move |cfg| {
        cfg.app_data(model.clone())
            .route("/readyz", web::get().to(routes::readyz))
            .service(post_resource("/generate", routes::generate))
            .service(post_resource("/generate/stream", routes::generate_stream));
    })?;
    Ok(application)
}
