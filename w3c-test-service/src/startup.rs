use actix_web::web;
use shared::server::{Application, post_resource};

use crate::configuration::Settings;
use crate::routes;

pub fn build(settings: &Settings) -> anyhow::Result<Application> {
    let calls = web::Data::new(routes::CallSettings {
        timeout: settings.callback_timeout,
    });
    let application = Application::build(settings.listen_addr, move |cfg| {
        // One HTTP client per worker (awc::Client is !Send).
        cfg.app_data(web::Data::new(awc::Client::default()))
            .app_data(calls.clone())
            .service(post_resource("/test", routes::test));
    })?;
    Ok(application)
}
