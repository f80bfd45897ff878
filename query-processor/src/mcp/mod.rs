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

use std::time::Instant;

use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientConfig, ClientRequest, Implementation,
    MetaObject, RequestMetaObject,
};
use rmcp::service::{Peer, PeerRequestOptions, RoleClient, RunningService};
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

use answer::Answer;
use transport::TraceHeaders;

pub const TOOL_NAME: &str = "search_documents";

/// MCP sessions with retrieval: one at a time, opened on first use and
/// again after one broke.
pub struct McpRetrieval {
    downstream: Downstream,
    url: String,
    http: TraceHeaders,
    session: Mutex<Option<Session>>,
}

/// An open session, numbered so that a request forgets only the session it
/// saw break, not a newer one another request opened meanwhile.
struct Session {
    number: u64,
    running: RunningService<RoleClient, ClientConfig>,
}

/// What a call needs of the session it runs in.
struct Opened {
    number: u64,
    peer: Peer<RoleClient>,
    version: Option<String>,
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
        let opened = self.connected().await?;
        let answer = self.call_tool(&opened, query, top_k).await;
        if answer.session_broken {
            // The next call opens a new session. (A server that restarted
            // and no longer knows the session is handled inside rmcp: it
            // opens a new one and sends the call again.)
            self.forget(opened.number).await;
        }
        answer.result
    }

    /// One `tools/call`, in its CLIENT span.
    async fn call_tool(&self, session: &Opened, query: &str, top_k: u32) -> Answer {
        let started = Instant::now();
        let span = self.span("tools/call", Some(TOOL_NAME), session.version.as_deref());
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
            let handle = session
                .peer
                .send_request_with_option(request, options)
                .await?;
            Span::current().record("jsonrpc.request.id", handle.id.to_string());
            handle.await_response().await
        }
        .instrument(span.clone())
        .await;
        let answer = self.peer().answer(answer);
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
        let version = session.version.as_deref();
        self.record(
            "tools/call",
            Some(TOOL_NAME),
            version,
            answer.error_type.as_deref(),
            started,
        );
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

    /// The open session, after opening one if there is none.
    async fn connected(&self) -> Result<Opened, DownstreamError> {
        let mut session = self.session.lock().await;
        if let Some(open) = session.as_ref().filter(|s| !s.running.is_closed()) {
            let peer = open.running.peer().clone();
            let version = protocol_version(&peer);
            return Ok(Opened {
                number: open.number,
                peer,
                version,
            });
        }
        let started = Instant::now();
        let span = self.span("initialize", None, None);
        let opened = self.open(&span).await;
        let (result, version) = match opened {
            Ok(running) => {
                let peer = running.peer().clone();
                let version = protocol_version(&peer);
                span.record("mcp.protocol.version", version.as_deref());
                let number = session.as_ref().map_or(0, |s| s.number + 1);
                *session = Some(Session { number, running });
                (
                    Ok(Opened {
                        number,
                        peer,
                        version: version.clone(),
                    }),
                    version,
                )
            }
            Err(err) => {
                telemetry::record_error(&span, err.code(), &err.to_string());
                (Err(err), None)
            }
        };
        let error_type = result.as_ref().err().map(ApiError::code);
        self.record("initialize", None, version.as_deref(), error_type, started);
        result
    }

    /// The `initialize` handshake, under `span`. The handshake's messages
    /// carry its context, in `_meta` and in their HTTP headers.
    async fn open(
        &self,
        span: &Span,
    ) -> Result<RunningService<RoleClient, ClientConfig>, DownstreamError> {
        let meta = propagation::inject_meta(&span.context());
        let _handshake = self.http.during_handshake(&meta);
        let mut info = ClientConfig::default();
        info.client_info = Implementation::new(crate::SERVICE_NAME, env!("CARGO_PKG_VERSION"));
        info.meta = Some(RequestMetaObject(MetaObject(meta)));
        let config = StreamableHttpClientTransportConfig::with_uri(self.url.clone());
        let http = self.http.clone();
        // The session runs in tasks of its own, spawned outside any span:
        // a task that held this request's span would keep it from ending.
        let open = tokio::spawn(async move {
            info.serve(StreamableHttpClientTransport::with_client(http, config))
                .await
        });
        match tokio::time::timeout(self.downstream.timeout(), open).await {
            Ok(Ok(Ok(running))) => Ok(running),
            Ok(Ok(Err(err))) => Err(self.peer().unavailable(err.to_string())),
            Ok(Err(join)) => Err(self.peer().unavailable(join.to_string())),
            Err(_) => Err(self.peer().timed_out()),
        }
    }

    /// Close session `number` if it is still the open one.
    async fn forget(&self, number: u64) {
        let mut session = self.session.lock().await;
        if session.as_ref().is_some_and(|s| s.number == number) {
            session.take();
        }
    }

    fn peer(&self) -> answer::Peer<'_> {
        answer::Peer {
            service: self.downstream.service(),
            url: &self.url,
            timeout: self.downstream.timeout(),
        }
    }

    /// `mcp.client.operation.duration`, with the span's attributes.
    fn record(
        &self,
        method: &str,
        tool: Option<&str>,
        version: Option<&str>,
        error_type: Option<&str>,
        started: Instant,
    ) {
        let operation = McpOperation {
            method,
            tool,
            protocol_version: version,
            transport: "tcp",
            error_type,
        };
        metrics::mcp::record(Side::Client, &operation, started.elapsed());
    }
}

fn protocol_version(peer: &Peer<RoleClient>) -> Option<String> {
    peer.peer_info()
        .map(|info| info.protocol_version.to_string())
}
