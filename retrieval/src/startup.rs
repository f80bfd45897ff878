//! Build the server: load the index first (a service that answers before its
//! index is ready would answer wrongly), then bind.

use actix_web::web;
use shared::server::{Application, post_resource};

use crate::configuration::Settings;
use crate::routes;
use crate::store::Store;

pub fn build(settings: &Settings) -> anyhow::Result<Application> {
    let started = std::time::Instant::now();
    let store = Store::load(
        &settings.corpus_dir,
        &settings.chunker,
        settings.embedding_dimension,
        &settings.collection,
    )?;
    tracing::info!(
        chunks = store.len(),
        corpus = %settings.corpus_dir.display(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "index loaded"
    );
    let store = web::Data::new(store);
    let application = Application::build(settings.listen_addr, move |cfg| {
        cfg.app_data(store.clone())
            .route("/readyz", web::get().to(routes::readyz))
            .service(post_resource("/retrieve", routes::retrieve));
    })?;
    Ok(application)
}
