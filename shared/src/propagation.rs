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
//!
//! ## Inbound headers are checked before the SDK propagator reads them
//!
//! Whatever a caller sends is forwarded to every downstream hop, so a header
//! we accept by mistake is one we spread. The SDK's `TraceContextPropagator`
//! (opentelemetry_sdk 0.32) is lenient where the W3C Trace Context spec is
//! not, so [`extract_context`] validates first and lets the propagator read
//! only what conforms (the cases are tabled in `shared/tests/w3c_cases.rs`,
//! the policy is explained in `docs/w3c.md`):
//!
//! - **`traceparent`** is parsed with the spec's grammar by
//!   [`normalize_traceparent`]. The SDK parses each field with
//!   `from_str_radix`, so on its own it would join the caller's trace for a
//!   1-, 3- or 4-digit version, a 31-digit trace-id, a 15-digit parent-id,
//!   1- or 3-digit flags, a `+` sign, an uppercase version, or a trailing `-`
//!   after version `00`. All of those now start a new trace, as the spec
//!   requires; so do repeated `traceparent` headers (ambiguous).
//! - **`tracestate`** is rebuilt by [`sanitize_tracestate`], and only when the
//!   `traceparent` is valid ("if the vendor failed to parse traceparent, it
//!   MUST NOT attempt to parse tracestate"). The SDK's parser does not trim
//!   optional whitespace around list-members and throws the whole header away
//!   for an empty member (`a=1,,b=2`, or an empty header field combined with
//!   a full one), yet accepts duplicate keys, more than 32 members, empty
//!   values, tabs in values and Level 2 keys. We trim, skip empty members,
//!   and apply the Level 1 grammar. A header that still breaks a rule is
//!   discarded *whole*: the spec allows that ("if the tracestate header cannot
//!   be parsed the vendor MAY discard the entire header"), and it is what the
//!   public W3C test suite checks (an invalid key, an invalid value, a
//!   duplicate key or a 33rd member each expect no `tracestate` downstream).
//!   Forwarding the members we happened to understand would hand the next hop
//!   a list nobody wrote.
//! - **`baggage`**: repeated headers are combined; the SDK then enforces the
//!   W3C Baggage limits on the way in (a header over 8192 bytes is dropped, at
//!   most 64 members are read), and [`inject_context`] keeps the way out
//!   within 8192 bytes too.

use std::borrow::Cow;

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::Context;
use opentelemetry::baggage::{Baggage, BaggageExt};
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceState;

use crate::attributes::baggage;

/// Longest baggage value we copy onto a span.
const MAX_RECORDED_BAGGAGE_VALUE: usize = 256;

/// W3C Trace Context: "There can be a maximum of 32 list-members in a list."
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

/// W3C Baggage: the size every platform must be able to propagate, and the
/// most we send (the SDK on the next hop drops a longer header entirely).
pub const MAX_BAGGAGE_BYTES: usize = 8192;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
const BAGGAGE: &str = "baggage";

/// Optional whitespace (RFC 7230 §3.2.3): spaces and horizontal tabs.
const OWS: [char; 2] = [' ', '\t'];

/// Reads propagation headers from an incoming actix-web request, unchecked.
/// [`extract_context`] does not use it directly: it validates first.
pub struct HeaderExtractor<'a>(pub &'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    /// Header names are case-insensitive (`HeaderMap` normalises them).
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Extract the caller's context (trace parent, trace state, baggage) from
/// request headers, after checking them against the W3C grammar (see the
/// module docs). With no valid `traceparent` the context is empty and the
/// caller starts a new trace.
pub fn extract_context(headers: &HeaderMap) -> Context {
    let inbound = InboundHeaders::new(headers);
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&inbound))
}

/// The propagation headers of one request as the SDK propagator gets to see
/// them: `traceparent` normalised or absent, `tracestate` rebuilt or absent,
/// `baggage` combined. Every other header reads through unchanged.
struct InboundHeaders<'a> {
    headers: &'a HeaderMap,
    traceparent: Option<&'a str>,
    tracestate: Option<String>,
    baggage: Option<Cow<'a, str>>,
}

impl<'a> InboundHeaders<'a> {
    fn new(headers: &'a HeaderMap) -> Self {
        let traceparent = single_value(headers, TRACEPARENT).and_then(|value| {
            let normalized = normalize_traceparent(value);
            if normalized.is_none() {
                tracing::debug!(
                    traceparent = value,
                    "invalid traceparent: starting a new trace"
                );
            }
            normalized
        });
        let tracestate = traceparent
            .and_then(|_| combined_value(headers, TRACESTATE))
            .and_then(|combined| match sanitize_tracestate(&combined) {
                Ok(clean) if clean.is_empty() => None,
                Ok(clean) => Some(clean),
                Err(reason) => {
                    tracing::debug!(%reason, "tracestate discarded");
                    None
                }
            });
        Self {
            headers,
            traceparent,
            tracestate,
            baggage: combined_value(headers, BAGGAGE),
        }
    }
}

impl Extractor for InboundHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        if key.eq_ignore_ascii_case(TRACEPARENT) {
            self.traceparent
        } else if key.eq_ignore_ascii_case(TRACESTATE) {
            self.tracestate.as_deref()
        } else if key.eq_ignore_ascii_case(BAGGAGE) {
            self.baggage.as_deref()
        } else {
            self.headers.get(key).and_then(|value| value.to_str().ok())
        }
    }

    fn keys(&self) -> Vec<&str> {
        self.headers.keys().map(HeaderName::as_str).collect()
    }
}

/// The value of header `name` when it occurs exactly once. Several
/// `traceparent` headers are ambiguous: the spec treats that as an invalid
/// `traceparent`, so the caller starts a new trace.
fn single_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut values = headers.get_all(name);
    let first = values.next()?;
    if values.next().is_some() {
        return None;
    }
    first.to_str().ok()
}

/// Every value of the list header `name`, joined with `,` (RFC 7230 §3.2.2:
/// repeated list headers combine in order), so no list-member is lost.
fn combined_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<Cow<'a, str>> {
    let mut values = headers.get_all(name).filter_map(|v| v.to_str().ok());
    let first = values.next()?;
    let Some(second) = values.next() else {
        return Some(Cow::Borrowed(first));
    };
    let mut joined = format!("{first},{second}");
    for value in values {
        joined.push(',');
        joined.push_str(value);
    }
    Some(Cow::Owned(joined))
}

/// Check a `traceparent` value against W3C Trace Context Level 1 and return
/// the part the SDK should parse, or `None` when it is invalid (the caller
/// then starts a new trace).
///
/// - optional whitespace around the value is ignored;
/// - `version "-" trace-id "-" parent-id "-" trace-flags`, each field exactly
///   2, 32, 16 and 2 lowercase hex digits;
/// - version `ff` is invalid; trace-id and parent-id must not be all zeros;
/// - version `00` is exactly those 55 characters; a higher (future) version
///   may continue after a `-`, and only the first four fields are used
///   ("Vendors MUST NOT parse or assume anything about unknown fields").
///
/// The returned slice is the first 55 characters, which the SDK parses
/// correctly (it injects version `00` downstream, as the spec asks).
pub fn normalize_traceparent(value: &str) -> Option<&str> {
    let value = value.trim_matches(OWS);
    let bytes = value.as_bytes();
    if bytes.len() < 55 {
        return None;
    }
    let hex = |range: std::ops::Range<usize>| {
        bytes[range]
            .iter()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let all_zeros = |range: std::ops::Range<usize>| bytes[range].iter().all(|&b| b == b'0');
    let well_formed = hex(0..2)
        && bytes[2] == b'-'
        && hex(3..35)
        && bytes[35] == b'-'
        && hex(36..52)
        && bytes[52] == b'-'
        && hex(53..55);
    if !well_formed || &bytes[0..2] == b"ff" || all_zeros(3..35) || all_zeros(36..52) {
        return None;
    }
    match (&bytes[0..2], bytes.get(55)) {
        (_, None) => {}
        (b"00", Some(_)) => return None,
        (_, Some(b'-')) => {}
        (_, Some(_)) => return None,
    }
    // The first 55 bytes are ASCII (checked above), so this is a char boundary.
    Some(&value[..55])
}

/// Why an inbound `tracestate` was discarded as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceStateError {
    #[error("invalid list-member {0:?}")]
    InvalidMember(String),
    #[error("duplicate key {0:?}")]
    DuplicateKey(String),
    #[error("more than {MAX_TRACESTATE_MEMBERS} list-members")]
    TooManyMembers,
}

/// Rebuild a (combined) `tracestate` value per W3C Trace Context Level 1:
/// `Ok` with the clean header (members joined by `,`, no whitespace; empty
/// when there are no members), or `Err` when the header must be discarded.
///
/// - optional whitespace around each list-member is trimmed, and empty or
///   whitespace-only members are skipped (the spec allows them);
/// - key: `lcalpha 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/")`, or the
///   multi-tenant `tenant-id "@" system-id` with tenant-id
///   `(lcalpha / DIGIT) 0*240(...)` and system-id `lcalpha 0*13(...)`;
/// - value: `0*255(chr) nblk-chr`, chr = `%x20 / nblk-chr`, nblk-chr =
///   `%x21-2B / %x2D-3C / %x3E-7E` (printable ASCII but `,` and `=`, not
///   ending in a space; leading spaces are part of the value);
/// - an invalid member, a duplicate key or more than 32 members discards the
///   whole header (see the module docs for why);
/// - a valid member the SDK's `TraceState` cannot hold is dropped alone. In
///   opentelemetry 0.32 that is a multi-tenant key whose system-id has the
///   maximum 14 characters (the SDK allows 13); without this the SDK would
///   throw away every other member with it.
pub fn sanitize_tracestate(combined: &str) -> Result<String, TraceStateError> {
    let mut members: Vec<(&str, &str)> = Vec::new();
    for member in combined.split(',').map(|m| m.trim_matches(OWS)) {
        if member.is_empty() {
            continue;
        }
        let (key, value) = member
            .split_once('=')
            .filter(|(key, value)| valid_tracestate_key(key) && valid_tracestate_value(value))
            .ok_or_else(|| TraceStateError::InvalidMember(excerpt(member)))?;
        if members.iter().any(|(seen, _)| *seen == key) {
            return Err(TraceStateError::DuplicateKey(excerpt(key)));
        }
        if members.len() == MAX_TRACESTATE_MEMBERS {
            return Err(TraceStateError::TooManyMembers);
        }
        members.push((key, value));
    }
    let mut clean = String::with_capacity(combined.len());
    for (key, value) in members {
        if TraceState::from_key_value([(key, value)]).is_err() {
            tracing::debug!(
                key,
                "tracestate member the SDK cannot represent was dropped"
            );
            continue;
        }
        if !clean.is_empty() {
            clean.push(',');
        }
        clean.push_str(key);
        clean.push('=');
        clean.push_str(value);
    }
    Ok(clean)
}

fn is_keychar(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/')
}

fn valid_tracestate_key(key: &str) -> bool {
    let valid = |part: &[u8], max: usize, first_ok: fn(u8) -> bool| {
        part.first().is_some_and(|&b| first_ok(b))
            && part.len() <= max
            && part.iter().all(|&b| is_keychar(b))
    };
    match key.split_once('@') {
        None => valid(key.as_bytes(), 256, |b| b.is_ascii_lowercase()),
        Some((tenant, system)) => {
            valid(tenant.as_bytes(), 241, |b| {
                b.is_ascii_lowercase() || b.is_ascii_digit()
            }) && valid(system.as_bytes(), 14, |b| b.is_ascii_lowercase())
        }
    }
}

fn valid_tracestate_value(value: &str) -> bool {
    let nblk = |b: u8| matches!(b, 0x21..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e);
    let bytes = value.as_bytes();
    bytes.len() <= 256
        && bytes.last().is_some_and(|&b| nblk(b))
        && bytes.iter().all(|&b| b == b' ' || nblk(b))
}

/// The start of a rejected member, for the debug log.
fn excerpt(text: &str) -> String {
    text.chars().take(64).collect()
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
///
/// `baggage` never exceeds [`MAX_BAGGAGE_BYTES`]: the SDK bounds what it
/// reads, but re-encodes values on the way out (a raw space or `"` becomes
/// three bytes), so a header that came in just under the limit can leave
/// over it, and the next hop would then drop all of it. When that happens the
/// largest entries are left out, whole, until the rest fits; the small
/// identifiers (`user_id`, `session_id`) survive.
pub fn inject_context(cx: &Context, headers: &mut HeaderMap) {
    inject_with_global(cx, headers);
    if !baggage_too_large(headers) {
        return;
    }
    let baggage = cx.baggage();
    let mut by_size: Vec<(&str, usize)> = baggage
        .iter()
        .map(|(key, (value, metadata))| {
            let size = key.as_str().len() + value.as_str().len() + metadata.as_str().len();
            (key.as_str(), size)
        })
        .collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    for dropped in 1..=by_size.len() {
        let left_out = &by_size[..dropped];
        let kept: Baggage = baggage
            .iter()
            .filter(|(key, _)| !left_out.iter().any(|(k, _)| *k == key.as_str()))
            .map(|(key, (value, metadata))| (key.clone(), (value.clone(), metadata.clone())))
            .collect();
        headers.remove(BAGGAGE);
        inject_with_global(&cx.with_baggage(kept), headers);
        if !baggage_too_large(headers) {
            tracing::debug!(
                dropped,
                "outgoing baggage over {MAX_BAGGAGE_BYTES} bytes: largest entries left out"
            );
            return;
        }
    }
}

fn inject_with_global(cx: &Context, headers: &mut HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut HeaderInjector(headers))
    });
}

fn baggage_too_large(headers: &HeaderMap) -> bool {
    headers
        .get(BAGGAGE)
        .is_some_and(|value| value.len() > MAX_BAGGAGE_BYTES)
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
pub fn decode_tags(value: &str) -> Option<Vec<String>> {
    let tags: Vec<String> = serde_json::from_str(value).ok()?;
    let valid = tags.len() <= MAX_TAGS
        && tags
            .iter()
            .all(|t| !t.is_empty() && t.chars().count() <= MAX_TAG_CHARS);
    valid.then_some(tags)
}

/// Copy the allow-listed baggage entries of `cx` onto `span`, through the
/// dialect mapping like every other fact: `user_id` (`user.id`,
/// `confident.trace.user_id`), `session_id` (`session.id`,
/// `gen_ai.conversation.id`, `confident.trace.thread_id`) and `tags`
/// (`confident.trace.tags`, `tag.tags`). Values over a size limit, or tags
/// that are not a well-formed list, are not recorded. Everything else in the
/// baggage is forwarded to the next hop but never recorded: it may hold
/// anything.
pub fn record_baggage(span: &tracing::Span, cx: &Context) {
    use crate::dialects::{self, Fact};
    let baggage = cx.baggage();
    let value = |key: &str| {
        baggage
            .get(key)
            .map(|v| v.to_string())
            .filter(|v| !v.is_empty() && v.len() <= MAX_RECORDED_BAGGAGE_VALUE)
    };
    if let Some(user) = value(baggage::USER_ID) {
        dialects::record(span, &[Fact::User(&user)]);
    }
    if let Some(session) = value(baggage::SESSION_ID) {
        dialects::record(span, &[Fact::Session(&session)]);
    }
    let tags = baggage
        .get(baggage::TAGS)
        .and_then(|v| decode_tags(v.as_str()));
    if let Some(tags) = tags {
        dialects::record(span, &[Fact::Tags(&tags)]);
    }
}
