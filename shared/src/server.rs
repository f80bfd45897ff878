//! The server half every service shares: the SERVER span for each request
//! (where inbound context is extracted), `http.server.request.duration` for
//! each request, the JSON body extractor with its error mapping, and the
//! default routes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use opentelemetry::trace::TraceContextExt;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{Error, FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use serde::de::DeserializeOwned;
use tracing::Span;
use tracing_actix_web::{RootSpanBuilder, TracingLogger};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::error::{ApiError, RoutingError};
use crate::propagation;

/// Whether SERVER spans continue the caller's context (see
/// [`set_trust_incoming_context`]).
static TRUST_INCOMING_CONTEXT: AtomicBool = AtomicBool::new(true);

/// Set once at startup by an edge service (`GATEWAY_TRUST_INCOMING_CONTEXT`).
/// `true` (the default, right for internal hops and the reference setup)
/// continues the caller's trace and baggage; `false` starts a new trace per
/// request and records the caller's context as a span link.
pub fn set_trust_incoming_context(trust: bool) {
    TRUST_INCOMING_CONTEXT.store(trust, Ordering::Relaxed);
}

fn trusts_incoming_context() -> bool {
    TRUST_INCOMING_CONTEXT.load(Ordering::Relaxed)
}

/// Largest request body any endpoint accepts.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The request middleware: one SERVER span per request, built by [`ServerSpan`].
pub fn tracing_middleware() -> TracingLogger<ServerSpan> {
    TracingLogger::<ServerSpan>::new()
}

/// Builds each request's SERVER span with the *current* HTTP semantic
/// conventions (tracing-actix-web's default builder still uses the pre-1.0
/// names such as `http.method`), and parents it on the caller's context.
pub struct ServerSpan;

impl RootSpanBuilder for ServerSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        // Probes are not traced: a trace per health check every few seconds
        // would bury the traces people came to read.
        if matches!(request.path(), "/healthz" | "/readyz") {
            return Span::none();
        }
        let method = request.method().as_str();
        let route = request.match_pattern();
        // Span name per HTTP semconv: `{method} {route}`, or just `{method}`
        // when no route matched (keeps span names low-cardinality).
        let name = match &route {
            Some(route) => format!("{method} {route}"),
            None => method.to_owned(),
        };
        let connection = request.connection_info();
        let user_agent = request
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = %name,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            "http.request.method" = method,
            "http.route" = route.as_deref().unwrap_or(""),
            "url.path" = request.path(),
            "url.scheme" = connection.scheme(),
            "server.address" = connection.host(),
            "client.address" = connection.realip_remote_addr().unwrap_or(""),
            "user_agent.original" = user_agent,
            "network.protocol.version" = http_version(request.version()),
            "http.response.status_code" = tracing::field::Empty,
        );
        // ── Context crosses the wire here (inbound) ── The caller's
        // `traceparent`/`tracestate`/`baggage` become this span's parent
        // context, so the span joins the caller's trace. With no (valid)
        // `traceparent`, the extracted context is empty and this span starts
        // a new trace.
        let parent = propagation::extract_context(request.headers());
        if trusts_incoming_context() {
            propagation::record_baggage(&span, &parent);
            let _ = span.set_parent(parent);
        } else {
            // An untrusted edge (a public endpoint) must not let callers pick
            // the trace id, inject sampling decisions or smuggle baggage into
            // every downstream service. Start a new trace; keep the caller's
            // span as a *link* so the two traces stay navigable. The
            // caller's baggage is dropped with the rest of its context.
            let caller = parent.span().span_context().clone();
            if caller.is_valid() {
                span.add_link(caller);
            }
            let _ = span.set_parent(opentelemetry::Context::new());
        }
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        let status = match outcome {
            Ok(response) => response.status(),
            Err(error) => error.as_response_error().status_code(),
        };
        // i64, not u16: tracing-opentelemetry (0.33) has no `record_u64` for
        // span fields, so an unsigned integer falls back to its Debug text
        // and is exported as the *string* "200". The HTTP conventions say
        // int, and backends filter on it as one. Every integer span field in
        // ragtrace is recorded as i64 for this reason.
        span.record("http.response.status_code", i64::from(status.as_u16()));
        // HTTP semconv: a SERVER span is an error only for 5xx; 4xx is the
        // client's problem (the error body and `error.type` still say what).
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
    }
}

fn http_version(version: actix_web::http::Version) -> &'static str {
    use actix_web::http::Version;
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

/// The request middleware that records `http.server.request.duration`
/// (see [`crate::metrics`]) for every request, probes included.
///
/// Unlike spans, probes *are* measured: a histogram aggregates them into one
/// series per route (`/healthz`, `/readyz`), so they bury nothing, and a
/// readiness probe that gets slow is worth seeing before the orchestrator's
/// probe timeout restarts the container. Filter on `http.route` to leave
/// them out of a dashboard.
///
/// The clock runs from the moment the request reaches the outermost layer
/// until the response *body* is done (sent, or dropped when the client went
/// away), as the HTTP conventions define the duration. For a JSON body that
/// is right after the handler returns; for a streamed body (server-sent
/// events), it is the end of the stream, not the first byte.
pub async fn measure_request(
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
        protocol_version: http_version(request.version()),
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
pub struct MeasuredBody {
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

/// Why a JSON request body was rejected.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("expected Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("request body is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("request body is not valid JSON: {0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read request body: {0}")]
    Unreadable(String),
}

impl ApiError for BodyError {
    fn status(&self) -> StatusCode {
        match self {
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Malformed(_) | Self::Unreadable(_) => StatusCode::BAD_REQUEST,
            Self::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }
    fn code(&self) -> &'static str {
        match self {
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::TooLarge => "payload_too_large",
            Self::Malformed(_) => "malformed_json",
            Self::Invalid(_) => "invalid_request",
            Self::Unreadable(_) => "bad_request",
        }
    }
}
crate::impl_response_error!(BodyError);

/// A JSON request body. Like `web::Json`, but every failure is a [`BodyError`]
/// with the shared error body, and a type error names the field it is in
/// (`top_k: invalid type: string "3", expected u32`).
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for JsonBody<T> {
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = json_bytes(req, payload);
        Box::pin(async move {
            let bytes = body.await?;
            parse_json(&bytes).map(JsonBody).map_err(Error::from)
        })
    }
}

/// The raw body of a JSON request: checks the content type (`application/json`
/// or `+json`) and the size limit ([`payload_config`]), with [`BodyError`]s.
/// For extractors that parse something other than a JSON object.
pub fn json_bytes(
    req: &HttpRequest,
    payload: &mut Payload,
) -> impl Future<Output = Result<web::Bytes, BodyError>> + use<> {
    let is_json = req
        .mime_type()
        .ok()
        .flatten()
        .is_some_and(|m| m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"));
    let body = web::Bytes::from_request(req, payload);
    async move {
        if !is_json {
            return Err(BodyError::UnsupportedMediaType);
        }
        body.await.map_err(|err| {
            if err.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
                BodyError::TooLarge
            } else {
                BodyError::Unreadable(err.to_string())
            }
        })
    }
}

/// Parse `bytes` as one JSON object of type `T`.
///
/// Only an object is accepted at the top level: serde would otherwise also
/// take a JSON array as a struct (fields by position), which no client of a
/// named-field API means.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BodyError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        None => return Err(BodyError::Malformed("the body is empty".into())),
        Some(b'[' | b'"' | b'-' | b'0'..=b'9' | b't' | b'f' | b'n') => {
            return Err(BodyError::Invalid("the body must be a JSON object".into()));
        }
        Some(_) => {}
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if inner.is_data() {
            if path == "." {
                BodyError::Invalid(inner.to_string())
            } else {
                BodyError::Invalid(format!("{path}: {inner}"))
            }
        } else {
            BodyError::Malformed(inner.to_string())
        }
    })?;
    de.end()
        .map_err(|err| BodyError::Malformed(err.to_string()))?;
    Ok(value)
}

/// The payload limit [`JsonBody`] enforces (register with `.app_data`).
pub fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(MAX_BODY_BYTES)
}

/// `GET /healthz`: the process is alive and serving.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Default service: unknown route.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, RoutingError> {
    Err(RoutingError::NotFound {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    })
}

/// Per-resource default service: known path, wrong method.
pub async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, RoutingError> {
    Err(RoutingError::MethodNotAllowed {
        method: req.method().to_string(),
        path: req.path().to_owned(),
    })
}

/// A POST-only JSON resource whose other methods get a 405 with the error body.
pub fn post_resource<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::resource(path)
        .route(web::post().to(handler))
        .default_service(web::to(method_not_allowed))
}

/// A running HTTP service: the skeleton every ragtrace service shares
/// (zero2prod's `Application`): bind first (port 0 works, for tests), then
/// serve until SIGINT/SIGTERM, letting in-flight requests finish.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
}

impl Application {
    /// Bind `addr` and build the server. `routes` runs once per worker: build
    /// per-worker state there (an `awc::Client` is `!Send`).
    pub fn build<F>(addr: std::net::SocketAddr, routes: F) -> std::io::Result<Self>
    where
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let faults = crate::faults::FaultSettings::from_env().map_err(std::io::Error::other)?;
        if faults.is_active() {
            tracing::warn!(?faults, "fault injection is ON");
        }
        let listener = std::net::TcpListener::bind(addr)?;
        let port = listener.local_addr()?.port();
        let server = actix_web::HttpServer::new(move || {
            actix_web::App::new()
                // Injected faults happen inside the SERVER span (wrap order:
                // the last `wrap` is the outermost layer).
                .wrap(actix_web::middleware::from_fn(crate::faults::inject))
                // The SERVER span wraps everything below, extractors included,
                // so even a rejected body is recorded in the caller's trace.
                .wrap(tracing_middleware())
                // Outermost: the duration covers everything the request went
                // through, span bookkeeping and injected delays included.
                .wrap(actix_web::middleware::from_fn(measure_request))
                .app_data(web::Data::new(faults))
                .app_data(payload_config())
                .route("/healthz", web::get().to(healthz))
                .configure(routes.clone())
                .default_service(web::to(not_found))
        })
        .shutdown_timeout(10)
        .listen(listener)?
        .run();
        Ok(Self { port, server })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serve until stopped. actix-web handles SIGINT/SIGTERM itself: stop
    /// accepting, drain in-flight requests (up to 10 s), then return, so the
    /// caller can flush telemetry.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// `GET /readyz` body for a set of named checks: 200 when all pass, 503 with
/// the shared error body naming the first failure otherwise.
pub fn readiness(checks: &[(&str, Result<(), String>)]) -> HttpResponse {
    match checks.iter().find(|(_, result)| result.is_err()) {
        Some((name, Err(reason))) => crate::error::respond_with(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("{name}: {reason}"),
        ),
        _ => HttpResponse::Ok().json(serde_json::json!({
            "status": "ready",
            "checks": checks.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        })),
    }
}
