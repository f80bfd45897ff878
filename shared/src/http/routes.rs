//! The routes every service has besides its own: `GET /healthz`, the answer
//! to `GET /readyz`, and the default service for an unknown route or a known
//! path with the wrong method, plus the [`probe`] a `/readyz` uses to check a
//! downstream.
//!
//! Why they are shared: an orchestrator (Compose, Kubernetes) and the
//! `ragtrace up` launcher read every service's probes the same way, and a
//! client gets the same error body for a 404 or 405 from every service as for
//! any other error. Probes are not traced (see [`crate::server::ServerSpan`]).

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};

use crate::error::ApiError;

/// `GET /healthz`: the process is alive and serving.
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz` body for a set of named checks: 200 when all pass, 503 with
/// the shared error body naming the first failure otherwise. A 503 here is
/// a state, not an error, and is not logged: orchestrators and `ragtrace up`
/// poll it many times a second while a dependency is down, and the failing
/// component logs its own error.
pub fn readiness(checks: &[(&str, Result<(), String>)]) -> HttpResponse {
    match checks.iter().find(|(_, result)| result.is_err()) {
        Some((name, Err(reason))) => {
            HttpResponse::ServiceUnavailable().json(crate::error::ErrorBody {
                error: "not_ready".to_owned(),
                message: format!("{name}: {reason}"),
                trace_id: crate::telemetry::current_trace_id(),
            })
        }
        _ => HttpResponse::Ok().json(serde_json::json!({
            "status": "ready",
            "checks": checks.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        })),
    }
}

/// Readiness check of a downstream: is `base_url` answering `GET /healthz`?
/// Not traced, like the probes themselves.
pub async fn probe(client: &awc::Client, base_url: &str) -> Result<(), String> {
    let url = format!("{}/healthz", base_url.trim_end_matches('/'));
    match client
        .get(&url)
        .timeout(Duration::from_secs(1))
        .send()
        .await
    {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("{url} answered {}", response.status())),
        Err(err) => Err(format!("{url}: {err}")),
    }
}

/// Default service: unknown route.
pub(crate) async fn not_found(req: HttpRequest) -> Result<HttpResponse, RoutingError> {
    Err(RoutingError::NotFound {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    })
}

/// Per-resource default service: known path, wrong method.
pub(crate) async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, RoutingError> {
    Err(RoutingError::MethodNotAllowed {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    })
}

/// The error for requests no route matches, or a known path with the wrong
/// method.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RoutingError {
    #[error("no route for {method} {path}")]
    NotFound { method: String, path: String },
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
}

impl ApiError for RoutingError {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::NotFound { .. } => "not_found",
            Self::MethodNotAllowed { .. } => "method_not_allowed",
        }
    }
}
crate::impl_response_error!(RoutingError);
