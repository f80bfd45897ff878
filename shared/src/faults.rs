//! Fault and latency injection, off by default, in the style of Jaeger's
//! HotROD: set an environment variable on one service and watch what a slow
//! or failing hop looks like in a trace.
//!
//! - `FAULT_DELAY_MS`: add this much latency to every request (before the
//!   handler runs, inside its SERVER span).
//! - `FAULT_ERROR_RATE`: fail this fraction (0.0 to 1.0) of requests with a
//!   500 `injected_fault` error body.
//!
//! Each injected fault is a `fault.injected` event on the request's SERVER
//! span, so nobody mistakes a drill for a real incident. Health probes are
//! never affected.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{Error, web};
use opentelemetry::KeyValue;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::{self, ConfigError};

/// Injected faults, read once at startup.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultSettings {
    pub delay: Duration,
    pub error_rate: f64,
}

impl FaultSettings {
    pub fn from_env() -> Result<Self, ConfigError> {
        let error_rate: f64 = config::env_or("FAULT_ERROR_RATE", 0.0)?;
        if !(0.0..=1.0).contains(&error_rate) {
            return Err(ConfigError {
                name: "FAULT_ERROR_RATE",
                value: error_rate.to_string(),
                reason: "must be between 0.0 and 1.0".into(),
            });
        }
        Ok(Self {
            delay: config::env_millis("FAULT_DELAY_MS", 0)?,
            error_rate,
        })
    }

    pub fn is_active(&self) -> bool {
        !self.delay.is_zero() || self.error_rate > 0.0
    }
}

/// A uniform number in [0, 1): xorshift64*, seeded from the clock. Fault
/// drills need no cryptographic randomness, just no dependency.
fn next_unit() -> f64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut x = STATE.load(Ordering::Relaxed);
    if x == 0 {
        x = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9E37_79B9_7F4A_7C15, |d| d.as_nanos() as u64)
            | 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    STATE.store(x, Ordering::Relaxed);
    (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
}

/// The middleware (see the module docs).
pub async fn inject(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let settings = req
        .app_data::<web::Data<FaultSettings>>()
        .map(|s| *s.get_ref())
        .unwrap_or_default();
    if !settings.is_active() || matches!(req.path(), "/healthz" | "/readyz") {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let span = tracing::Span::current();
    if !settings.delay.is_zero() {
        span.add_event(
            "fault.injected",
            vec![
                KeyValue::new("fault.type", "delay"),
                KeyValue::new("fault.delay_ms", settings.delay.as_millis() as i64),
            ],
        );
        tokio::time::sleep(settings.delay).await;
    }
    if settings.error_rate > 0.0 && next_unit() < settings.error_rate {
        span.add_event("fault.injected", vec![KeyValue::new("fault.type", "error")]);
        let response = crate::error::respond_with(
            StatusCode::INTERNAL_SERVER_ERROR,
            "injected_fault",
            format!("fault injected by FAULT_ERROR_RATE={}", settings.error_rate),
        );
        return Ok(req.into_response(response));
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_numbers_are_uniform_enough() {
        let samples: Vec<f64> = (0..10_000).map(|_| next_unit()).collect();
        assert!(samples.iter().all(|x| (0.0..1.0).contains(x)));
        let below_a_quarter = samples.iter().filter(|x| **x < 0.25).count();
        assert!(
            (2_000..3_000).contains(&below_a_quarter),
            "{below_a_quarter}"
        );
    }
}
