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
//! MCP carries the same three values inside each JSON-RPC request, in
//! `params._meta` (SEP-414): [`inject_meta`] and [`extract_meta`] write and
//! read them there, through the header functions below, so both carriers
//! follow the same rules.
//!
//! The two header-map adapters exist because actix-web and awc use the `http`
//! 0.2 header types, while `opentelemetry-http`'s injector/extractor are for
//! `http` 1.x.
//!
//! ## The W3C rules around the SDK propagator
//!
//! Whatever a caller sends is forwarded to every downstream hop, so a header
//! we accept by mistake is one we spread. The SDK's `TraceContextPropagator`
//! (opentelemetry_sdk 0.32) is lenient where the W3C Trace Context spec is
//! not, and it knows only Level 1 of it. So [`extract_context`] lets it read
//! only what passed the rules of [`crate::w3c`], and [`inject_context`]
//! writes back what it cannot hold:
//!
//! - **`traceparent`** must match the spec's grammar
//!   ([`w3c::normalize_traceparent`]); one that does not, or more than one
//!   `traceparent` header (ambiguous), starts a new trace.
//! - **`tracestate`** is read only with a valid `traceparent` ("if the vendor
//!   failed to parse traceparent, it MUST NOT attempt to parse tracestate"),
//!   repeated headers combined, and rebuilt by [`w3c::sanitize_tracestate`]:
//!   whitespace trimmed, empty members skipped, duplicate keys kept once; a
//!   header that still breaks a rule is discarded whole.
//! - **Level 2**: the random trace-flag and the `tracestate` keys the SDK
//!   cannot hold travel beside the SDK's context ([`w3c::remember_inbound`])
//!   and are put back into the outgoing headers.
//! - **`baggage`**: repeated headers are combined; the SDK then enforces the
//!   W3C Baggage limits on the way in (a header over 8192 bytes is dropped, at
//!   most 64 members are read), and [`inject_context`] keeps the way out
//!   within 8192 bytes too.
//!
//! The cases are tabled in `shared/tests/w3c_cases.rs`; the policy is
//! explained in `docs/w3c.md`.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::Injector;

use crate::attributes::baggage;
use crate::w3c;

/// Longest baggage value we copy onto a span.
const MAX_RECORDED_BAGGAGE_VALUE: usize = 256;

pub use crate::w3c::MAX_BAGGAGE_BYTES;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// Extract the caller's context (trace parent, trace state, baggage) from
/// request headers, after checking them against the W3C rules (see the
/// module docs). With no valid `traceparent` the context is empty and the
/// caller starts a new trace.
pub fn extract_context(headers: &HeaderMap) -> Context {
    let inbound = w3c::InboundHeaders::new(headers);
    let cx =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&inbound));
    match inbound.traceparent {
        // What the SDK cannot hold (the random flag, some tracestate keys)
        // rides along in the context, for `inject_context`.
        Some(traceparent) => w3c::remember_inbound(cx, traceparent, inbound.tracestate),
        None => cx,
    }
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
    inject_with_global(cx, headers);
    // W3C Baggage: at most 8192 bytes on the way out, or the next hop drops
    // all of it (`w3c::fit_baggage` leaves the largest entries out).
    w3c::fit_baggage(cx, headers, inject_with_global);
}

fn inject_with_global(cx: &Context, headers: &mut HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut HeaderInjector(headers))
    });
    // Where the propagator wrote a `traceparent`, W3C Level 2 corrects it:
    // the random flag it clears, the tracestate keys it could not hold.
    if !headers.contains_key(TRACEPARENT) {
        return;
    }
    let mut injector = HeaderInjector(headers);
    if let Some(traceparent) = w3c::outgoing_traceparent(cx) {
        injector.set(TRACEPARENT, traceparent);
    }
    if let Some(tracestate) = w3c::outgoing_tracestate(cx) {
        injector.set(TRACESTATE, tracestate.to_owned());
    }
}

/// The keys of an MCP request's `params._meta` that carry trace context
/// (SEP-414): the W3C header names, unprefixed, with W3C values.
pub const MCP_META_KEYS: [&str; 3] = [TRACEPARENT, TRACESTATE, BAGGAGE];
const BAGGAGE: &str = "baggage";

/// Write `cx` into an MCP request's `params._meta` (SEP-414): the same
/// `traceparent`, `tracestate` and `baggage` values [`inject_context`] puts
/// in HTTP headers, under the same names.
pub fn inject_meta(cx: &Context) -> serde_json::Map<String, serde_json::Value> {
    let mut headers = HeaderMap::new();
    inject_context(cx, &mut headers);
    MCP_META_KEYS
        .iter()
        .filter_map(|key| {
            let value = headers.get(*key)?.to_str().ok()?;
            Some((key.to_string(), serde_json::Value::from(value)))
        })
        .collect()
}

/// Read the caller's context from an MCP request's `params._meta`, by the
/// same W3C rules as [`extract_context`]. Keys that are absent, not
/// strings, or malformed give an empty context: the callee starts a new
/// trace, and the call goes on.
pub fn extract_meta(meta: &serde_json::Map<String, serde_json::Value>) -> Context {
    let mut headers = HeaderMap::new();
    for key in MCP_META_KEYS {
        let value = meta.get(key).and_then(|v| v.as_str());
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(HeaderName::from_static(key), value);
        }
    }
    extract_context(&headers)
}

/// Most tags, and longest tag, that [`record_baggage`] copies onto a span
/// (the gateway accepts no more than this either).
pub const MAX_TAGS: usize = 16;
pub const MAX_TAG_CHARS: usize = 64;

/// The `tags` baggage value: a JSON array of strings.
pub fn encode_tags(tags: &[String]) -> String {
    serde_json::to_string(tags).expect("strings serialize")
}

/// Read a `tags` baggage value; `None` unless it is a JSON array of at most
/// [`MAX_TAGS`] non-empty strings of at most [`MAX_TAG_CHARS`] characters.
fn decode_tags(value: &str) -> Option<Vec<String>> {
    let tags: Vec<String> = serde_json::from_str(value).ok()?;
    let valid = tags.len() <= MAX_TAGS
        && tags
            .iter()
            .all(|t| !t.is_empty() && t.chars().count() <= MAX_TAG_CHARS);
    valid.then_some(tags)
}

/// Copy the allow-listed baggage entries of `cx` onto `span`: `user_id` as
/// `user.id`, `session_id` as `session.id` and `gen_ai.conversation.id`,
/// and `tags` (through [`crate::dialects::tags`]; no convention has a key
/// for them). Values over a size limit, or tags that are not a well-formed
/// list, are not recorded. Everything else in the baggage is forwarded to
/// the next hop but never recorded: it may hold anything.
pub fn record_baggage(span: &tracing::Span, cx: &Context) {
    use crate::attributes::{gen_ai, identity};
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    let baggage = cx.baggage();
    let value = |key: &str| {
        baggage
            .get(key)
            .map(|v| v.to_string())
            .filter(|v| !v.is_empty() && v.len() <= MAX_RECORDED_BAGGAGE_VALUE)
    };
    if let Some(user) = value(baggage::USER_ID) {
        span.set_attribute(identity::USER_ID, user);
    }
    if let Some(session) = value(baggage::SESSION_ID) {
        span.set_attribute(identity::SESSION_ID, session.clone());
        span.set_attribute(gen_ai::CONVERSATION_ID, session);
    }
    let tags = baggage
        .get(baggage::TAGS)
        .and_then(|v| decode_tags(v.as_str()));
    if let Some(tags) = tags {
        crate::dialects::tags(span, &tags);
    }
}
