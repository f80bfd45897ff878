//! rmcp's Streamable HTTP client, with the trace context of each message
//! copied into the headers of the HTTP request that carries it.
//!
//! The MCP span's parent travels in `params._meta`; the HTTP request that
//! carries the message is a hop of its own, and its SERVER span at
//! retrieval (`POST /mcp`) needs the same context in `traceparent` headers,
//! or it starts a trace of its own. rmcp sends from a background task, where
//! the request's span is not current, so [`TraceHeaders`] reads the context
//! from the message itself. The handshake's messages (`initialize` and the
//! `notifications/initialized` after it) use the headers of the span that
//! opened the connection ([`TraceHeaders::during_handshake`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use shared::propagation::MCP_META_KEYS;
use sse_stream::Sse;

type Headers = HashMap<HeaderName, HeaderValue>;
type Result<T> = std::result::Result<T, StreamableHttpError<reqwest::Error>>;

/// A reqwest client that adds each message's `_meta` trace context as HTTP
/// headers.
#[derive(Clone, Default)]
pub struct TraceHeaders {
    client: reqwest::Client,
    handshake: Arc<Mutex<Headers>>,
}

impl TraceHeaders {
    /// Use `headers` for messages without trace context until the returned
    /// guard drops: while the connection is being opened.
    pub fn during_handshake(&self, meta: &serde_json::Map<String, serde_json::Value>) -> Handshake {
        *self.handshake.lock().expect("handshake lock") = headers_of(meta);
        Handshake(self.handshake.clone())
    }

    fn with_trace_headers(&self, message: &ClientJsonRpcMessage, mut headers: Headers) -> Headers {
        let wire = serde_json::to_value(message).unwrap_or_default();
        let meta = wire
            .pointer("/params/_meta")
            .and_then(|meta| meta.as_object());
        match meta.map(headers_of) {
            Some(trace) if !trace.is_empty() => headers.extend(trace),
            _ => headers.extend(self.handshake.lock().expect("handshake lock").clone()),
        }
        headers
    }
}

/// Clears the handshake headers when dropped.
pub struct Handshake(Arc<Mutex<Headers>>);

impl Drop for Handshake {
    fn drop(&mut self) {
        self.0.lock().expect("handshake lock").clear();
    }
}

fn headers_of(meta: &serde_json::Map<String, serde_json::Value>) -> Headers {
    MCP_META_KEYS
        .iter()
        .filter_map(|key| {
            let value = HeaderValue::from_str(meta.get(*key)?.as_str()?).ok()?;
            Some((HeaderName::from_static(key), value))
        })
        .collect()
}

impl StreamableHttpClient for TraceHeaders {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth: Option<String>,
        headers: Headers,
    ) -> Result<StreamableHttpPostResponse> {
        let limits = StreamableHttpResponseLimits::default();
        self.post_message_with_response_limits(uri, message, session_id, auth, headers, limits)
            .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth: Option<String>,
        headers: Headers,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse> {
        let mut limits = StreamableHttpResponseLimits::default();
        limits.max_sse_event_size = max_sse_event_size;
        self.post_message_with_response_limits(uri, message, session_id, auth, headers, limits)
            .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth: Option<String>,
        headers: Headers,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse> {
        // ── Context crosses the wire here (outbound, HTTP under MCP) ── the
        // message's own `_meta` context, as headers.
        let headers = self.with_trace_headers(&message, headers);
        self.client
            .post_message_with_response_limits(uri, message, session_id, auth, headers, limits)
            .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth: Option<String>,
        headers: Headers,
    ) -> Result<()> {
        self.client
            .delete_session(uri, session_id, auth, headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth: Option<String>,
        headers: Headers,
    ) -> Result<BoxStream<'static, std::result::Result<Sse, SseError>>> {
        self.client
            .get_stream(uri, session_id, last_event_id, auth, headers)
            .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth: Option<String>,
        headers: Headers,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, std::result::Result<Sse, SseError>>> {
        self.client
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth,
                headers,
                max_sse_event_size,
            )
            .await
    }
}
