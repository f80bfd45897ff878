//! The one error body every service returns, and how an error reaches the
//! span that served the request.
//!
//! ```json
//! {"error": "invalid_query", "message": "query must not be empty", "trace_id": "4bf92f35..."}
//! ```
//!
//! `error` is a stable machine code a client can branch on; `message` is for
//! humans; `trace_id` lets anyone holding the error jump to the trace. The
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
}

/// Build the error response for `err`, and record it on the current span (the
/// request's SERVER span: actix calls `error_response` inside it).
///
/// Server errors (5xx) mark the span ERROR with an exception event. Client
/// errors (4xx) are the *caller's* fault: per the HTTP conventions a SERVER
/// span's status stays unset, but `error.type` still says what was rejected.
pub fn respond(err: &impl ApiError) -> HttpResponse {
    respond_with(err.status(), err.code(), err)
}

/// [`respond`] for errors that are not an [`ApiError`] (extractor failures).
pub fn respond_with(status: StatusCode, code: &str, message: impl Display) -> HttpResponse {
    let message = message.to_string();
    let span = Span::current();
    if status.is_server_error() {
        telemetry::record_error(&span, code, &message);
    } else {
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        span.set_attribute(crate::attributes::error::TYPE, code.to_owned());
        tracing::warn!(error = code, "{message}");
    }
    HttpResponse::build(status).json(ErrorBody {
        error: code.to_owned(),
        message,
        trace_id: telemetry::current_trace_id(),
    })
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
