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

mod answer;
mod transport;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientConfig, ClientRequest, Implementation,
    MetaObject, RequestMetaObject,
};
use rmcp::service::{PeerRequestOptions, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::json;
use shared::client::Downstream;
use shared::dialects;
use shared::error::ApiError;
use shared::http::downstream_error::DownstreamError;
use shared::metrics::mcp::{McpOperation, Side};
use shared::redact::Content;
use shared::wire::RetrieveResponse;
use shared::{metrics, propagation, telemetry};
use tokio::sync::Mutex;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use answer::{Answer, Callee};
use transport::ContextHeadersClient;

pub const TOOL_NAME: &str = "search_documents";

type Running = RunningService<RoleClient, ClientConfig>;

/// MCP sessions with retrieval: one at a time, opened on first use and
/// again after one broke.
pub struct McpRetrieval {
    downstream: Downstream,
    url: String,
    http: ContextHeadersClient,
    session: Mutex<Option<Session>>,
    sessions_opened: AtomicU64,
}

/// An open session, numbered so that a call forgets only the session it
/// saw break, not a newer one another call opened meanwhile.
#[derive(Clone)]
struct Session {
    number: u64,
    running: Arc<Running>,
    version: Option<String>,
}

impl McpRetrieval {
    pub fn new(downstream: Downstream) -> Self {
        Self {
            url: format!("{}/mcp", downstream.base_url()),
            http: ContextHeadersClient::new(downstream.timeout()),
            downstream,
            session: Mutex::new(None),
            sessions_opened: AtomicU64::new(0),
        }
    }

    /// `tools/call search_documents`: the top-k passages for `query`.
    pub async fn search_documents(
        &self,
        query: &str,
        top_k: u32,
    ) -> Result<RetrieveResponse, DownstreamError> {
        let session = self.connected().await?;
        let answer = self.call_tool(&session, query, top_k).await;
        if answer.session_broken {
            // The next call opens a new session. (A retrieval that restarted
            // and no longer knows the session is handled inside rmcp: it
            // opens a new one and sends the call again.)
            self.forget(session.number).await;
        }
        answer.result
    }

    /// One `tools/call`, in its CLIENT span.
    async fn call_tool(&self, session: &Session, query: &str, top_k: u32) -> Answer {
        let started = Instant::now();
        let version = session.version.as_deref();
        let span = self.span("tools/call", Some(TOOL_NAME), version);
        span.record("mcp.session.id", self.http.session_id());
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

        let peer = session.running.peer();
        let answer = async {
            let handle = peer.send_request_with_option(request, options).await?;
            Span::current().record("jsonrpc.request.id", handle.id.to_string());
            handle.await_response().await
        }
        .instrument(span.clone())
        .await;
        let answer = self.callee().answer(answer);
        match &answer.result {
            Ok(found) => {
                let text = || serde_json::to_string(found).unwrap_or_default();
                dialects::tool_call_result(&span, &Content::capture_with(text));
            }
            Err(err) => {
                span.record("rpc.response.status_code", answer.rpc_code.as_deref());
                let error_type = answer.error_type.as_deref().unwrap_or(err.code());
                telemetry::record_error(&span, error_type, &err.to_string());
            }
        }
        let (error_type, rpc_code) = (answer.error_type.as_deref(), answer.rpc_code.as_deref());
        let operation =
            self.operation("tools/call", Some(TOOL_NAME), version, error_type, rpc_code);
        metrics::mcp::record(Side::Client, &operation, started.elapsed());
        answer
    }

    /// A CLIENT span for one MCP request (MCP semantic conventions).
    fn span(&self, method: &str, tool: Option<&str>, version: Option<&str>) -> Span {
        let span = tracing::info_span!(
            "mcp client",
            otel.name = %tool.map_or(method.to_owned(), |t| format!("{method} {t}")),
            otel.kind = "client",
            "mcp.method.name" = method,
            "mcp.protocol.version" = version,
            "mcp.session.id" = tracing::field::Empty,
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

    /// The open session, after opening one (in its own `initialize` CLIENT
    /// span) if there is none. Waiting for another call that is opening
    /// one counts against the timeout too.
    async fn connected(&self) -> Result<Session, DownstreamError> {
        let timeout = self.downstream.timeout();
        let mut session = tokio::time::timeout(timeout, self.session.lock())
            .await
            .map_err(|_| self.callee().timed_out())?;
        let open = session
            .as_ref()
            .filter(|s| !s.running.peer().is_transport_closed());
        if let Some(open) = open {
            return Ok(open.clone());
        }
        let started = Instant::now();
        let span = self.span("initialize", None, None);
        let opened = self.open(&span).await.map(|running| Session {
            number: self.sessions_opened.fetch_add(1, Ordering::Relaxed),
            version: running
                .peer()
                .peer_info()
                .map(|i| i.protocol_version.to_string()),
            running: Arc::new(running),
        });
        match &opened {
            Ok(new) => {
                span.record("mcp.protocol.version", new.version.as_deref());
                span.record("mcp.session.id", self.http.session_id());
                *session = Some(new.clone());
            }
            Err(err) => telemetry::record_error(&span, err.code(), &err.to_string()),
        }
        let version = opened.as_ref().ok().and_then(|s| s.version.as_deref());
        let failed = opened.as_ref().err().map(ApiError::code);
        let operation = self.operation("initialize", None, version, failed, None);
        metrics::mcp::record(Side::Client, &operation, started.elapsed());
        opened
    }

    /// The `initialize` handshake, under `span`. The handshake's messages
    /// carry its context, in `_meta` and in their HTTP headers.
    async fn open(&self, span: &Span) -> Result<Running, DownstreamError> {
        let meta = propagation::inject_meta(&span.context());
        let _handshake = self.http.during_handshake(&meta);
        let mut info = ClientConfig::default();
        info.client_info = Implementation::new(crate::SERVICE_NAME, env!("CARGO_PKG_VERSION"));
        info.meta = Some(RequestMetaObject(MetaObject(meta)));
        let config = StreamableHttpClientTransportConfig::with_uri(self.url.clone());
        let http = self.http.clone();
        // The session runs in tasks of its own, spawned outside any span:
        // a task that held this request's span would keep it from ending.
        let mut open = tokio::spawn(async move {
            info.serve(StreamableHttpClientTransport::with_client(http, config))
                .await
        });
        let callee = self.callee();
        match tokio::time::timeout(self.downstream.timeout(), &mut open).await {
            Ok(Ok(Ok(running))) => Ok(running),
            Ok(Ok(Err(err))) => Err(callee.unavailable(err.to_string())),
            Ok(Err(join)) => Err(callee.unavailable(join.to_string())),
            Err(_) => {
                open.abort();
                Err(callee.timed_out())
            }
        }
    }

    /// Close session `number` if it is still the open one.
    async fn forget(&self, number: u64) {
        let mut session = self.session.lock().await;
        if session.as_ref().is_some_and(|s| s.number == number) {
            session.take();
        }
    }

    fn callee(&self) -> Callee<'_> {
        Callee {
            service: self.downstream.service(),
            url: &self.url,
            timeout: self.downstream.timeout(),
        }
    }

    /// The attributes of `mcp.client.operation.duration`: the span's.
    fn operation<'a>(
        &'a self,
        method: &'a str,
        tool: Option<&'a str>,
        version: Option<&'a str>,
        error_type: Option<&'a str>,
        rpc_code: Option<&'a str>,
    ) -> McpOperation<'a> {
        McpOperation {
            method,
            tool,
            protocol_version: version,
            transport: "tcp",
            error_type,
            rpc_code,
            server: Some((self.downstream.host(), self.downstream.port())),
        }
    }
}
