use actix_web::web;
use shared::server::{Application, post_resource};

use crate::configuration::Settings;
use crate::routes;

pub fn build(settings: &Settings) -> anyhow::Result<Application> {
    let settings = web::Data::new(settings.clone());
    let application = Application::build(settings.listen_addr, move |cfg| {
        cfg.app_data(web::Data::new(awc::Client::default()))
            .app_data(settings.clone())
            .route("/readyz", web::get().to(routes::readyz))
            .service(post_resource("/chat", routes::chat));
    })?;
    Ok(application)
}
