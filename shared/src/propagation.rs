//! W3C context propagation: the one place where trace context crosses the wire.
//!
//! A distributed trace is only as good as its weakest hop. Each service runs
//! its own tracer provider and exports its own spans; the backend can stitch
//! them into one tree only because every HTTP call carries the caller's
//! context in three headers:
//!
//! - `traceparent`: `00-<trace-id>-<parent-span-id>-<flags>` — *which* trace
//!   and *which* span is the parent of whatever the callee records;
//! - `tracestate`: vendor-specific key/values that ride along with the trace;
//! - `baggage`: application key/values (here: `user_id`, `session_id`) that
//!   every downstream service can read without each body carrying them.
//!
//! The propagator that reads and writes them is installed **globally** by
//! [`crate::telemetry::init`] (a W3C TraceContext + Baggage composite). Both
//! directions below go through `opentelemetry::global`, so there is exactly
//! one definition of "how context travels" in the whole workspace.
//!
//! The two header-map adapters exist because actix-web and awc use the `http`
//! 0.2 header types, while `opentelemetry-http`'s injector/extractor are for
//! `http` 1.x.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::{Extractor, Injector};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::attributes::{baggage, confident, gen_ai, identity};

/// Longest baggage value we copy onto a span.
const MAX_RECORDED_BAGGAGE_VALUE: usize = 256;

/// Reads propagation headers from an incoming actix-web request.
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    /// Header names are case-insensitive (`HeaderMap` normalises them).
    /// Repeated headers are folded into one by [`extract_context`] first.
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Extract the caller's context (trace parent + baggage) from request headers.
///
/// Repeated `tracestate`/`baggage` headers are first folded into one
/// comma-separated value, so no list-member is lost.
pub fn extract_context(headers: &HeaderMap) -> Context {
    let combined = combine_repeated(headers);
    let source = combined.as_ref().unwrap_or(headers);
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(source))
    })
}

fn combine_repeated(headers: &HeaderMap) -> Option<HeaderMap> {
    let repeated = |name: &str| headers.get_all(name).nth(1).is_some();
    if !repeated("tracestate") && !repeated("baggage") && !repeated("traceparent") {
        return None;
    }
    let mut out = headers.clone();
    for name in ["tracestate", "baggage"] {
        let joined: Vec<&str> = headers
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .collect();
        if joined.len() > 1
            && let Ok(value) = HeaderValue::from_str(&joined.join(","))
        {
            out.insert(HeaderName::from_static(name), value);
        }
    }
    // Several `traceparent` headers are ambiguous: W3C says to treat that as
    // an invalid traceparent and start a new trace.
    if repeated("traceparent") {
        out.remove("traceparent");
        out.remove("tracestate");
    }
    Some(out)
}

/// Writes propagation headers into an outgoing awc request.
pub struct HeaderInjector<'a>(pub &'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    /// Empty values are skipped: the SDK writes `tracestate: ""` when there
    /// is no trace state, and an empty header only costs bytes downstream.
    fn set(&mut self, key: &str, value: String) {
        if value.is_empty() {
            return;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Write `cx` (its span as the parent, its trace state, its baggage) into
/// outgoing request headers.
pub fn inject_context(cx: &Context, headers: &mut HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut HeaderInjector(headers))
    });
}

/// Copy the allow-listed baggage entries of `cx` onto `span`: `user_id` as
/// `user.id` / `confident.trace.user_id`, `session_id` as `session.id` /
/// `gen_ai.conversation.id` / `confident.trace.thread_id`. Everything else in
/// the baggage is forwarded to the next hop but never recorded.
pub fn record_baggage(span: &tracing::Span, cx: &Context) {
    let baggage = cx.baggage();
    let value = |key: &str| {
        baggage
            .get(key)
            .map(|v| v.to_string())
            .filter(|v| !v.is_empty() && v.len() <= MAX_RECORDED_BAGGAGE_VALUE)
    };
    if let Some(user) = value(baggage::USER_ID) {
        span.set_attribute(identity::USER_ID, user.clone());
        span.set_attribute(confident::TRACE_USER_ID, user);
    }
    if let Some(session) = value(baggage::SESSION_ID) {
        span.set_attribute(identity::SESSION_ID, session.clone());
        span.set_attribute(gen_ai::CONVERSATION_ID, session.clone());
        span.set_attribute(confident::TRACE_THREAD_ID, session);
    }
}
