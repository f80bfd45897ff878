//! Outbound calls: every service-to-service request goes through
//! [`Downstream::post_json`] (or [`post_json_url`], its twin for a URL known
//! only at run time), so every hop gets the same CLIENT span, the same context
//! injection, the same timeout and the same error mapping: both share one
//! code path, and the context is injected in exactly one place,
//! `Call::send`.
//!
//! Why a CLIENT span per call, not just the header: the gap between the
//! caller's CLIENT span and the callee's SERVER span is network + queueing
//! time, and each outgoing call must carry *its own* span id as parent (W3C
//! Trace Context's test suite checks exactly that). A CLIENT span is also
//! where a dead or slow downstream shows up when the callee records nothing.
//!
//! A failed call is a [`DownstreamError`] (`crate::http::downstream_error`,
//! with the status and code it becomes). Streaming calls,
//! `Downstream::post_stream`, go through the same `Call` and live with the
//! rest of the event-stream handling in [`crate::streaming`].

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{ContentType, HeaderValue, RETRY_AFTER};
use actix_web::web::Bytes;
use awc::error::SendRequestError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::error::ApiError;
use crate::http::downstream_error::{DownstreamError, MAX_RESPONSE_BYTES};
use crate::{propagation, telemetry};

/// A service we call: its name (as in its `service.name`), base URL, timeout.
#[derive(Debug, Clone)]
pub struct Downstream {
    pub(crate) service: &'static str,
    base_url: String,
    host: String,
    port: u16,
    pub(crate) timeout: Duration,
}

impl Downstream {
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
            let (status, retry_after, bytes) = call.exchange(client, body).await?;
            if !status.is_success() {
                let retry_after = retry_after.as_ref();
                return Err(DownstreamError::from_status(
                    self.service,
                    status,
                    retry_after,
                    &bytes,
                ));
            }
            serde_json::from_slice(&bytes).map_err(|err| DownstreamError::InvalidResponse {
                service: self.service,
                reason: err.to_string(),
            })
        })
        .await
    }
}

/// One outbound call: where it goes, and what its CLIENT span records.
pub(crate) struct Call<'a> {
    service: &'static str,
    url: &'a str,
    host: &'a str,
    port: u16,
    timeout: Duration,
}

impl Call<'_> {
    /// The call's CLIENT span (current HTTP semantic conventions).
    pub(crate) fn span(&self, name: &str) -> Span {
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

    /// Send `body` as JSON and read the whole response: its status, its
    /// `Retry-After` and its body. Runs inside the call's CLIENT span (see
    /// [`traced`]).
    async fn exchange<Req: Serialize>(
        &self,
        client: &awc::Client,
        body: &Req,
    ) -> Result<(StatusCode, Option<HeaderValue>, Bytes), DownstreamError> {
        let mut response = self.send(client, body).await?;
        let bytes = response
            .body()
            .limit(MAX_RESPONSE_BYTES)
            .await
            .map_err(|err| DownstreamError::InvalidResponse {
                service: self.service,
                reason: err.to_string(),
            })?;
        let retry_after = response.headers().get(RETRY_AFTER).cloned();
        Ok((response.status(), retry_after, bytes))
    }

    /// Send `body` as JSON and return the response once its head arrived.
    /// Every outbound request, plain or streaming, goes through here.
    pub(crate) async fn send<Req: Serialize>(
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
pub(crate) async fn traced<T>(
    span: Span,
    call: impl Future<Output = Result<T, DownstreamError>>,
) -> Result<T, DownstreamError> {
    let result = call.instrument(span.clone()).await;
    if let Err(err) = &result {
        telemetry::record_error(&span, err.code(), &err.to_string());
    }
    result
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
        Ok(Self {
            service,
            port: default_port(&uri),
            base_url,
            host,
            timeout,
        })
    }

    /// The callee's `service.name`.
    pub fn service(&self) -> &'static str {
        self.service
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A call to `url` on this downstream.
    pub(crate) fn call<'a>(&'a self, url: &'a str) -> Call<'a> {
        Call {
            service: self.service,
            url,
            host: &self.host,
            port: self.port,
            timeout: self.timeout,
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
    let call = Call {
        service: peer,
        url,
        host: uri.as_ref().and_then(|uri| uri.host()).unwrap_or(""),
        port: uri.as_ref().map_or(0, default_port),
        timeout,
    };
    let span = call.span("POST");
    traced(span, async {
        let (status, retry_after, bytes) = call.exchange(client, body).await?;
        if status.is_success() {
            Ok(status)
        } else {
            let retry_after = retry_after.as_ref();
            Err(DownstreamError::from_status(
                peer,
                status,
                retry_after,
                &bytes,
            ))
        }
    })
    .await
}

/// The port of `uri`, or its scheme's default.
fn default_port(uri: &awc::http::Uri) -> u16 {
    uri.port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        })
}
