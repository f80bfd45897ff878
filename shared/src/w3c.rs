//! W3C Trace Context rules: what a valid `traceparent` and `tracestate` are,
//! and what the next hop gets where the OpenTelemetry SDK (0.32) falls short
//! of Trace Context Level 2.
//!
//! [`crate::propagation`] is the short story: extract the caller's context,
//! inject ours, through the global SDK propagator. This module is the fine
//! print it calls into, checked against the spec and the public test suite
//! (github.com/w3c/trace-context at `acab820`, `SPEC_LEVEL=2`: 41 of 41; the
//! cases are tabled in `shared/tests/w3c_cases.rs`, the policy is explained
//! in `docs/w3c.md`).
//!
//! **On the way in**, the SDK's `TraceContextPropagator` is lenient where the
//! spec is not, and whatever we accept is forwarded to every downstream hop.
//! So it only reads what passed these rules:
//!
//! - [`normalize_traceparent`]: the spec's grammar, exactly. The SDK parses
//!   each field with `from_str_radix`, so on its own it would join the
//!   caller's trace for a 1-, 3- or 4-digit version, a 31-digit trace-id, a
//!   15-digit parent-id, 1- or 3-digit flags, a `+` sign, an uppercase
//!   version, or a trailing `-` after version `00`.
//! - [`sanitize_tracestate`]: the Level 2 grammar, optional whitespace
//!   trimmed, empty members skipped, duplicate keys reduced to the first
//!   (left-most). A header that still breaks a rule is discarded whole.
//!
//! **What the SDK cannot hold**, [`remember_inbound`] keeps in the extracted
//! [`Context`], and [`outgoing_traceparent`] / [`outgoing_tracestate`] put
//! back on the way out:
//!
//! - the *random* trace-flag (`0x02`, Level 2). opentelemetry 0.32 knows only
//!   the sampled flag: its propagator clears every other bit when it reads a
//!   `traceparent` and when it writes one, and a span that is not sampled
//!   gets flags `00` whatever its parent had. The spec requires an incoming
//!   random flag to be kept on every outgoing `traceparent` of that trace;
//!   and a trace we start gets the flag too, since its id comes from the
//!   SDK's `RandomIdGenerator` (128 random bits; `telemetry::init` sets no
//!   other generator);
//! - `tracestate` keys its `TraceState` rejects: more than one `@`, more
//!   than 13 characters after the `@`, or anything but a letter or a digit
//!   right after it (`foo@@bar`, `foo@bar@baz`, `t@vvvvvvvvvvvvvv`,
//!   `foo@_bar`). The SDK would throw away the whole header for one of them,
//!   so it is handed only the members it can hold (they are what exported
//!   spans carry as their trace state), and the next hop gets the full list.

use std::borrow::Cow;

use actix_web::http::header::HeaderMap;
use actix_web::http::header::HeaderName;
use opentelemetry::Context;
use opentelemetry::baggage::{Baggage, BaggageExt};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{TraceContextExt, TraceId, TraceState};

/// trace-flags bit 0: the caller may have recorded trace data.
pub const FLAG_SAMPLED: u8 = 0x01;

/// trace-flags bit 1 (Level 2): at least the right-most 7 bytes of the
/// trace-id are random.
pub const FLAG_RANDOM: u8 = 0x02;

/// The trace-flags we know. Every other bit is sent on as 0, as the spec asks.
pub const KNOWN_FLAGS: u8 = FLAG_SAMPLED | FLAG_RANDOM;

/// "There can be a maximum of 32 list-members in a list."
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

/// Longest `tracestate` key, every character (`@` included) counted.
pub const MAX_TRACESTATE_KEY_CHARS: usize = 256;

/// Longest `tracestate` value.
pub const MAX_TRACESTATE_VALUE_CHARS: usize = 256;

/// Optional whitespace (RFC 7230 §3.2.3): spaces and horizontal tabs.
const OWS: [char; 2] = [' ', '\t'];

/// Length of a version `00` `traceparent`: 2 + 1 + 32 + 1 + 16 + 1 + 2.
const TRACEPARENT_LEN: usize = 55;

// ── traceparent ─────────────────────────────────────────────────────────────

/// Check a `traceparent` value against the spec's grammar and return the part
/// the SDK should parse, or `None` when it is invalid (the caller then starts
/// a new trace).
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
/// correctly (it sends version `00` on, as the spec asks).
pub fn normalize_traceparent(value: &str) -> Option<&str> {
    let value = value.trim_matches(OWS);
    let bytes = value.as_bytes();
    if bytes.len() < TRACEPARENT_LEN {
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
    match (&bytes[0..2], bytes.get(TRACEPARENT_LEN)) {
        (_, None) => {}
        (b"00", Some(_)) => return None,
        (_, Some(b'-')) => {}
        (_, Some(_)) => return None,
    }
    // The first 55 bytes are ASCII (checked above), so this is a char boundary.
    Some(&value[..TRACEPARENT_LEN])
}

/// The trace-flags of a `traceparent` that [`normalize_traceparent`]
/// accepted, the bits we know only ([`KNOWN_FLAGS`]); 0 for anything else.
pub fn known_flags(traceparent: &str) -> u8 {
    traceparent
        .get(53..55)
        .and_then(|flags| u8::from_str_radix(flags, 16).ok())
        .map_or(0, |flags| flags & KNOWN_FLAGS)
}

// ── tracestate ──────────────────────────────────────────────────────────────

/// Why an inbound `tracestate` was discarded as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceStateError {
    #[error("invalid list-member {0:?}")]
    InvalidMember(String),
    #[error("more than {MAX_TRACESTATE_MEMBERS} list-members")]
    TooManyMembers,
}

/// Rebuild a (combined) `tracestate` value per the spec's Level 2 grammar:
/// `Ok` with the clean header (members joined by `,`, no whitespace; empty
/// when there are no members), or `Err` when the header must be discarded.
///
/// - optional whitespace around each list-member is trimmed, and empty or
///   whitespace-only members are skipped (the spec allows them);
/// - key: `(lcalpha / DIGIT) 0*255(keychar)`, keychar = `lcalpha / DIGIT /
///   "_" / "-" / "*" / "/" / "@"`: up to 256 characters, `@` anywhere but
///   first, any number of times;
/// - value: `0*255(chr) nblk-chr`, chr = `%x20 / nblk-chr`, nblk-chr =
///   `%x21-2B / %x2D-3C / %x3E-7E` (printable ASCII but `,` and `=`, not
///   ending in a space; leading spaces are part of the value);
/// - a key that occurs again is kept once, with its first (left-most) value:
///   the left-most entry is the most recent one ("modified keys MUST be moved
///   to the beginning"), and the spec lets vendors "discard duplicate keys
///   that were not generated by them";
/// - an invalid member, or more than 32 members (duplicates counted, empty
///   members not), discards the whole header.
pub fn sanitize_tracestate(combined: &str) -> Result<String, TraceStateError> {
    let mut members: Vec<(&str, &str)> = Vec::new();
    let mut count = 0;
    for member in combined.split(',').map(|m| m.trim_matches(OWS)) {
        if member.is_empty() {
            continue;
        }
        let (key, value) = member
            .split_once('=')
            .filter(|(key, value)| valid_tracestate_key(key) && valid_tracestate_value(value))
            .ok_or_else(|| TraceStateError::InvalidMember(excerpt(member)))?;
        count += 1;
        if count > MAX_TRACESTATE_MEMBERS {
            return Err(TraceStateError::TooManyMembers);
        }
        if members.iter().any(|(seen, _)| *seen == key) {
            tracing::debug!(
                key = excerpt(key),
                "duplicate tracestate key: the first (left-most) is kept"
            );
            continue;
        }
        members.push((key, value));
    }
    Ok(join_members(members))
}

/// The members of a clean `tracestate` (from [`sanitize_tracestate`]) that the
/// SDK's `TraceState` can hold, in order. opentelemetry 0.32 accepts a key
/// with at most one `@`, a letter or a digit right after it, and at most 13
/// characters after it; one key it rejects would make it drop the whole
/// header. What it is not given still reaches the next hop (see
/// [`outgoing_tracestate`]).
pub fn sdk_tracestate(clean: &str) -> String {
    let held = clean
        .split(',')
        .filter_map(|member| member.split_once('='))
        .filter(|member| {
            let held = TraceState::from_key_value([*member]).is_ok();
            if !held {
                tracing::debug!(
                    key = excerpt(member.0),
                    "tracestate key the SDK cannot hold: forwarded, not on the span"
                );
            }
            held
        });
    join_members(held)
}

fn join_members<'a>(members: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut joined = String::new();
    for (key, value) in members {
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(key);
        joined.push('=');
        joined.push_str(value);
    }
    joined
}

fn valid_tracestate_key(key: &str) -> bool {
    let is_keychar =
        |b: &u8| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/' | b'@');
    let bytes = key.as_bytes();
    bytes
        .first()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.len() <= MAX_TRACESTATE_KEY_CHARS
        && bytes.iter().all(is_keychar)
}

fn valid_tracestate_value(value: &str) -> bool {
    let nblk = |b: u8| matches!(b, 0x21..=0x2b | 0x2d..=0x3c | 0x3e..=0x7e);
    let bytes = value.as_bytes();
    bytes.len() <= MAX_TRACESTATE_VALUE_CHARS
        && bytes.last().is_some_and(|&b| nblk(b))
        && bytes.iter().all(|&b| b == b' ' || nblk(b))
}

/// The start of a rejected member or key, for the debug log.
fn excerpt(text: &str) -> String {
    text.chars().take(64).collect()
}

// ── what the SDK cannot hold ────────────────────────────────────────────────

/// A valid inbound `traceparent`/`tracestate`, as far as the SDK's span
/// context does not keep it. A context value: every span under the SERVER
/// span inherits it (tracing-opentelemetry builds a child's context from its
/// parent's), and only this module can read or write it.
#[derive(Debug, Clone)]
struct Inbound {
    trace_id: TraceId,
    /// The inbound random flag.
    random: bool,
    /// The clean `tracestate`, every member; `None`: there was none.
    tracestate: Option<String>,
    /// What the SDK read of it; a span whose trace state differs was changed
    /// by code of ours, and then the SDK's is the one to send.
    sdk_tracestate: TraceState,
}

/// `cx` (what the SDK propagator extracted from `traceparent`, as returned by
/// [`normalize_traceparent`], and from the members of `tracestate` it can
/// hold), plus what the SDK does not keep: the random flag and the full clean
/// `tracestate`. Unchanged when the SDK extracted no valid parent.
pub fn remember_inbound(cx: Context, traceparent: &str, tracestate: Option<String>) -> Context {
    let remote = cx.span().span_context().clone();
    if !remote.is_valid() {
        return cx;
    }
    cx.with_value(Inbound {
        trace_id: remote.trace_id(),
        random: known_flags(traceparent) & FLAG_RANDOM != 0,
        tracestate,
        sdk_tracestate: remote.trace_state().clone(),
    })
}

/// The `traceparent` for a call made under `cx`'s span, `None` when it has no
/// valid span: version `00`, the span's trace-id and span-id, and the flags
///
/// - sampled: the span's own sampling decision (as the SDK writes it);
/// - random: the inbound flag when the trace came in through
///   [`remember_inbound`]; set when the trace started here (its id is the
///   SDK's random one);
/// - every other bit 0.
pub fn outgoing_traceparent(cx: &Context) -> Option<String> {
    let span = cx.span();
    let span_context = span.span_context();
    if !span_context.is_valid() {
        return None;
    }
    let random = match cx.get::<Inbound>() {
        Some(inbound) if inbound.trace_id == span_context.trace_id() => inbound.random,
        _ => true,
    };
    let sampled = span_context.trace_flags().to_u8() & FLAG_SAMPLED;
    let flags = sampled | if random { FLAG_RANDOM } else { 0 };
    Some(format!(
        "00-{}-{}-{flags:02x}",
        span_context.trace_id(),
        span_context.span_id()
    ))
}

/// The `tracestate` for a call made under `cx`, when it is not simply the
/// span's trace state as the SDK writes it: the full clean inbound list
/// (members the SDK cannot hold included), as long as the span belongs to
/// that trace and its trace state is still what the SDK read. `None`: send
/// the SDK's.
pub fn outgoing_tracestate(cx: &Context) -> Option<&str> {
    let inbound = cx.get::<Inbound>()?;
    let span = cx.span();
    let span_context = span.span_context();
    let unchanged = span_context.trace_id() == inbound.trace_id
        && *span_context.trace_state() == inbound.sdk_tracestate;
    if unchanged {
        inbound.tracestate.as_deref()
    } else {
        None
    }
}

// ── Inbound headers, checked before the SDK propagator reads them ──────────

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
const BAGGAGE: &str = "baggage";

/// The propagation headers of one request as the SDK propagator gets to see
/// them: `traceparent` normalised or absent, `tracestate` rebuilt or absent
/// (the SDK reads the members it can hold), `baggage` combined. Every other
/// header reads through unchanged.
pub(crate) struct InboundHeaders<'a> {
    headers: &'a HeaderMap,
    pub(crate) traceparent: Option<&'a str>,
    /// The clean `tracestate`, every member.
    pub(crate) tracestate: Option<String>,
    /// The members of `tracestate` the SDK's `TraceState` can hold.
    sdk_tracestate: Option<String>,
    baggage: Option<Cow<'a, str>>,
}

impl<'a> InboundHeaders<'a> {
    pub(crate) fn new(headers: &'a HeaderMap) -> Self {
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
        let sdk_tracestate = tracestate
            .as_deref()
            .map(sdk_tracestate)
            .filter(|held| !held.is_empty());
        Self {
            headers,
            traceparent,
            tracestate,
            sdk_tracestate,
            baggage: combined_value(headers, BAGGAGE),
        }
    }
}

impl Extractor for InboundHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        if key.eq_ignore_ascii_case(TRACEPARENT) {
            self.traceparent
        } else if key.eq_ignore_ascii_case(TRACESTATE) {
            self.sdk_tracestate.as_deref()
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

// ── Outbound baggage, within the W3C Baggage limit ────────────────────────

/// W3C Baggage: the size every platform must be able to propagate, and the
/// most we send (the SDK on the next hop drops a longer header entirely).
pub const MAX_BAGGAGE_BYTES: usize = 8192;

/// Keep the `baggage` header `inject` wrote for `cx` within
/// [`MAX_BAGGAGE_BYTES`]. The SDK bounds what it reads, but re-encodes
/// values on the way out (a raw space or `"` becomes three bytes), so a
/// header that came in just under the limit can leave over it, and the next
/// hop would then drop all of it. When that happens the largest entries are
/// left out, whole, until the rest fits; the small identifiers (`user_id`,
/// `session_id`) survive.
pub fn fit_baggage(cx: &Context, headers: &mut HeaderMap, inject: fn(&Context, &mut HeaderMap)) {
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
        inject(&cx.with_baggage(kept), headers);
        if !baggage_too_large(headers) {
            tracing::debug!(
                dropped,
                "outgoing baggage over {MAX_BAGGAGE_BYTES} bytes: largest entries left out"
            );
            return;
        }
    }
}

fn baggage_too_large(headers: &HeaderMap) -> bool {
    headers
        .get(BAGGAGE)
        .is_some_and(|value| value.len() > MAX_BAGGAGE_BYTES)
}
