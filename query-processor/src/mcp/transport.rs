//! rmcp's Streamable HTTP client, with the trace context of each message
//! copied into the headers of the HTTP request that carries it.
//!
//! The MCP span's parent travels in `params._meta`; the HTTP request that
//! carries the message is a hop of its own, and its SERVER span at
//! retrieval (`POST /mcp`) needs the same context in `traceparent` headers,
//! or it starts a trace of its own. rmcp sends from a background task, where
//! the request's span is not current, so [`TraceHeaders`] reads the context
//! from the message itself.
//!
//! The handshake's messages (`initialize` and the `notifications/initialized`
//! after it) belong to the call that needs the session: while a session is
//! being opened, the span that opens it ([`TraceHeaders::during_handshake`]);
//! when rmcp re-opens one on its own (the server restarted and answered 404
//! to the session id), the call that found out, which is the last one sent.
//! rmcp replays the first `initialize` then, so its `_meta` is rewritten.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

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
type Result<T> = std::result::Result<T, StreamableHttpError<reqwest::Error>>;

/// A reqwest client that adds each message's `_meta` trace context as HTTP
/// headers.
#[derive(Clone)]
pub struct TraceHeaders {
    client: reqwest::Client,
    /// The context of the span opening a session, while it does.
    handshake: Arc<Mutex<Option<Meta>>>,
    /// The context of the last call sent.
    last_call: Arc<Mutex<Meta>>,
}

type Meta = serde_json::Map<String, serde_json::Value>;

impl Default for TraceHeaders {
    fn default() -> Self {
        let user_agent = concat!("ragtrace-query-processor/", env!("CARGO_PKG_VERSION"));
        let client = reqwest::Client::builder().user_agent(user_agent).build();
        Self {
            client: client.unwrap_or_default(),
            handshake: Arc::default(),
            last_call: Arc::default(),
        }
    }
}

impl TraceHeaders {
    /// Send the handshake's messages in `meta`'s context until the returned
    /// guard drops.
    pub fn during_handshake(&self, meta: &Meta) -> Handshake {
        *self.handshake.lock().expect("handshake lock") = Some(trace_keys(meta));
        Handshake(self.handshake.clone())
    }

    /// The headers for `message`, whose `_meta` is made to agree with them.
    fn trace_headers(&self, message: &mut ClientJsonRpcMessage) -> Headers {
        let context = match handshake_meta(message) {
            Some(meta) => {
                let handshake = self.handshake.lock().expect("handshake lock").clone();
                let context =
                    handshake.unwrap_or_else(|| self.last_call.lock().expect("lock").clone());
                if let Some(meta) = meta {
                    meta.retain(|key, _| !MCP_META_KEYS.contains(&key.as_str()));
                    meta.extend(context.clone());
                }
                context
            }
            None => {
                let wire = serde_json::to_value(&*message).unwrap_or_default();
                let meta = wire
                    .pointer("/params/_meta")
                    .and_then(|meta| meta.as_object());
                let context = meta.map(trace_keys).unwrap_or_default();
                if !context.is_empty() {
                    *self.last_call.lock().expect("lock") = context.clone();
                }
                context
            }
        };
        MCP_META_KEYS
            .iter()
            .filter_map(|key| {
                let value = HeaderValue::from_str(context.get(*key)?.as_str()?).ok()?;
                Some((HeaderName::from_static(key), value))
            })
            .collect()
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
        let (mut message, mut headers) = (message, headers);
        headers.extend(self.trace_headers(&mut message));
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
