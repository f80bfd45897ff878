//! The server half every service shares: the SERVER span for each request,
//! where inbound context is extracted ([`ServerSpan`]), and the
//! [`Application`] skeleton that puts it in front of every route.
//!
//! What else a request meets on its way in (the JSON body extractor, the
//! request duration metric, `/healthz` and the default routes) is plumbing,
//! in [`crate::http`].

use std::sync::atomic::{AtomicBool, Ordering};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::{Error, FromRequest, web};
use opentelemetry::trace::TraceContextExt;
use tracing::Span;
use tracing_actix_web::{RootSpanBuilder, TracingLogger};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::http::json_body::payload_config;
use crate::http::request_duration::measure_request;
use crate::http::routes::{healthz, method_not_allowed, not_found};
use crate::http::version::protocol_version;
use crate::propagation;

/// The request middleware: one SERVER span per request, built by [`ServerSpan`].
fn tracing_middleware() -> TracingLogger<ServerSpan> {
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
            "network.protocol.version" = protocol_version(request.version()),
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
