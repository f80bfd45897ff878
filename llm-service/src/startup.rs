use std::sync::Arc;

use actix_web::web;
use shared::server::{Application, post_resource};

use crate::configuration::Settings;
use crate::model::Model;
use crate::routes;

pub fn build(settings: &Settings) -> anyhow::Result<Application> {
    let model = web::Data::from(Arc::new(Model::from_settings(settings)));
    let application = Application::build(settings.listen_addr, move |cfg| {
        cfg.app_data(model.clone())
            .route("/readyz", web::get().to(routes::readyz))
            .service(post_resource("/generate", routes::generate))
            .service(post_resource("/generate/stream", routes::generate_stream));
    })?;
    Ok(application)
}
