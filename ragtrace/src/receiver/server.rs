//! [`Receiver`]: the actix-web server behind the endpoints listed in the
//! module docs. It negotiates the encoding from the request headers, hands
//! the body to the decoders and records the result in the stores.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};

use actix_web::dev::ServerHandle;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

use super::decode::{decode_json, decode_protobuf};
use super::metrics;
use super::store::SpanStore;

/// Largest request body the receiver accepts (32 MiB).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
/// A running OTLP/HTTP receiver. Dropping it stops the server (without
/// waiting); [`Receiver::stop`] stops it and waits.
pub struct Receiver {
    /// The bound address (the real port when started on port 0).
    pub addr: SocketAddr,
    pub store: SpanStore,
    /// What arrived on `/v1/metrics`.
    pub metrics: metrics::MetricStore,
    server: Running,
}

impl fmt::Debug for Receiver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("addr", &self.addr)
            .field("store", &self.store)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl Receiver {
    /// Binds `addr` (port 0 picks a free port) and serves in the background
    /// on the current Tokio runtime, with a fresh [`SpanStore`].
    pub async fn start(addr: SocketAddr) -> io::Result<Receiver> {
        Self::start_with_store(addr, SpanStore::new()).await
    }

    /// Like [`Receiver::start`], but records into an existing store.
    pub async fn start_with_store(addr: SocketAddr, store: SpanStore) -> io::Result<Receiver> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let app_store = store.clone();
        let metric_store = metrics::MetricStore::new();
        let app_metrics = metric_store.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(app_store.clone()))
                .app_data(web::Data::new(app_metrics.clone()))
                .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
                .service(
                    web::resource("/v1/traces")
                        .route(web::post().to(traces))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/v1/metrics")
                        .route(web::post().to(metrics_export))
                        .default_service(web::to(method_not_allowed)),
                )
                .service(
                    web::resource("/v1/logs")
                        .route(web::post().to(discard))
                        .default_service(web::to(method_not_allowed)),
                )
                .default_service(web::to(not_found))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(1)
        .listen(listener)?
        .run();
        Ok(Receiver {
            addr,
            store,
            metrics: metric_store,
            server: Running::spawn(server),
        })
    }

    /// `http://{addr}`: the value for `OTEL_EXPORTER_OTLP_ENDPOINT` (the
    /// exporters append `/v1/traces`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The full traces URL (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
    pub fn traces_endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish (up to 1 s) and waits
    /// for the server to end. The store stays usable.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// An actix server running on the current Tokio runtime. Dropping it stops
/// the server without waiting; [`Running::stop`] stops it and waits.
pub(crate) struct Running {
    handle: ServerHandle,
    task: Option<tokio::task::JoinHandle<io::Result<()>>>,
}

impl Running {
    pub(crate) fn spawn(server: actix_web::dev::Server) -> Running {
        Running {
            handle: server.handle(),
            task: Some(tokio::spawn(server)),
        }
    }

    pub(crate) async fn stop(mut self) {
        self.handle.stop(true).await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.task.is_some() {
            // Sends the stop command now; completion is not awaited.
            drop(self.handle.stop(false));
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

pub(super) const PROTOBUF_CT: &str = "application/x-protobuf";
pub(super) const JSON_CT: &str = "application/json";

fn error_json(status: actix_web::http::StatusCode, msg: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "error": msg.into() }))
}

/// Checks `Content-Encoding` and `Content-Type`; the error is the 415
/// message.
fn negotiate(req: &HttpRequest) -> Result<Encoding, String> {
    if let Some(enc) = req.headers().get(header::CONTENT_ENCODING) {
        let enc = enc.to_str().unwrap_or("?").trim();
        if !enc.eq_ignore_ascii_case("identity") && !enc.is_empty() {
            return Err(format!(
                "unsupported Content-Encoding {enc:?}: send uncompressed OTLP"
            ));
        }
    }
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(format!(
            "unsupported Content-Type {ct:?}: use application/x-protobuf or application/json"
        )),
    }
}

/// The empty export response in the request's encoding.
fn empty_response(enc: Encoding) -> HttpResponse {
    match enc {
        Encoding::Protobuf => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROTOBUF_CT)))
            .body(ExportTraceServiceResponse::default().encode_to_vec()),
        Encoding::Json => HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(JSON_CT)))
            .body("{}"),
    }
}

async fn traces(req: HttpRequest, body: web::Bytes, store: web::Data<SpanStore>) -> HttpResponse {
    let enc = match negotiate(&req) {
        Ok(enc) => enc,
        Err(msg) => return error_json(actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE, msg),
    };
    let decoded = match enc {
        Encoding::Protobuf => decode_protobuf(&body),
        Encoding::Json => decode_json(&body),
    };
    match decoded {
        Ok(spans) => {
            store.push_export(spans);
            empty_response(enc)
        }
        Err(e) => error_json(actix_web::http::StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn metrics_export(
    req: HttpRequest,
    body: web::Bytes,
    store: web::Data<metrics::MetricStore>,
) -> HttpResponse {
    let enc = match negotiate(&req) {
        Ok(enc) => enc,
        Err(msg) => return error_json(actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE, msg),
    };
    let decoded = match enc {
        Encoding::Protobuf => metrics::decode_protobuf(&body),
        Encoding::Json => metrics::decode_json(&body),
    };
    match decoded {
        Ok(points) => {
            store.push_export(points, enc == Encoding::Json);
            // An empty ExportMetricsServiceResponse encodes exactly like the
            // empty trace response (no fields set: zero bytes, or `{}`).
            empty_response(enc)
        }
        Err(e) => error_json(actix_web::http::StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn discard(req: HttpRequest, _body: web::Bytes) -> HttpResponse {
    match negotiate(&req) {
        Ok(enc) => empty_response(enc),
        Err(msg) => error_json(actix_web::http::StatusCode::UNSUPPORTED_MEDIA_TYPE, msg),
    }
}

async fn method_not_allowed() -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((header::ALLOW, "POST"))
        .json(serde_json::json!({ "error": "method not allowed: use POST" }))
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    error_json(
        actix_web::http::StatusCode::NOT_FOUND,
        format!("no such endpoint: {} {}", req.method(), req.path()),
    )
}
