use actix_web::web;
use shared::server::{Application, post_resource};

use crate::configuration::Settings;
use crate::routes;

pub fn build(settings: &Settings) -> anyhow::Result<Application> {
    let generator = web::Data::new(settings.generator);
    let application = Application::build(settings.listen_addr, move |cfg| {
        cfg.app_data(generator.clone())
            .route("/readyz", web::get().to(routes::readyz))
            .service(post_resource("/generate", routes::generate));
    })?;
    Ok(application)
}
