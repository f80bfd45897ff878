//! rmcp's Streamable HTTP client, with the trace context of each message
//! copied into the headers of the HTTP request that carries it.
//!
//! The MCP span's parent travels in `params._meta`; the HTTP request that
//! carries the message is a hop of its own, and its SERVER span at
//! retrieval (`POST /mcp`) needs the same context in `traceparent` headers,
//! or it starts a trace of its own. rmcp sends from a background task, where
//! the request's span is not current, so [`ContextHeadersClient`] reads the
//! context from the message itself.
//!
//! The handshake's messages (`initialize` and the `notifications/initialized`
//! after it) belong to the call that needs the session: while a session is
//! being opened, the span that opens it ([`ContextHeadersClient::during_handshake`]);
//! when rmcp re-opens one on its own (retrieval restarted and answered 404
//! to the session id), a call that got that 404. rmcp replays the first
//! `initialize` then, so its `_meta` is rewritten to agree.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, ClientNotification, ClientRequest, JsonRpcMessage};
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use shared::propagation::MCP_META_KEYS;
use sse_stream::Sse;

type Headers = HashMap<HeaderName, HeaderValue>;
type Meta = serde_json::Map<String, serde_json::Value>;
type Result<T> = std::result::Result<T, StreamableHttpError<reqwest::Error>>;

/// A reqwest client for rmcp that adds each message's `_meta` trace context
/// as HTTP headers.
#[derive(Clone)]
pub struct ContextHeadersClient {
    client: reqwest::Client,
    /// The context of the span opening a session, while it does.
    handshake: Arc<Mutex<Option<Meta>>>,
    /// The context of the last call whose session had expired.
    expired_call: Arc<Mutex<Meta>>,
    /// The `Mcp-Session-Id` the last message was sent in.
    session_id: Arc<Mutex<Option<String>>>,
}

impl ContextHeadersClient {
    /// `timeout`: for connecting, and between reads of an answer.
    pub fn new(timeout: Duration) -> Self {
        let user_agent = concat!("ragtrace-query-processor/", env!("CARGO_PKG_VERSION"));
        let client = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .build();
        Self {
            client: client.unwrap_or_default(),
            handshake: Arc::default(),
            expired_call: Arc::default(),
            session_id: Arc::default(),
        }
    }

    /// Send the handshake's messages in `meta`'s context until the returned
    /// guard drops.
    pub fn during_handshake(&self, meta: &Meta) -> Handshake {
        *self.handshake.lock().expect("handshake lock") = Some(trace_keys(meta));
        Handshake(self.handshake.clone())
    }

    /// The session the last message was sent in (`mcp.session.id`).
    pub fn session_id(&self) -> Option<String> {
        self.session_id.lock().expect("session lock").clone()
    }

    /// The trace context `message` travels in; its `_meta` is made to agree.
    fn context_of(&self, message: &mut ClientJsonRpcMessage) -> Meta {
        let Some(meta) = handshake_meta(message) else {
            let wire = serde_json::to_value(&*message).unwrap_or_default();
            let meta = wire.pointer("/params/_meta").and_then(|m| m.as_object());
            return meta.map(trace_keys).unwrap_or_default();
        };
        let handshake = self.handshake.lock().expect("handshake lock").clone();
        let context = handshake.unwrap_or_else(|| self.expired_call.lock().expect("lock").clone());
        if let Some(meta) = meta {
            meta.retain(|key, _| !MCP_META_KEYS.contains(&key.as_str()));
            meta.extend(context.clone());
        }
        context
    }
}

/// Clears the handshake context when dropped.
pub struct Handshake(Arc<Mutex<Option<Meta>>>);

impl Drop for Handshake {
    fn drop(&mut self) {
        self.0.lock().expect("handshake lock").take();
    }
}

fn trace_keys(meta: &Meta) -> Meta {
    let keys = meta
        .iter()
        .filter(|(key, _)| MCP_META_KEYS.contains(&key.as_str()));
    keys.map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

fn headers_of(context: &Meta) -> Headers {
    MCP_META_KEYS
        .iter()
        .filter_map(|key| {
            let value = HeaderValue::from_str(context.get(*key)?.as_str()?).ok()?;
            Some((HeaderName::from_static(key), value))
        })
        .collect()
}

/// For a handshake message: `Some`, with the `_meta` of an `initialize`
/// (`None` inside for `notifications/initialized`, which has none).
fn handshake_meta(message: &mut ClientJsonRpcMessage) -> Option<Option<&mut Meta>> {
    match message {
        JsonRpcMessage::Request(request) => match &mut request.request {
            ClientRequest::InitializeRequest(initialize) => {
                let meta = initialize.params.meta.get_or_insert_with(Default::default);
                Some(Some(&mut meta.0.0))
            }
            _ => None,
        },
        JsonRpcMessage::Notification(notification) => match notification.notification {
            ClientNotification::InitializedNotification(_) => Some(None),
            _ => None,
        },
        _ => None,
    }
}

impl StreamableHttpClient for ContextHeadersClient {
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
        let mut message = message;
        let context = self.context_of(&mut message);
        let mut headers = headers;
        headers.extend(headers_of(&context));
        *self.session_id.lock().expect("session lock") = session_id.as_deref().map(str::to_owned);
        let sent = self
            .client
            .post_message_with_response_limits(uri, message, session_id, auth, headers, limits)
            .await;
        if let (Err(StreamableHttpError::SessionExpired), false) = (&sent, context.is_empty()) {
            // rmcp opens a new session and sends this call again: the
            // handshake joins this call's trace.
            *self.expired_call.lock().expect("lock") = context;
        }
        sent
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
        let limit = StreamableHttpResponseLimits::default().max_sse_event_size;
        self.get_stream_with_max_sse_event_size(
            uri,
            session_id,
            last_event_id,
            auth,
            headers,
            limit,
        )
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
        // No standalone stream (a `GET /mcp` without `Last-Event-ID`): the
        // server sends query-processor nothing unasked, and the stream would
        // be a span as long as the session, in a trace of its own. rmcp
        // takes this answer as a server without one. Resuming a broken
        // answer (`Last-Event-ID`) is still done.
        if last_event_id.is_none() {
            return Err(StreamableHttpError::ServerDoesNotSupportSse);
        }
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
