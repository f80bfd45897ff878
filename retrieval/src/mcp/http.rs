//! Streamable HTTP at `/mcp`, on retrieval's own actix-web port.
//!
//! rmcp serves Streamable HTTP as a service over `http` 1.x types
//! ([`StreamableHttpService::handle`]); actix-web 4 has its own `http` 0.2
//! types. [`handle`] converts the request (method, URI, headers, and the
//! body, read within [`MAX_REQUEST_BYTES`]) and the response (status,
//! headers, and the body *streamed*, so an SSE answer flows as rmcp writes
//! it). A second listener (hyper on another port) would need no adapter,
//! but every service here has one port, one set of probes and one HTTP
//! SERVER span per request (tracing-actix-web); `/mcp` keeps all three.

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde::de::IgnoredAny;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{McpServer, SearchDocuments, Transport};

/// Largest MCP request body: the same limit as every JSON route.
pub const MAX_REQUEST_BYTES: usize = shared::http::json_body::MAX_BODY_BYTES;

pub type McpHttpService = StreamableHttpService<McpServer, LocalSessionManager>;

/// rmcp's Streamable HTTP service over [`McpServer`]. Sessions are kept in
/// memory for clients of protocol versions that have them.
///
/// `allowed_hosts`: the `Host` values accepted (rmcp rejects others, against
/// DNS rebinding); a compose network reaches retrieval as `retrieval:8080`.
///
/// Call it inside the runtime: it spawns the task that ends every session
/// when the process is asked to stop.
pub fn service(search: Arc<SearchDocuments>, allowed_hosts: &[String]) -> McpHttpService {
    let sessions = CancellationToken::new();
    end_sessions_on_shutdown(sessions.clone());
    let config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(allowed_hosts.iter().cloned())
        .with_max_request_body_bytes(MAX_REQUEST_BYTES)
        .with_cancellation_token(sessions);
    StreamableHttpService::new(
        move || Ok(McpServer::new(search.clone(), Transport::Tcp)),
        Arc::new(LocalSessionManager::default()),
        config,
    )
}

/// On SIGINT or SIGTERM, end every MCP session. A session's client may hold
/// an SSE stream open (`GET /mcp`), and actix's graceful shutdown would wait
/// for it until its timeout.
fn end_sessions_on_shutdown(sessions: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        return;
    };
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        sessions.cancel();
    });
}

/// `POST`, `GET` and `DELETE /mcp`: hand the request to rmcp and stream its
/// answer back.
pub async fn handle(
    request: HttpRequest,
    body: web::Payload,
    service: web::Data<McpHttpService>,
) -> HttpResponse {
    let bytes = match body.to_bytes_limited(MAX_REQUEST_BYTES).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(err)) => {
            let message = format!("could not read the request body: {err}");
            return jsonrpc_error(StatusCode::BAD_REQUEST, -32600, &message);
        }
        Err(_) => {
            let message = format!("request body exceeds {MAX_REQUEST_BYTES} bytes");
            return jsonrpc_error(StatusCode::PAYLOAD_TOO_LARGE, -32600, &message);
        }
    };
    let is_post = request.method() == actix_web::http::Method::POST;
    let sent_json = request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if let (true, Err(err)) = (is_post, serde_json::from_slice::<IgnoredAny>(&bytes)) {
        let message = format!("parse error: not a JSON-RPC message ({err})");
        return jsonrpc_error(StatusCode::BAD_REQUEST, -32700, &message);
    }
    let mut converted = http::Request::builder()
        .method(request.method().as_str())
        .uri(request.uri().to_string());
    for (name, value) in request.headers() {
        converted = converted.header(name.as_str(), value.as_bytes());
    }
    let Ok(converted) = converted.body(Full::new(bytes)) else {
        return jsonrpc_error(StatusCode::BAD_REQUEST, -32600, "malformed HTTP request");
    };

    let (parts, body) = service.handle(converted).await.into_parts();
    let status = StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    if refused_in_plain_text(&parts) {
        // rmcp refuses some requests (no session, a `Host` not allowed) with
        // a line of text; the caller gets it in the JSON-RPC error shape.
        let text = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        // A JSON body that is no JSON-RPC message is a bad request, not a
        // media type rmcp cannot read.
        let status = match status {
            StatusCode::UNSUPPORTED_MEDIA_TYPE if sent_json => StatusCode::BAD_REQUEST,
            other => other,
        };
        return jsonrpc_error(status, -32600, String::from_utf8_lossy(&text).trim());
    }
    let mut response = HttpResponse::build(status);
    for (name, value) in &parts.headers {
        response.append_header((name.as_str(), value.as_bytes()));
    }
    response.streaming(
        body.into_data_stream()
            .map(|chunk| chunk.map_err(|never| -> std::convert::Infallible { match never {} })),
    )
}

/// A refusal whose body is not JSON-RPC (JSON or an event stream).
fn refused_in_plain_text(parts: &http::response::Parts) -> bool {
    let content_type = parts.headers.get(http::header::CONTENT_TYPE);
    let content_type = content_type.and_then(|v| v.to_str().ok()).unwrap_or("");
    let json_rpc = content_type.starts_with("application/json")
        || content_type.starts_with("text/event-stream");
    (parts.status.is_client_error() || parts.status.is_server_error()) && !json_rpc
}

/// The `Mcp-Session-Id` of the HTTP request that carried `context`'s
/// message; `None` over stdio or without a session.
pub fn session_id(context: &RequestContext<RoleServer>) -> Option<String> {
    let parts = context.extensions.get::<http::request::Parts>()?;
    let id = parts.headers.get("mcp-session-id")?.to_str().ok()?;
    Some(id.to_owned())
}

/// A JSON-RPC error response without a request id (the request could not
/// be read, so it has none).
fn jsonrpc_error(status: StatusCode, code: i32, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({
        "jsonrpc": "2.0",
        "id": null,
        "error": {"code": code, "message": message},
    }))
}
