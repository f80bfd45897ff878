//! A downstream's streaming response: `Downstream::post_stream` makes the
//! call through the same CLIENT span and context injection as
//! `Downstream::post_json` (`crate::client`), and [`EventStream`] decodes the
//! events as they arrive, keeping that span open until the stream ends.
//! [`relay`] turns them into the events of our own response.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::http::header::RETRY_AFTER;
use actix_web::web::Bytes;
use awc::error::PayloadError;
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::attributes::ragtrace::STREAM_OUTCOME;
use crate::client::{Downstream, traced};
use crate::error::ApiError;
use crate::http::downstream_error::{DownstreamError, MAX_RESPONSE_BYTES};
use crate::telemetry;
use crate::wire::{ErrorBody, StreamEvent};

use super::span_end::end_now;

impl Downstream {
    /// `POST {base}{path}` with `body` as JSON to a streaming endpoint: the
    /// same CLIENT span and context injection as [`post_json`](Self::post_json),
    /// but the span stays open while the events arrive and ends when the
    /// returned [`EventStream`] finishes or is dropped.
    ///
    /// A non-2xx answer is an error before any event, exactly as for
    /// `post_json`. After that, the configured timeout bounds the wait for
    /// *each* event (an idle timeout), not the whole stream: a long answer is
    /// fine, a stalled one is not.
    pub async fn post_stream<Req: Serialize>(
        &self,
        client: &awc::Client,
        path: &'static str,
        body: &Req,
    ) -> Result<EventStream, DownstreamError> {
        let url = format!("{}{path}", self.base_url());
        let call = self.call(&url);
        let span = call.span(&format!("POST {path}"));
        let response = traced(span.clone(), async {
            let mut response = call.send(client, body).await?;
            let status = response.status();
            if !status.is_success() {
                let retry_after = response.headers().get(RETRY_AFTER).cloned();
                let bytes = response.body().limit(MAX_RESPONSE_BYTES).await;
                return Err(DownstreamError::from_status(
                    self.service,
                    status,
                    retry_after.as_ref(),
                    bytes.as_deref().unwrap_or_default(),
                ));
            }
            let is_sse = response
                .headers()
                .get(actix_web::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("text/event-stream"));
            if !is_sse {
                return Err(DownstreamError::InvalidResponse {
                    service: self.service,
                    reason: "expected a text/event-stream response".into(),
                });
            }
            Ok(response)
        })
        .await?;
        Ok(EventStream {
            service: self.service,
            url,
            body: Box::pin(response),
            decoder: crate::sse::Decoder::new(),
            idle: self.timeout,
            deadline: Box::pin(actix_web::rt::time::sleep(self.timeout)),
            span,
            state: StreamState::Open,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamState {
    Open,
    /// A `done` or `error` event arrived, or the stream failed.
    Ended,
}

/// The events of a downstream's `text/event-stream` response, decoded into
/// [`StreamEvent`]s, inside the call's CLIENT span.
///
/// Ends after the first terminal event (`done` or `error`). A connection that
/// breaks, an idle timeout, an undecodable event, or a body that ends with no
/// terminal event yield one `Err` and end the stream; the CLIENT span records
/// each of those as an error. Dropping the stream early (our own caller went
/// away) ends the span with `ragtrace.stream.outcome = cancelled`, and closes
/// the connection, which is how the cancellation travels downstream.
pub struct EventStream {
    service: &'static str,
    url: String,
    body: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>,
    decoder: crate::sse::Decoder,
    idle: Duration,
    deadline: Pin<Box<actix_web::rt::time::Sleep>>,
    span: Span,
    state: StreamState,
}

impl EventStream {
    fn fail(&mut self, err: DownstreamError) -> Option<Result<StreamEvent, DownstreamError>> {
        self.state = StreamState::Ended;
        telemetry::record_error(&self.span, err.code(), &err.to_string());
        self.span.set_attribute(STREAM_OUTCOME, "error");
        end_now(&self.span);
        Some(Err(err))
    }

    fn invalid(&mut self, reason: String) -> Option<Result<StreamEvent, DownstreamError>> {
        let service = self.service;
        self.fail(DownstreamError::InvalidResponse { service, reason })
    }
}

impl Stream for EventStream {
    type Item = Result<StreamEvent, DownstreamError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if this.state == StreamState::Ended {
                return Poll::Ready(None);
            }
            match this.decoder.next_event() {
                Ok(Some(raw)) => {
                    let event = match StreamEvent::parse(&raw.event, &raw.data) {
                        Ok(event) => event,
                        Err(reason) => return Poll::Ready(this.invalid(reason)),
                    };
                    match &event {
                        StreamEvent::Done(_) => {
                            this.state = StreamState::Ended;
                            this.span.set_attribute(STREAM_OUTCOME, "completed");
                        }
                        StreamEvent::Error(body) => {
                            // The callee failed mid-stream: for this hop that
                            // is a failed call, like a 5xx.
                            this.state = StreamState::Ended;
                            telemetry::record_error(&this.span, &body.error, &body.message);
                            this.span.set_attribute(STREAM_OUTCOME, "error");
                        }
                        _ => {}
                    }
                    if this.state == StreamState::Ended {
                        end_now(&this.span);
                    }
                    return Poll::Ready(Some(Ok(event)));
                }
                Ok(None) => {}
                Err(err) => return Poll::Ready(this.invalid(err.to_string())),
            }
            match this.body.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    this.decoder.push(&bytes);
                    let next = actix_web::rt::time::Instant::now() + this.idle;
                    this.deadline.as_mut().reset(next);
                }
                Poll::Ready(Some(Err(err))) => {
                    let err = DownstreamError::Unavailable {
                        service: this.service,
                        url: this.url.clone(),
                        reason: format!("the event stream broke: {err}"),
                    };
                    return Poll::Ready(this.fail(err));
                }
                Poll::Ready(None) => {
                    return Poll::Ready(
                        this.invalid("the event stream ended before its done event".into()),
                    );
                }
                Poll::Pending => {
                    if this.deadline.as_mut().poll(cx).is_ready() {
                        let err = DownstreamError::Timeout {
                            service: this.service,
                            url: this.url.clone(),
                            after: this.idle,
                        };
                        return Poll::Ready(this.fail(err));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if self.state == StreamState::Open {
            // Our caller stopped listening before the callee finished.
            self.span.set_attribute(STREAM_OUTCOME, "cancelled");
            end_now(&self.span);
        }
    }
}

/// Turn a downstream stream's items into events for our own client: the
/// first error becomes an `error` event carrying *our* trace id (so the
/// client can find the trace), naming the hop that failed.
pub fn relay(upstream: EventStream) -> impl Stream<Item = StreamEvent> + 'static {
    upstream.map(|item| {
        item.unwrap_or_else(|err| {
            StreamEvent::Error(ErrorBody {
                error: err.code().to_owned(),
                message: err.to_string(),
                trace_id: telemetry::current_trace_id(),
            })
        })
    })
}
