//! [`DownstreamError`]: a failed call to another service, and the status and
//! code it becomes in our own answer.
//!
//! Why the mapping matters: the client of the gateway sees one error, made
//! at whichever hop failed and relayed back up the chain. The root cause's
//! code travels up unchanged, with its status ([`error_codes`]): a vector
//! store that is down is a 503 `vector_store_unavailable` at every hop, a
//! `Retry-After` the callee sent is forwarded, a timeout stays a 504 however
//! deep it happened, and the caller's own mistake keeps its 422. Our own
//! failure to reach the next hop is a 503 `service_unavailable` (it refused
//! or broke the connection) or a 504 `timeout`. The message (kept in our
//! spans and, between internal hops, in the body) names the hop and quotes
//! the callee's message; the public edge answers with the code's fixed
//! message instead.

use std::time::Duration;

use actix_web::http::StatusCode;

use crate::error::ApiError;
use crate::http::error_codes::{self, ErrorCode};
use crate::wire::ErrorBody;

/// Largest response body we read from a downstream service.
pub(crate) const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// A failed call to another service. The message always names the hop.
#[derive(Debug, thiserror::Error)]
pub enum DownstreamError {
    #[error("{service} is unreachable at {url}: {reason}")]
    Unavailable {
        service: &'static str,
        url: String,
        reason: String,
    },
    #[error("{service} did not answer within {after:?} ({url})")]
    Timeout {
        service: &'static str,
        url: String,
        after: Duration,
    },
    #[error("{service} answered {status}{}", .body.as_ref().map(|b| format!(": {} ({})", b.message, b.error)).unwrap_or_default())]
    Status {
        service: &'static str,
        status: StatusCode,
        body: Option<ErrorBody>,
        /// The callee's `Retry-After`, in seconds.
        retry_after: Option<u64>,
    },
    #[error("{service} sent a response we cannot read: {reason}")]
    InvalidResponse {
        service: &'static str,
        reason: String,
    },
}

impl DownstreamError {
    /// A non-2xx answer, with the callee's error body when it sent ours and
    /// its `Retry-After` (delay-seconds) when it sent one.
    pub(crate) fn from_status(
        service: &'static str,
        status: StatusCode,
        retry_after: Option<&actix_web::http::header::HeaderValue>,
        bytes: &[u8],
    ) -> Self {
        Self::Status {
            service,
            status,
            body: serde_json::from_slice::<ErrorBody>(bytes).ok(),
            retry_after: retry_after
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse().ok()),
        }
    }

    /// The table entry our answer takes: the callee's code when it is one
    /// that is relayed, else one for what went wrong on the way.
    pub fn error_code(&self) -> &'static ErrorCode {
        match self {
            Self::Unavailable { .. } => &error_codes::SERVICE_UNAVAILABLE,
            Self::Timeout { .. } => &error_codes::TIMEOUT,
            Self::InvalidResponse { .. } => &error_codes::INVALID_RESPONSE,
            Self::Status { status, body, .. } => body
                .as_ref()
                .and_then(|body| error_codes::relayed(&body.error))
                .unwrap_or_else(|| error_codes::by_status(*status)),
        }
    }
}

impl ApiError for DownstreamError {
    fn status(&self) -> StatusCode {
        self.error_code().status
    }

    fn code(&self) -> &'static str {
        self.error_code().code
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn answered(status: u16, body: &str, retry_after: Option<&str>) -> DownstreamError {
        let status = StatusCode::from_u16(status).unwrap();
        let header = retry_after.map(|v| HeaderValue::from_str(v).unwrap());
        DownstreamError::from_status("retrieval", status, header.as_ref(), body.as_bytes())
    }

    fn body(code: &str) -> String {
        format!(r#"{{"error":"{code}","message":"detail","trace_id":"t"}}"#)
    }

    #[test]
    fn the_root_cause_and_its_status_are_relayed() {
        let err = answered(503, &body("vector_store_unavailable"), Some("7"));
        assert_eq!(err.code(), "vector_store_unavailable");
        assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.retry_after(), Some(7));
        // Relayed again, one hop up: the same.
        let up = answered(503, &body(err.code()), Some("7"));
        assert_eq!((up.code(), up.status().as_u16()), (err.code(), 503));

        let timeout = answered(504, &body("model_timeout"), None);
        assert_eq!(
            (timeout.code(), timeout.status().as_u16()),
            ("model_timeout", 504)
        );
        let input = answered(422, &body("invalid_top_k"), None);
        assert_eq!(
            (input.code(), input.status().as_u16()),
            ("invalid_top_k", 422)
        );
        let auth = answered(502, &body("model_auth_failed"), None);
        assert_eq!(
            (auth.code(), auth.status().as_u16()),
            ("model_auth_failed", 502)
        );
    }

    #[test]
    fn other_answers_map_by_status() {
        // A hop's own routing error is our bug, not the client's.
        let routing = answered(404, &body("not_found"), None);
        assert_eq!(
            (routing.code(), routing.status().as_u16()),
            ("bad_gateway", 502)
        );
        let proxy = answered(503, "<html>busy</html>", Some("soon"));
        assert_eq!(
            (proxy.code(), proxy.status().as_u16()),
            ("service_unavailable", 503)
        );
        assert_eq!(proxy.retry_after(), None);
        let late = answered(504, "", None);
        assert_eq!((late.code(), late.status().as_u16()), ("timeout", 504));
    }

    #[test]
    fn failures_to_reach_the_hop() {
        let dead = DownstreamError::Unavailable {
            service: "retrieval",
            url: "http://127.0.0.1:1/retrieve".into(),
            reason: "connection refused".into(),
        };
        assert_eq!(
            (dead.code(), dead.status().as_u16()),
            ("service_unavailable", 503)
        );
        let slow = DownstreamError::Timeout {
            service: "retrieval",
            url: "http://127.0.0.1:1/retrieve".into(),
            after: Duration::from_millis(700),
        };
        assert_eq!((slow.code(), slow.status().as_u16()), ("timeout", 504));
    }
}
