//! Retrieval through MCP (`RETRIEVAL_PROTOCOL=mcp`): query-processor calls
//! retrieval's tool `search_documents` over Streamable HTTP, where the
//! default protocol sends `POST /retrieve`.
//!
//! What this module teaches is the *client* side of an MCP hop: a CLIENT
//! span named `{mcp.method.name} {target}`, and its context injected into
//! the request's `params._meta` (SEP-414), from where retrieval's MCP
//! SERVER span takes its parent:
//!
//! ```text
//! execute_tool process_query
//!   CLIENT initialize                       the first call only: opens the session
//!   CLIENT tools/call search_documents   -> retrieval SERVER tools/call search_documents
//! ```
//!
//! The HTTP request under each message carries the same context in its
//! headers ([`transport`]), so retrieval's `POST /mcp` span joins the trace
//! too, beside the MCP span.

mod transport;

use std::time::Instant;

use actix_web::http::StatusCode;
use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientConfig, ClientRequest, Implementation,
    MetaObject, RequestMetaObject, ServerResult,
};
use rmcp::service::{Peer, PeerRequestOptions, RoleClient, RunningService, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;
use shared::client::Downstream;
use shared::dialects;
use shared::http::downstream_error::DownstreamError;
use shared::metrics::mcp::{McpOperation, Side};
use shared::redact::Content;
use shared::wire::{ErrorBody, RetrieveResponse};
use shared::{metrics, propagation, telemetry};
use tokio::sync::Mutex;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use transport::TraceHeaders;

pub const TOOL_NAME: &str = "search_documents";

/// An MCP session with retrieval, opened on first use and again after it
/// broke.
pub struct McpRetrieval {
    downstream: Downstream,
    url: String,
    http: TraceHeaders,
    session: Mutex<Option<RunningService<RoleClient, ClientConfig>>>,
}

impl McpRetrieval {
    pub fn new(downstream: Downstream) -> Self {
        Self {
            url: format!("{}/mcp", downstream.base_url()),
            downstream,
            http: TraceHeaders::default(),
            session: Mutex::new(None),
        }
    }

    /// `tools/call search_documents`: the top-k passages for `query`.
    pub async fn search_documents(
        &self,
        query: &str,
        top_k: u32,
    ) -> Result<RetrieveResponse, DownstreamError> {
        let (peer, version) = self.connected().await?;
        let started = Instant::now();
        let span = self.span("tools/call", Some(TOOL_NAME), version.as_deref());
        let arguments = json!({"query": query, "top_k": top_k});
        dialects::tool_call_arguments(&span, &Content::capture_with(|| arguments.to_string()));
        let request = CallToolRequestParams::new(TOOL_NAME)
            .with_arguments(arguments.as_object().cloned().unwrap_or_default());
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(request));
        // ── Context crosses the wire here (outbound, MCP) ── the CLIENT span
        // goes in `params._meta`, so retrieval's MCP span is its child.
        let meta = propagation::inject_meta(&span.context());
        let options = PeerRequestOptions::with_timeout(self.downstream.timeout())
            .with_meta(RequestMetaObject(MetaObject(meta)));

        let answer = async {
            let handle = peer.send_request_with_option(request, options).await?;
            Span::current().record("jsonrpc.request.id", handle.id.to_string());
            handle.await_response().await
        }
        .instrument(span.clone())
        .await;
        let (result, error_type) = self.outcome(answer).await;
        match &result {
            Ok(found) => {
                let text = || serde_json::to_string(found).unwrap_or_default();
                dialects::tool_call_result(&span, &Content::capture_with(text));
            }
            Err(err) => {
                let error_type = error_type.as_deref().unwrap_or(err_code(err));
                telemetry::record_error(&span, error_type, &err.to_string());
            }
        }
        self.record_duration(
            "tools/call",
            Some(TOOL_NAME),
            &version,
            &error_type,
            started,
        );
        result
    }

    /// A CLIENT span for one MCP request (MCP semantic conventions).
    fn span(&self, method: &str, tool: Option<&str>, version: Option<&str>) -> Span {
        let span = tracing::info_span!(
            "mcp client",
            otel.name = %tool.map_or(method.to_owned(), |t| format!("{method} {t}")),
            otel.kind = "client",
            "mcp.method.name" = method,
            "mcp.protocol.version" = version,
            "jsonrpc.request.id" = tracing::field::Empty,
            "network.transport" = "tcp",
            "gen_ai.operation.name" = tool.map(|_| "execute_tool"),
            "gen_ai.tool.name" = tool,
            "server.address" = self.downstream.host(),
            "server.port" = i64::from(self.downstream.port()),
            "ragtrace.peer.service" = self.downstream.service(),
            "rpc.response.status_code" = tracing::field::Empty,
        );
        propagation::record_baggage(&span, &Span::current().context());
        span
    }

    /// The open session's peer and protocol version, after opening one (in
    /// its own `initialize` CLIENT span) if there is none.
    async fn connected(&self) -> Result<(Peer<RoleClient>, Option<String>), DownstreamError> {
        let mut session = self.session.lock().await;
        if let Some(running) = session.as_ref().filter(|running| !running.is_closed()) {
            return Ok((running.peer().clone(), protocol_version(running.peer())));
        }
        let started = Instant::now();
        let span = self.span("initialize", None, None);
        // The handshake's messages carry the `initialize` span's context.
        let meta = propagation::inject_meta(&span.context());
        let _handshake = self.http.during_handshake(&meta);
        let mut info = ClientConfig::default();
        info.client_info = Implementation::new(crate::SERVICE_NAME, env!("CARGO_PKG_VERSION"));
        info.meta = Some(RequestMetaObject(MetaObject(meta)));
        // The session runs in tasks of its own, spawned outside any span:
        // a task that held this request's span would keep it from ending.
        let (http, config) = (
            self.http.clone(),
            StreamableHttpClientTransportConfig::with_uri(self.url.clone()),
        );
        let open = tokio::spawn(async move {
            info.serve(StreamableHttpClientTransport::with_client(http, config))
                .await
        });
        let opened = tokio::time::timeout(self.downstream.timeout(), open).await;
        let (result, error_type) = match opened {
            Ok(Ok(Ok(running))) => {
                let version = protocol_version(running.peer());
                span.record("mcp.protocol.version", version.as_deref());
                let peer = running.peer().clone();
                *session = Some(running);
                (Ok((peer, version)), None)
            }
            Ok(Ok(Err(err))) => (Err(self.unavailable(err.to_string())), None),
            Ok(Err(join)) => (Err(self.unavailable(join.to_string())), None),
            Err(_) => (Err(self.timed_out()), None),
        };
        if let Err(err) = &result {
            telemetry::record_error(&span, err_code(err), &err.to_string());
        }
        let version = result.as_ref().ok().and_then(|(_, v)| v.clone());
        let error_type = error_type.or(result.as_ref().err().map(|e| err_code(e).to_owned()));
        self.record_duration("initialize", None, &version, &error_type, started);
        result
    }

    /// What the answer means for the caller, and the span's `error.type`:
    /// the JSON-RPC error code, `tool_error`, or a transport failure's code.
    async fn outcome(
        &self,
        answer: Result<ServerResult, ServiceError>,
    ) -> (Result<RetrieveResponse, DownstreamError>, Option<String>) {
        let service = self.downstream.service();
        match answer {
            Ok(ServerResult::CallToolResult(result)) if result.is_error != Some(true) => {
                let found = serde_json::from_value(result.structured_content.unwrap_or_default());
                let invalid = |err: serde_json::Error| DownstreamError::InvalidResponse {
                    service,
                    reason: err.to_string(),
                };
                (found.map_err(invalid), None)
            }
            Ok(ServerResult::CallToolResult(result)) => {
                let body = serde_json::from_value::<ErrorBody>(
                    result.structured_content.unwrap_or_default(),
                );
                let err = DownstreamError::Status {
                    service,
                    status: StatusCode::BAD_GATEWAY,
                    body: body.ok(),
                };
                (
                    Err(err),
                    Some(shared::attributes::mcp::TOOL_ERROR.to_owned()),
                )
            }
            Ok(_) => {
                let reason = "a tools/call answered with another result".to_owned();
                (
                    Err(DownstreamError::InvalidResponse { service, reason }),
                    None,
                )
            }
            Err(ServiceError::McpError(error)) => {
                let code = error.code.0.to_string();
                Span::current().record("rpc.response.status_code", code.as_str());
                let body = ErrorBody {
                    error: format!("jsonrpc_{}", error.code.0),
                    message: error.message.to_string(),
                    trace_id: telemetry::current_trace_id(),
                };
                let status = StatusCode::BAD_GATEWAY;
                let err = DownstreamError::Status {
                    service,
                    status,
                    body: Some(body),
                };
                (Err(err), Some(code))
            }
            Err(ServiceError::Timeout { .. }) => (Err(self.timed_out()), None),
            Err(err) => {
                // The session broke: the next call opens a new one.
                self.session.lock().await.take();
                (Err(self.unavailable(err.to_string())), None)
            }
        }
    }

    fn record_duration(
        &self,
        method: &str,
        tool: Option<&str>,
        version: &Option<String>,
        error_type: &Option<String>,
        started: Instant,
    ) {
        let operation = McpOperation {
            method,
            tool,
            protocol_version: version.as_deref(),
            transport: "tcp",
            error_type: error_type.as_deref(),
        };
        metrics::mcp::record(Side::Client, &operation, started.elapsed());
    }

    fn unavailable(&self, reason: String) -> DownstreamError {
        let service = self.downstream.service();
        DownstreamError::Unavailable {
            service,
            url: self.url.clone(),
            reason,
        }
    }

    fn timed_out(&self) -> DownstreamError {
        DownstreamError::Timeout {
            service: self.downstream.service(),
            url: self.url.clone(),
            after: self.downstream.timeout(),
        }
    }
}

fn protocol_version(peer: &Peer<RoleClient>) -> Option<String> {
    peer.peer_info()
        .map(|info| info.protocol_version.to_string())
}

fn err_code(err: &DownstreamError) -> &'static str {
    use shared::error::ApiError;
    err.code()
}
