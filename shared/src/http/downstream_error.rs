//! [`DownstreamError`]: a failed call to another service, and the status and
//! code it becomes in our own answer.
//!
//! Why the mapping matters: the client of the gateway sees one error, made
//! at whichever hop failed and relayed back up the chain. A timeout stays a
//! timeout (504) however deep it happened, a rejected input keeps its 4xx
//! (the client can fix that), and anything else is a bad gateway (502). The
//! message always names the hop, and the callee's own error body is kept
//! when it sent one.

use std::time::Duration;

use actix_web::http::StatusCode;

use crate::error::ApiError;
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
    },
    #[error("{service} sent a response we cannot read: {reason}")]
    InvalidResponse {
        service: &'static str,
        reason: String,
    },
}

impl DownstreamError {
    /// A non-2xx answer, with the callee's error body when it sent ours.
    pub(crate) fn from_status(service: &'static str, status: StatusCode, bytes: &[u8]) -> Self {
        Self::Status {
            service,
            status,
            body: serde_json::from_slice::<ErrorBody>(bytes).ok(),
        }
    }

    /// The caller's fault, relayed: the downstream rejected the request (4xx)
    /// with our shared error body.
    fn rejected(&self) -> Option<(StatusCode, &ErrorBody)> {
        match self {
            Self::Status {
                status,
                body: Some(body),
                ..
            } if status.is_client_error() => Some((*status, body)),
            _ => None,
        }
    }

    /// A deeper hop timed out: the downstream relayed a 504.
    fn relayed_timeout(&self) -> bool {
        matches!(self, Self::Status { status, .. } if *status == StatusCode::GATEWAY_TIMEOUT)
    }
}

impl ApiError for DownstreamError {
    /// 504 on a timeout (ours, or one a deeper hop relayed), the downstream's
    /// own 4xx when it rejected the input (the client can fix that), 502 for
    /// everything else.
    fn status(&self) -> StatusCode {
        match self {
            Self::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            _ if self.relayed_timeout() => StatusCode::GATEWAY_TIMEOUT,
            _ => self
                .rejected()
                .map_or(StatusCode::BAD_GATEWAY, |(status, _)| status),
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Timeout { .. } => "downstream_timeout",
            Self::Unavailable { .. } => "downstream_unavailable",
            Self::InvalidResponse { .. } => "downstream_invalid_response",
            _ if self.relayed_timeout() => "downstream_timeout",
            Self::Status { .. } if self.rejected().is_some() => "downstream_rejected",
            Self::Status { .. } => "downstream_error",
        }
    }
}
