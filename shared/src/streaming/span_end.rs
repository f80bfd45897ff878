//! The end time of a span that describes a stream.

use tracing::Span;

/// Make "now" the end time `span` is exported with.
///
/// tracing-opentelemetry (0.33) stamps a span's end time when the span is
/// last *exited*, not when its last handle is dropped. A span that describes
/// a stream is created in the handler, exited when the handler returns, and
/// then lives on in the response body without being entered again, so
/// without this its duration would stop at the handler's return, long
/// before the stream finished. Entering and leaving it once, at the end,
/// moves the end time to where the stream really ended.
pub(crate) fn end_now(span: &Span) {
    span.in_scope(|| {});
}
