//! `http.server.request.duration` (see [`crate::metrics`]) for every
//! request, probes included, timed to the end of the response body.
//!
//! Why a middleware of its own, and not the SERVER span's end: a streamed
//! response (Server-Sent Events) outlives its handler, and the HTTP
//! conventions define the duration as lasting until the response is done.
//! [`MeasuredBody`] wraps the body and records once it has ended, or when it
//! is dropped unfinished (the client went away).
//!
//! Unlike spans, probes *are* measured: a histogram aggregates them into one
//! series per route (`/healthz`, `/readyz`), so they bury nothing, and a
//! readiness probe that gets slow is worth seeing before the orchestrator's
//! probe timeout restarts the container. Filter on `http.route` to leave
//! them out of a dashboard.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::Error;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::http::version::protocol_version;

/// The request middleware that records `http.server.request.duration`. The
/// clock runs from the moment the request reaches the outermost layer until
/// the response *body* is done (sent, or dropped when the client went away).
/// For a JSON body that is right after the handler returns; for a streamed
/// body, it is the end of the stream, not the first byte.
pub(crate) async fn measure_request(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<MeasuredBody>, Error> {
    let started = Instant::now();
    // What the attributes need, read before the request moves on. The route
    // is the matched *pattern* (`/chat`, `/items/{id}`): `match_pattern` works
    // in an App-level middleware because the resource map is already built.
    let measurement = Measurement {
        started,
        method: request.method().as_str().to_owned(),
        route: request.match_pattern(),
        scheme: request.connection_info().scheme().to_owned(),
        protocol_version: protocol_version(request.version()),
        status: 0,
    };
    match next.call(request).await {
        Ok(response) => {
            let mut measurement = measurement;
            measurement.status = response.status().as_u16();
            // Recorded when the body ends: see `MeasuredBody`.
            Ok(response.map_body(|_, body| MeasuredBody {
                body: body.boxed(),
                measurement: Some(measurement),
            }))
        }
        Err(error) => {
            // A middleware error with no response yet: actix-web turns it
            // into this status, so that is what the client gets.
            let mut measurement = measurement;
            measurement.status = error.as_response_error().status_code().as_u16();
            measurement.record(started.elapsed());
            Err(error)
        }
    }
}

/// The attributes of one request, until its duration is known.
struct Measurement {
    started: Instant,
    method: String,
    route: Option<String>,
    scheme: String,
    protocol_version: &'static str,
    status: u16,
}

impl Measurement {
    fn record(&self, duration: Duration) {
        crate::metrics::record_http_server_request(
            &crate::metrics::HttpServerRequest {
                method: &self.method,
                route: self.route.as_deref(),
                status: self.status,
                scheme: &self.scheme,
                protocol_version: self.protocol_version,
            },
            duration,
        );
    }
}

/// A response body that records its request's duration once it is
/// finished: at its last chunk, or when it is dropped unfinished (the client
/// disconnected). Exactly once either way.
pub(crate) struct MeasuredBody {
    body: BoxBody,
    measurement: Option<Measurement>,
}

impl MeasuredBody {
    fn finish(&mut self) {
        if let Some(measurement) = self.measurement.take() {
            measurement.record(measurement.started.elapsed());
        }
    }
}

impl MessageBody for MeasuredBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        // `BoxBody` is `Unpin`, and so is this struct.
        let this = self.get_mut();
        let next = Pin::new(&mut this.body).poll_next(cx);
        if matches!(next, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.finish();
        }
        next
    }
}

impl Drop for MeasuredBody {
    fn drop(&mut self) {
        self.finish();
    }
}
