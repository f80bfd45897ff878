//! Outbound calls: every service-to-service request goes through
//! [`Downstream::post_json`] (or [`post_json_url`], its twin for a URL known
//! only at run time), so every hop gets the same CLIENT span, the same context
//! injection, the same timeout and the same error mapping: both share one
//! code path, and the context is injected in exactly one place.
//!
//! Why a CLIENT span per call, not just the header: the gap between the
//! caller's CLIENT span and the callee's SERVER span is network + queueing
//! time, and each outgoing call must carry *its own* span id as parent (W3C
//! Trace Context's test suite checks exactly that). A CLIENT span is also
//! where a dead or slow downstream shows up when the callee records nothing.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::web::Bytes;
use awc::error::{PayloadError, SendRequestError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::error::{ApiError, ErrorBody};
use crate::wire::StreamEvent;
use crate::{propagation, telemetry};

/// Largest response body we read from a downstream service.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// A service we call: its name (as in its `service.name`), base URL, timeout.
#[derive(Debug, Clone)]
pub struct Downstream {
    service: &'static str,
    base_url: String,
    host: String,
    port: u16,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid URL for {service}: {url:?} (expected http://host:port)")]
pub struct InvalidUrl {
    service: &'static str,
    url: String,
}

impl Downstream {
    pub fn new(
        service: &'static str,
        base_url: &str,
        timeout: Duration,
    ) -> Result<Self, InvalidUrl> {
        let invalid = || InvalidUrl {
            service,
            url: base_url.to_owned(),
        };
        let base_url = base_url.trim_end_matches('/').to_owned();
        let uri: awc::http::Uri = base_url.parse().map_err(|_| invalid())?;
        if uri.scheme_str() != Some("http") && uri.scheme_str() != Some("https") {
            return Err(invalid());
        }
        let host = uri.host().ok_or_else(invalid)?.to_owned();
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        Ok(Self {
            service,
            base_url,
            host,
            port,
            timeout,
        })
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A call to `url` on this downstream.
    fn call<'a>(&'a self, url: &'a str) -> Call<'a> {
        Call {
            service: self.service,
            url,
            host: &self.host,
            port: self.port,
            timeout: self.timeout,
        }
    }

    /// `POST {base}{path}` with `body` as JSON, inside a CLIENT span that
    /// carries the trace context to the callee.
    pub async fn post_json<Req, Resp>(
        &self,
        client: &awc::Client,
        path: &'static str,
        body: &Req,
    ) -> Result<Resp, DownstreamError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let url = format!("{}{path}", self.base_url);
        let call = self.call(&url);
        let span = call.span(&format!("POST {path}"));
        traced(span, async {
            let (status, bytes) = call.exchange(client, body).await?;
            if !status.is_success() {
                return Err(status_error(self.service, status, &bytes));
            }
            serde_json::from_slice(&bytes).map_err(|err| DownstreamError::InvalidResponse {
                service: self.service,
                reason: err.to_string(),
            })
        })
        .await
    }
}

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
        let url = format!("{}{path}", self.base_url);
        let call = self.call(&url);
        let span = call.span(&format!("POST {path}"));
        let response = traced(span.clone(), async {
            let mut response = call.send(client, body).await?;
            let status = response.status();
            if !status.is_success() {
                let bytes = response.body().limit(MAX_RESPONSE_BYTES).await;
                return Err(status_error(
                    self.service,
                    status,
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
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, PayloadError>>>>,
    decoder: crate::sse::Decoder,
    idle: Duration,
    deadline: std::pin::Pin<Box<actix_web::rt::time::Sleep>>,
    span: Span,
    state: StreamState,
}

impl EventStream {
    fn fail(&mut self, err: DownstreamError) -> Option<Result<StreamEvent, DownstreamError>> {
        self.state = StreamState::Ended;
        telemetry::record_error(&self.span, err.code(), &err.to_string());
        self.span
            .set_attribute(crate::attributes::ragtrace::STREAM_OUTCOME, "error");
        crate::streaming::end_now(&self.span);
        Some(Err(err))
    }

    fn invalid(&mut self, reason: String) -> Option<Result<StreamEvent, DownstreamError>> {
        let service = self.service;
        self.fail(DownstreamError::InvalidResponse { service, reason })
    }
}

impl futures_util::Stream for EventStream {
    type Item = Result<StreamEvent, DownstreamError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
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
                            this.span.set_attribute(
                                crate::attributes::ragtrace::STREAM_OUTCOME,
                                "completed",
                            );
                        }
                        StreamEvent::Error(body) => {
                            // The callee failed mid-stream: for this hop that
                            // is a failed call, like a 5xx.
                            this.state = StreamState::Ended;
                            telemetry::record_error(&this.span, &body.error, &body.message);
                            this.span.set_attribute(
                                crate::attributes::ragtrace::STREAM_OUTCOME,
                                "error",
                            );
                        }
                        _ => {}
                    }
                    if this.state == StreamState::Ended {
                        crate::streaming::end_now(&this.span);
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
            self.span
                .set_attribute(crate::attributes::ragtrace::STREAM_OUTCOME, "cancelled");
            crate::streaming::end_now(&self.span);
        }
    }
}

/// `POST url` with `body` as JSON to any URL, through the same CLIENT span,
/// context injection, timeout and error mapping as [`Downstream::post_json`].
/// For callees with no fixed base URL (the W3C test harness hands its
/// callback URLs over in the request). `peer` names the callee in the span
/// (`ragtrace.peer.service`) and in errors. The response body is read but not
/// interpreted: a 2xx status is `Ok`, anything else an error.
///
/// The span is named just `POST`: the HTTP conventions name a CLIENT span
/// `{method} {url.template}`, and an arbitrary URL is no template (it would
/// make span names unbounded).
pub async fn post_json_url(
    client: &awc::Client,
    peer: &'static str,
    url: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<StatusCode, DownstreamError> {
    let uri = url.parse::<awc::http::Uri>().ok();
    let host = uri.as_ref().and_then(|uri| uri.host()).unwrap_or("");
    let port = uri.as_ref().map_or(0, |uri| {
        uri.port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            })
    });
    let call = Call {
        service: peer,
        url,
        host,
        port,
        timeout,
    };
    let span = call.span("POST");
    traced(span, async {
        let (status, bytes) = call.exchange(client, body).await?;
        if status.is_success() {
            Ok(status)
        } else {
            Err(status_error(peer, status, &bytes))
        }
    })
    .await
}

/// One outbound call: where it goes, and what its CLIENT span records.
struct Call<'a> {
    service: &'static str,
    url: &'a str,
    host: &'a str,
    port: u16,
    timeout: Duration,
}

impl Call<'_> {
    /// The call's CLIENT span (current HTTP semantic conventions).
    fn span(&self, name: &str) -> Span {
        let span = tracing::info_span!(
            "HTTP client request",
            otel.name = %name,
            otel.kind = "client",
            "http.request.method" = "POST",
            "url.full" = %self.url,
            "server.address" = %self.host,
            "server.port" = i64::from(self.port),
            "ragtrace.peer.service" = self.service,
            "http.response.status_code" = tracing::field::Empty,
        );
        // The user, session and tags the request carries as baggage, as on
        // the SERVER span at the other end of this call.
        crate::propagation::record_baggage(&span, &Span::current().context());
        span
    }

    /// Send `body` as JSON and read the whole response. Runs inside the call's
    /// CLIENT span (see [`traced`]).
    async fn exchange<Req: Serialize>(
        &self,
        client: &awc::Client,
        body: &Req,
    ) -> Result<(StatusCode, Bytes), DownstreamError> {
        let mut response = self.send(client, body).await?;
        let bytes = response
            .body()
            .limit(MAX_RESPONSE_BYTES)
            .await
            .map_err(|err| DownstreamError::InvalidResponse {
                service: self.service,
                reason: err.to_string(),
            })?;
        Ok((response.status(), bytes))
    }

    /// Send `body` as JSON and return the response once its head arrived.
    /// Every outbound request, plain or streaming, goes through here.
    async fn send<Req: Serialize>(
        &self,
        client: &awc::Client,
        body: &Req,
    ) -> Result<awc::ClientResponse, DownstreamError> {
        let mut request = client
            .post(self.url)
            .timeout(self.timeout)
            .insert_header(ContentType::json());
        // ── Context crosses the wire here (outbound) ── The current span is
        // this call's CLIENT span, so the callee's SERVER span becomes its
        // child. `traceparent`, `tracestate` and `baggage` are all written by
        // the global composite propagator.
        propagation::inject_context(&Span::current().context(), request.headers_mut());

        let response = request.send_json(body).await.map_err(|err| match err {
            SendRequestError::Timeout => DownstreamError::Timeout {
                service: self.service,
                url: self.url.to_owned(),
                after: self.timeout,
            },
            other => DownstreamError::Unavailable {
                service: self.service,
                url: self.url.to_owned(),
                reason: other.to_string(),
            },
        })?;
        Span::current().record(
            "http.response.status_code",
            i64::from(response.status().as_u16()),
        );
        Ok(response)
    }
}

/// Run `call` inside its CLIENT `span`; a failure marks the span ERROR (with
/// `error.type` and an `exception` event) and is logged.
async fn traced<T>(
    span: Span,
    call: impl Future<Output = Result<T, DownstreamError>>,
) -> Result<T, DownstreamError> {
    let result = call.instrument(span.clone()).await;
    if let Err(err) = &result {
        telemetry::record_error(&span, err.code(), &err.to_string());
    }
    result
}

/// A non-2xx answer, with the callee's error body when it sent ours.
fn status_error(service: &'static str, status: StatusCode, bytes: &[u8]) -> DownstreamError {
    DownstreamError::Status {
        service,
        status,
        body: serde_json::from_slice::<ErrorBody>(bytes).ok(),
    }
}

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
}

impl DownstreamError {
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

/// Readiness probe: is `base_url` answering `GET /healthz`? Not traced, like
/// the probes themselves.
pub async fn probe(client: &awc::Client, base_url: &str) -> Result<(), String> {
    let url = format!("{}/healthz", base_url.trim_end_matches('/'));
    match client
        .get(&url)
        .timeout(Duration::from_secs(1))
        .send()
        .await
    {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("{url} answered {}", response.status())),
        Err(err) => Err(format!("{url}: {err}")),
    }
}
