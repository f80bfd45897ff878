//! Our own streaming response: [`respond`] serves a stream of
//! [`StreamEvent`]s as `text/event-stream`, and the body it builds owns the
//! spans that describe the stream, recording how it ended (completed,
//! failed, cancelled) and ending them when it does.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use futures_util::Stream;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::attributes::ragtrace::{STREAM_CHUNKS, STREAM_OUTCOME};
use crate::wire::{ErrorBody, StreamEvent};

use super::span_end::end_now;

/// Most answer text kept for the span's output content (only with content
/// capture on); the redactor caps what is recorded further.
const MAX_KEPT_TEXT: usize = 256 * 1024;

/// `error.type` of an operation the client abandoned mid-stream (metrics).
pub const CANCELLED: &str = "cancelled";

/// How a served stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The `done` event went out.
    Completed,
    /// An `error` event went out, or the source ended without a terminal
    /// event (then we sent an `error` event ourselves).
    Failed,
    /// The client went away before the terminal event.
    Cancelled,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "error",
            Self::Cancelled => "cancelled",
        }
    }
}

/// What passed through a stream, for the spans' closing facts.
#[derive(Debug, Default)]
pub struct Observed {
    /// Number of `delta` events.
    pub chunks: u64,
    /// The concatenated deltas; collected only with content capture on.
    pub text: String,
    /// The `error` event, if the stream ended with one.
    pub error: Option<ErrorBody>,
}

/// Serve `events` as `text/event-stream`. `spans` (innermost first) end when
/// the stream does; each gets `ragtrace.stream.outcome` and
/// `ragtrace.stream.chunks`, and a failure marks them ERROR. `on_end` runs
/// once, before the spans end, to record what only the finished stream knows
/// (the output).
pub fn respond<S, F>(events: S, spans: Vec<Span>, on_end: F) -> HttpResponse
where
    S: Stream<Item = StreamEvent> + 'static,
    F: FnOnce(Outcome, &Observed) + 'static,
{
    let body = Served {
        events: Box::pin(events),
        spans,
        observed: Observed::default(),
        capture: crate::redact::capture_content(),
        on_end: Some(Box::new(on_end)),
        finished: false,
    };
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        // Tell a buffering reverse proxy (nginx) to pass chunks straight on.
        .insert_header(("x-accel-buffering", "no"))
        .streaming(body)
}

type OnEnd = Box<dyn FnOnce(Outcome, &Observed)>;

struct Served {
    events: Pin<Box<dyn Stream<Item = StreamEvent>>>,
    spans: Vec<Span>,
    observed: Observed,
    capture: bool,
    on_end: Option<OnEnd>,
    finished: bool,
}

impl Served {
    fn observe(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::Delta(text) => {
                self.observed.chunks += 1;
                if self.capture && self.observed.text.len() < MAX_KEPT_TEXT {
                    self.observed.text.push_str(text);
                }
            }
            StreamEvent::Error(body) => self.observed.error = Some(body.clone()),
            StreamEvent::Contexts(_) | StreamEvent::Done(_) => {}
        }
    }

    fn finish(&mut self, outcome: Outcome) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        if let Some(on_end) = self.on_end.take() {
            on_end(outcome, &self.observed);
        }
        for span in &self.spans {
            span.set_attribute(STREAM_OUTCOME, outcome.as_str());
            span.set_attribute(STREAM_CHUNKS, self.observed.chunks as i64);
            if outcome == Outcome::Failed
                && let Some(error) = &self.observed.error
            {
                crate::telemetry::record_error(span, &error.error, &error.message);
            }
        }
        if outcome == Outcome::Cancelled
            && let Some(span) = self.spans.first()
        {
            tracing::info!(parent: span, chunks = self.observed.chunks, "client disconnected mid-stream");
        }
        // The spans end here, not whenever actix gets round to dropping us.
        for span in self.spans.drain(..) {
            end_now(&span);
        }
    }
}

impl Stream for Served {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.finished {
            return Poll::Ready(None);
        }
        match this.events.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(event)) => {
                this.observe(&event);
                let bytes = crate::sse::encode(event.name(), &event.data());
                match &event {
                    StreamEvent::Done(_) => this.finish(Outcome::Completed),
                    StreamEvent::Error(_) => this.finish(Outcome::Failed),
                    _ => {}
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            Poll::Ready(None) => {
                // The source ended without saying how: tell the client, so it
                // does not mistake a cut-off answer for a complete one.
                let error = ErrorBody {
                    error: "stream_incomplete".to_owned(),
                    message: "the answer stream ended before it was complete".to_owned(),
                    trace_id: crate::telemetry::current_trace_id(),
                };
                let event = StreamEvent::Error(error);
                this.observe(&event);
                this.finish(Outcome::Failed);
                Poll::Ready(Some(Ok(crate::sse::encode(event.name(), &event.data()))))
            }
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        // Dropped before the terminal event went out: the client left.
        self.finish(Outcome::Cancelled);
    }
}
