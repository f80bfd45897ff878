use actix_web::web;
use shared::server::{Application, post_resource};

use crate::configuration::{RetrievalProtocol, Settings};
use crate::evaluation::Evaluator;
use crate::mcp::McpRetrieval;
use crate::routes;

pub fn build(settings: &Settings) -> anyhow::Result<Application> {
    let downstreams = web::Data::new(routes::Downstreams {
        retrieval: settings.retrieval.clone(),
        llm_service: settings.llm_service.clone(),
        retrieval_mcp: (settings.retrieval_protocol == RetrievalProtocol::Mcp)
            .then(|| McpRetrieval::new(settings.retrieval.clone())),
    });
    let evaluator = web::Data::new(Evaluator::from_env()?);
    let application = Application::build(settings.listen_addr, move |cfg| {
        // One HTTP client per worker (awc::Client is !Send), with pooled
        // keep-alive connections to each downstream.
        cfg.app_data(web::Data::new(awc::Client::default()))
            .app_data(downstreams.clone())
            .app_data(evaluator.clone())
            .route("/readyz", web::get().to(routes::readyz))
            .service(post_resource("/process", routes::process))
            .service(post_resource("/process/stream", routes::process_stream));
    })?;
    Ok(application)
}
