//! The JSON contracts between the services.
//!
//! Requests deny unknown fields: a typo such as `"topk"` is a 400 naming the
//! field, not a silently ignored option. Responses are lenient to read so a
//! newer downstream may add fields without breaking an older caller.

use serde::{Deserialize, Serialize};

/// Bounds on `top_k`, shared by every hop that accepts it.
pub const DEFAULT_TOP_K: u32 = 4;
pub const MAX_TOP_K: u32 = 20;
/// Longest query, in characters, any hop accepts.
pub const MAX_QUERY_CHARS: usize = 4_000;

/// `POST /chat` on the gateway.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatRequest {
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatResponse {
    pub answer: String,
    pub contexts: Vec<Passage>,
    /// The trace every span of this request was recorded in (32 lowercase hex).
    pub trace_id: String,
    /// That trace in the trace UI, when the gateway knows one (`TRACE_UI_URL`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_url: Option<String>,
    pub model: String,
    pub usage: Usage,
    /// How the answer scored on query-processor's evaluators.
    #[serde(default)]
    pub evaluations: Vec<Evaluation>,
}

/// One evaluation of an answer: what the GenAI conventions'
/// `gen_ai.evaluation.result` event records (`gen_ai.evaluation.name`,
/// `.score.value`, `.score.label`, `.explanation`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub name: String,
    /// In [0, 1]; higher is better.
    pub score: f64,
    /// `pass` when the score reaches the evaluator's threshold, else `fail`.
    pub label: String,
    /// Why, in counts (never the answer's or the passages' text).
    pub explanation: String,
}

/// One retrieved passage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    /// Stable chunk id: `{source}#{ordinal}`.
    pub id: String,
    /// The corpus file the chunk came from, relative to the corpus root.
    pub source: String,
    pub text: String,
    /// Cosine similarity to the query, in [-1, 1].
    pub score: f32,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// `POST /process` on query-processor. User, session and tags do not travel
/// here: they ride along as W3C baggage, so every hop sees them without each
/// body having to carry them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessRequest {
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessResponse {
    pub answer: String,
    pub contexts: Vec<Passage>,
    pub model: String,
    pub usage: Usage,
    #[serde(default)]
    pub evaluations: Vec<Evaluation>,
}

/// `POST /retrieve` on retrieval.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrieveRequest {
    pub query: String,
    pub top_k: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetrieveResponse {
    pub contexts: Vec<Passage>,
    /// Which embedder produced the query vector.
    pub embedder: String,
    /// The vector store's collection (`gen_ai.data_source.id`).
    pub data_source: String,
}

/// `POST /embed` on retrieval: texts to vectors with the embedder retrieval
/// searches with (query-processor's groundedness evaluator, when that
/// embedder is a remote model).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedRequest {
    pub texts: Vec<String>,
}

/// Most texts one `POST /embed` accepts.
pub const MAX_EMBED_TEXTS: usize = 64;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbedResponse {
    /// The embedder (`gen_ai.response.model` of its `embeddings` span).
    pub model: String,
    /// One vector per text, in order.
    pub vectors: Vec<Vec<f32>>,
}

/// `POST /generate` on llm-service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateRequest {
    pub query: String,
    pub contexts: Vec<Passage>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerateResponse {
    pub answer: String,
    pub model: String,
    pub usage: Usage,
    /// OpenAI-style finish reason: `stop`, `length`, ...
    pub finish_reason: String,
}

/// The body of every error response (see [`crate::error`]), and of a
/// stream's `error` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable machine code (`invalid_query`, `vector_store_unavailable`, ...).
    pub error: String,
    /// For humans.
    pub message: String,
    /// The trace the failed request was recorded in.
    pub trace_id: String,
}

/// The streaming endpoints (`POST /chat/stream`, `/process/stream`,
/// `/generate/stream`) answer `text/event-stream`: Server-Sent Events, one
/// JSON object per event, in this order:
///
/// ```text
/// event: contexts   data: {"contexts": [...]}          (gateway, query-processor)
/// event: delta      data: {"text": "..."}              (zero or more)
/// event: done       data: {"model", "usage", "finish_reason", "trace_id"?, "evaluations"?}
/// event: error      data: {"error", "message", "trace_id"}   (instead of done)
/// ```
///
/// A failure *before* the stream starts (bad input, a downstream refusing)
/// is an ordinary JSON error response with its 4xx/5xx status; once the
/// `200` and the first bytes are out, a failure can only be an `error` event.
/// Exactly one of `done` or `error` ends a complete stream; a stream that
/// stops without either was cut off.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Contexts(Vec<Passage>),
    Delta(String),
    Done(StreamDone),
    Error(ErrorBody),
}

/// The last event of a successful stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamDone {
    pub model: String,
    pub usage: Usage,
    pub finish_reason: String,
    /// Set by the gateway, like [`ChatResponse::trace_id`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    /// Set by the gateway, like [`ChatResponse::trace_url`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_url: Option<String>,
    /// Set by query-processor once the whole answer is in, like
    /// [`ChatResponse::evaluations`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evaluations: Vec<Evaluation>,
}

#[derive(Serialize, Deserialize)]
struct ContextsData {
    contexts: Vec<Passage>,
}

#[derive(Serialize, Deserialize)]
struct DeltaData {
    text: String,
}

impl StreamEvent {
    /// The SSE `event:` name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Contexts(_) => "contexts",
            Self::Delta(_) => "delta",
            Self::Done(_) => "done",
            Self::Error(_) => "error",
        }
    }

    /// Whether this event ends the stream.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Done(_) | Self::Error(_))
    }

    /// The event's JSON `data:` payload.
    pub fn data(&self) -> String {
        let data = match self {
            Self::Contexts(contexts) => serde_json::to_string(&ContextsData {
                contexts: contexts.clone(),
            }),
            Self::Delta(text) => serde_json::to_string(&DeltaData { text: text.clone() }),
            Self::Done(done) => serde_json::to_string(done),
            Self::Error(body) => serde_json::to_string(body),
        };
        data.expect("stream events serialize")
    }

    /// Parse one received event.
    pub fn parse(event: &str, data: &str) -> Result<Self, String> {
        let invalid = |err: serde_json::Error| format!("invalid {event:?} event: {err}");
        match event {
            "contexts" => serde_json::from_str::<ContextsData>(data)
                .map(|d| Self::Contexts(d.contexts))
                .map_err(invalid),
            "delta" => serde_json::from_str::<DeltaData>(data)
                .map(|d| Self::Delta(d.text))
                .map_err(invalid),
            "done" => serde_json::from_str(data).map(Self::Done).map_err(invalid),
            "error" => serde_json::from_str(data).map(Self::Error).map_err(invalid),
            other => Err(format!("unknown stream event {other:?}")),
        }
    }
}
