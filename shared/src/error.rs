//! The one error body every service returns, and how an error reaches the
//! span that served the request.
//!
//! ```json
//! {"error": "invalid_query", "message": "query must not be empty", "trace_id": "4bf92f35..."}
//! ```
//!
//! `error` is a stable machine code a client can branch on; `message` is for
//! humans; `trace_id` lets anyone holding the error jump to the trace.
//! Between services the message may name hops and addresses; the gateway's
//! is the code's fixed message ([`respond_summary`], docs/errors.md). The
//! body itself, [`ErrorBody`], is one of the JSON contracts in
//! [`crate::wire`]; a streaming response carries it as its `error` event.

use std::fmt::Display;

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use tracing::Span;

use crate::telemetry;

pub use crate::wire::ErrorBody;

/// A failure that knows its HTTP status and its stable machine code. Every
/// route's error enum implements it; [`respond`] does the rest.
pub trait ApiError: Display {
    fn status(&self) -> StatusCode;
    fn code(&self) -> &'static str;
    /// The `Retry-After` (seconds) to answer with, when the cause gave one.
    fn retry_after(&self) -> Option<u64> {
        None
    }
}

/// Build the error response for `err`, and record it on the current span (the
/// request's SERVER span: actix calls `error_response` inside it).
///
/// Server errors (5xx) mark the span ERROR with an exception event. Client
/// errors (4xx) are the *caller's* fault: per the HTTP conventions a SERVER
/// span's status stays unset, but `error.type` still says what was rejected.
pub fn respond(err: &impl ApiError) -> HttpResponse {
    let message = err.to_string();
    let mut response = respond_with(err.status(), err.code(), &message);
    retry_after(&mut response, err.retry_after());
    response
}

/// [`respond`] with a shorter body: the span and the log line get the whole
/// cause (`err`'s message: a provider's own words, the chain of hops), the
/// body only `summary`. The gateway, the public edge, answers with the
/// code's fixed message this way, so no address, port or library error
/// leaves.
pub fn respond_summary(err: &impl ApiError, summary: &str) -> HttpResponse {
    let (status, code) = (err.status(), err.code());
    record(status, code, &err.to_string());
    let mut response = body(status, code, summary.to_owned());
    retry_after(&mut response, err.retry_after());
    response
}

/// [`respond`] for errors that are not an [`ApiError`] (extractor failures).
pub fn respond_with(status: StatusCode, code: &str, message: impl Display) -> HttpResponse {
    let message = message.to_string();
    record(status, code, &message);
    body(status, code, message)
}

/// Record the error on the current span (the request's SERVER span).
fn record(status: StatusCode, code: &str, message: &str) {
    let span = Span::current();
    if status.is_server_error() {
        telemetry::record_error(&span, code, message);
    } else {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        span.set_attribute(crate::attributes::error::TYPE, code.to_owned());
        tracing::warn!(error = code, "{message}");
    }
}

/// The error body. Its message passes the redactor, like a span's: no
/// secret or personal data leaves in an error body either.
fn body(status: StatusCode, code: &str, message: String) -> HttpResponse {
    HttpResponse::build(status).json(ErrorBody {
        error: code.to_owned(),
        message: crate::redact::Redactor::current().apply(&message),
        trace_id: telemetry::current_trace_id(),
    })
}

fn retry_after(response: &mut HttpResponse, seconds: Option<u64>) {
    if let Some(seconds) = seconds {
        response.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(seconds),
        );
    }
}

/// Implements `ResponseError` for a route's error enum through [`ApiError`],
/// so every route answers with the same body and the same span bookkeeping.
#[macro_export]
macro_rules! impl_response_error {
    ($ty:ty) => {
        impl ::actix_web::ResponseError for $ty {
            fn status_code(&self) -> ::actix_web::http::StatusCode {
                $crate::error::ApiError::status(self)
            }
            fn error_response(&self) -> ::actix_web::HttpResponse {
                $crate::error::respond(self)
            }
        }
    };
}
