//! retrieval as an MCP server: the tool `search_documents`, and the corpus
//! documents as resources, over Streamable HTTP at `POST /mcp` ([`http`])
//! and over stdio (`ragtrace mcp`, [`stdio`]).
//!
//! What this module teaches is the *MCP* hop of a trace. Every request gets
//! a SERVER span named `{mcp.method.name} {target}`, and its parent comes
//! from the request itself: MCP carries trace context in
//! `params._meta.traceparent` (SEP-414), not in a transport header, because
//! stdio has no headers and one HTTP request may carry several messages.
//! Over Streamable HTTP both exist, so the tree shows both:
//!
//! ```text
//! query-processor CLIENT tools/call search_documents
//!   retrieval SERVER POST /mcp                      parent from the HTTP traceparent header
//!   retrieval SERVER tools/call search_documents    parent from params._meta.traceparent
//!     retrieval {collection}                        the same spans as POST /retrieve
//!       embeddings {model}
//!       search {collection}
//! ```
//!
//! A request without `_meta`, or with a malformed `traceparent`, starts a
//! new trace; it never fails the call.

pub mod http;
pub mod stdio;
mod tool;

use std::sync::Arc;
use std::time::Instant;

use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ErrorData, InitializeRequestParams, InitializeResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use shared::attributes::mcp;
use shared::metrics::mcp::{McpOperation, Side};
use shared::{metrics, propagation, telemetry};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use tool::{SearchDocuments, TOOL_NAME};

/// How requests reach the server: `network.transport` on its spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// Streamable HTTP.
    Tcp,
    /// stdio.
    Pipe,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Pipe => "pipe",
        }
    }
}

/// The MCP server: each request it answers runs in [`McpServer::traced`],
/// its SERVER span; [`SearchDocuments`] does the work.
#[derive(Clone)]
pub struct McpServer {
    search: Arc<SearchDocuments>,
    transport: Transport,
}

impl McpServer {
    pub fn new(search: Arc<SearchDocuments>, transport: Transport) -> Self {
        Self { search, transport }
    }

    /// Run `work`, the answer to `request`, inside its SERVER span.
    async fn traced<T: Outcome>(
        &self,
        request: Request<'_>,
        context: &RequestContext<RoleServer>,
        work: impl Future<Output = Result<T, ErrorData>>,
    ) -> Result<T, ErrorData> {
        let started = Instant::now();
        let Request {
            method,
            tool,
            resource,
        } = request;
        // Only a tool this server has names the span (and the metric): a
        // client could otherwise make a name per tool it invents.
        let known_tool = tool.filter(|name| *name == TOOL_NAME);
        // The request's protocol version; an `initialize` records the one
        // it agrees on, once it has (below).
        let version = match method {
            "initialize" => None,
            _ => context.protocol_version().map(|v| v.to_string()),
        };
        // MCP span: `{mcp.method.name} {target}`, or the method alone.
        let span = tracing::info_span!(
            "mcp server",
            otel.name = %known_tool.map_or(method.to_owned(), |t| format!("{method} {t}")),
            otel.kind = "server",
            "mcp.method.name" = method,
            "mcp.protocol.version" = tracing::field::Empty,
            "mcp.session.id" = http::session_id(context).as_deref(),
            "jsonrpc.request.id" = %context.id,
            "network.transport" = self.transport.as_str(),
            "gen_ai.operation.name" = tool.map(|_| "execute_tool"),
            "gen_ai.tool.name" = tool,
            "mcp.resource.uri" = resource,
            "rpc.response.status_code" = tracing::field::Empty,
        );
        // ── Context crosses the wire here (inbound, MCP) ── The parent is
        // the caller's context from `params._meta`, whatever the transport
        // said. With no valid `traceparent` it is empty: a new trace.
        let caller = propagation::extract_meta(&context.meta.0.0);
        propagation::record_baggage(&span, &caller);
        let _ = span.set_parent(caller);

        let result = work.instrument(span.clone()).await;
        let version = version.or_else(|| result.as_ref().ok()?.agreed_version());
        span.record("mcp.protocol.version", version.as_deref());
        let (error_type, rpc_code) = record_outcome(&span, &result);
        let operation = McpOperation {
            method,
            tool: known_tool,
            protocol_version: version.as_deref(),
            transport: self.transport.as_str(),
            error_type: error_type.as_deref(),
            rpc_code: rpc_code.as_deref(),
            server: None,
        };
        metrics::mcp::record(Side::Server, &operation, started.elapsed());
        result
    }
}

/// What a request asks: its method, and the tool or resource it names.
#[derive(Clone, Copy)]
struct Request<'a> {
    method: &'a str,
    tool: Option<&'a str>,
    resource: Option<&'a str>,
}

impl<'a> Request<'a> {
    fn method(method: &'a str) -> Self {
        Self {
            method,
            tool: None,
            resource: None,
        }
    }
}

/// `error.type` and the span status of a failed request: the JSON-RPC
/// error code (also `rpc.response.status_code`), or `tool_error` for a
/// tool result with `isError: true`.
fn record_outcome<T: Outcome>(
    span: &tracing::Span,
    result: &Result<T, ErrorData>,
) -> (Option<String>, Option<String>) {
    match result {
        Err(error) => {
            let code = error.code.0.to_string();
            span.record("rpc.response.status_code", code.as_str());
            telemetry::record_error(span, &code, &error.message);
            (Some(code.clone()), Some(code))
        }
        Ok(answer) => match answer.tool_error() {
            Some(message) => {
                telemetry::record_error(span, mcp::TOOL_ERROR, &message);
                (Some(mcp::TOOL_ERROR.to_owned()), None)
            }
            None => (None, None),
        },
    }
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        SearchDocuments::info()
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        context.peer.set_peer_info(request.clone());
        let negotiated = async { self.negotiate_initialize(&request) };
        self.traced(Request::method("initialize"), &context, negotiated)
            .await
    }

    async fn ping(&self, context: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        self.traced(Request::method("ping"), &context, async { Ok(()) })
            .await
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let tools = async {
            Ok(ListToolsResult::with_all_items(vec![
                SearchDocuments::tool(),
            ]))
        };
        self.traced(Request::method("tools/list"), &context, tools)
            .await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let CallToolRequestParams {
            name, arguments, ..
        } = request;
        let call = self.search.call(&name, arguments);
        let call = async { call.await.map(CallToolResponse::from) };
        let tool = Request {
            tool: Some(&name),
            ..Request::method("tools/call")
        };
        self.traced(tool, &context, call).await
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let resources = async { Ok(self.search.resources()) };
        self.traced(Request::method("resources/list"), &context, resources)
            .await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let read = async {
            self.search
                .read(&request.uri)
                .map(ReadResourceResponse::from)
        };
        let resource = Request {
            resource: Some(&request.uri),
            ..Request::method("resources/read")
        };
        self.traced(resource, &context, read).await
    }
}

/// What a successful answer says about failure: only a tool result can
/// fail without a JSON-RPC error (`isError: true`).
trait Outcome {
    /// The message of a tool result with `isError: true`.
    fn tool_error(&self) -> Option<String> {
        None
    }
    /// The protocol version an `initialize` agreed on.
    fn agreed_version(&self) -> Option<String> {
        None
    }
}

impl Outcome for CallToolResponse {
    fn tool_error(&self) -> Option<String> {
        match self {
            CallToolResponse::Complete(result) if result.is_error == Some(true) => {
                Some(tool::error_message(result))
            }
            _ => None,
        }
    }
}
impl Outcome for () {}
impl Outcome for InitializeResult {
    fn agreed_version(&self) -> Option<String> {
        Some(self.protocol_version.to_string())
    }
}
impl Outcome for ListToolsResult {}
impl Outcome for ListResourcesResult {}
impl Outcome for ReadResourceResponse {}
