//! Span and metric attribute names, one `pub const` each, grouped by the
//! convention they follow. Every key any ragtrace service emits is defined
//! here, so a reader can see the whole vocabulary in one file. (The metric
//! *names* and their buckets are in [`crate::metrics`].)
//!
//! Why our own constants: `opentelemetry-semantic-conventions` 0.32 marks all
//! of its `GEN_AI_*` constants deprecated (the GenAI conventions moved to their
//! own repository and have no stable release). We pin the names we rely on
//! here, as of **OpenTelemetry semantic conventions v1.41**, `docs/gen-ai/`.
//!
//! Conventions followed:
//! - [`gen_ai`]: OpenTelemetry GenAI semantic conventions v1.41 (spans and
//!   metrics).
//! - [`confident`]: Confident AI's `confident.*` keys, as read by deepeval's
//!   OTel exporter. They are not an OpenTelemetry standard; they make a trace
//!   render natively in Confident AI (span types, trace name, user, thread).
//! - [`futureagi`]: FutureAGI's traceAI keys (its TypeScript, Java and C#
//!   `SemanticConventions`): `fi.span.kind` and the `gen_ai.*` keys traceAI
//!   adds to the OpenTelemetry ones.
//! - [`cost`]: FutureAGI traceAI's `gen_ai.cost.*` keys. Not an
//!   OpenTelemetry convention (v1.41 has no cost attribute).
//! - [`http`], [`db`], [`error`]: stable OpenTelemetry HTTP / database /
//!   general semantic conventions.

/// OpenTelemetry GenAI semantic conventions (v1.41).
pub mod gen_ai {
    /// The operation: `chat`, `embeddings`, `retrieval`, ... Required on
    /// inference and embeddings spans; also the first word of the span name.
    pub const OPERATION_NAME: &str = "gen_ai.operation.name";
    /// Who serves the model: `openai`, `anthropic`, ... Required on inference
    /// and embeddings spans. Replaces the deprecated `gen_ai.system`, which we
    /// never emit.
    pub const PROVIDER_NAME: &str = "gen_ai.provider.name";
    pub const REQUEST_MODEL: &str = "gen_ai.request.model";
    pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
    pub const RESPONSE_ID: &str = "gen_ai.response.id";
    /// string[]: why generation stopped (`stop`, `length`, ...).
    pub const RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
    pub const REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
    pub const REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
    /// How many results a retrieval asked for. (The newer genai repository
    /// calls it `gen_ai.retrieval.top_k`; v1.41 uses this name.)
    pub const REQUEST_TOP_K: &str = "gen_ai.request.top_k";
    /// Tokens in the prompt. Replaces the deprecated `gen_ai.usage.prompt_tokens`.
    pub const USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    /// Tokens generated. Replaces the deprecated `gen_ai.usage.completion_tokens`.
    pub const USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    /// Which knowledge base a retrieval read: our vector store collection.
    pub const DATA_SOURCE_ID: &str = "gen_ai.data_source.id";
    pub const EMBEDDINGS_DIMENSION_COUNT: &str = "gen_ai.embeddings.dimension.count";
    pub const OUTPUT_TYPE: &str = "gen_ai.output.type";
    /// Conversation (thread) id, only when the caller gave one; never made up.
    pub const CONVERSATION_ID: &str = "gen_ai.conversation.id";
    pub const TOOL_NAME: &str = "gen_ai.tool.name";
    /// Content (opt-in): JSON array of messages sent to the model.
    pub const INPUT_MESSAGES: &str = "gen_ai.input.messages";
    /// Content (opt-in): JSON array of the model's output messages.
    pub const OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
    /// Content (opt-in): JSON array of the system instruction parts.
    pub const SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
    pub const TOOL_DESCRIPTION: &str = "gen_ai.tool.description";
    pub const AGENT_NAME: &str = "gen_ai.agent.name";

    /// The value of [`RESPONSE_FINISH_REASONS`] for one choice.
    pub fn finish_reasons(reason: &str) -> opentelemetry::Value {
        opentelemetry::Value::Array(
            vec![opentelemetry::StringValue::from(reason.to_owned())].into(),
        )
    }

    /// Values of [`OPERATION_NAME`].
    pub mod operation {
        pub const CHAT: &str = "chat";
        pub const EMBEDDINGS: &str = "embeddings";
        pub const RETRIEVAL: &str = "retrieval";
        pub const INVOKE_AGENT: &str = "invoke_agent";
        pub const EXECUTE_TOOL: &str = "execute_tool";
    }

    /// The GenAI conventions' evaluation result: an event named
    /// [`EVALUATION_RESULT_EVENT`] on the span being evaluated, with these
    /// keys. We also put them on each evaluator's own `evaluation {name}`
    /// span.
    pub const EVALUATION_RESULT_EVENT: &str = "gen_ai.evaluation.result";
    /// Which evaluator: `citation_validity`, `groundedness`, ...
    pub const EVALUATION_NAME: &str = "gen_ai.evaluation.name";
    /// double: the score, in [0, 1] here.
    pub const EVALUATION_SCORE_VALUE: &str = "gen_ai.evaluation.score.value";
    /// `pass` or `fail`, from the evaluator's threshold.
    pub const EVALUATION_SCORE_LABEL: &str = "gen_ai.evaluation.score.label";
    /// Why the score is what it is (counts, never content).
    pub const EVALUATION_EXPLANATION: &str = "gen_ai.evaluation.explanation";

    /// bool: the response was requested as a stream of chunks.
    pub const REQUEST_STREAM: &str = "gen_ai.request.stream";
    /// double, seconds: from sending the request to the first content chunk
    /// of a streamed response.
    pub const RESPONSE_TIME_TO_FIRST_CHUNK: &str = "gen_ai.response.time_to_first_chunk";

    /// Metrics only: which count a `gen_ai.client.token.usage` measurement
    /// is, one of [`token_type`]. (Spans carry both counts as separate
    /// attributes instead.)
    pub const TOKEN_TYPE: &str = "gen_ai.token.type";

    /// Values of [`TOKEN_TYPE`].
    pub mod token_type {
        pub const INPUT: &str = "input";
        pub const OUTPUT: &str = "output";
    }

    /// Provider name for the built-in, in-process models. Not a well-known
    /// value on purpose: they are not hosted models and must not look like one.
    pub const PROVIDER_RAGTRACE: &str = "ragtrace";
}

/// The cost of a `chat` or `embeddings` call, in USD (double), on its span.
///
/// These are FutureAGI traceAI's keys (`fi_instrumentation/fi_types.py`,
/// `SpanAttributes.GEN_AI_COST_INPUT`, `GEN_AI_COST_OUTPUT`,
/// `GEN_AI_COST_TOTAL`), **not** OpenTelemetry GenAI conventions: v1.41
/// defines token usage but no cost. They live in the `gen_ai.*` namespace
/// anyway, so a future convention could take the names over. ragtrace
/// computes them from the reported token usage and a list-price table
/// ([`crate::prices`]); a model missing from the table gets none of them.
pub mod cost {
    /// Cost of the input (prompt) tokens.
    pub const INPUT: &str = "gen_ai.cost.input";
    /// Cost of the output (completion) tokens; 0 for embeddings.
    pub const OUTPUT: &str = "gen_ai.cost.output";
    /// `input + output`.
    pub const TOTAL: &str = "gen_ai.cost.total";
}

/// Confident AI (`confident.*`), from deepeval's OpenTelemetry exporter.
/// Errors use the span's native status: there is no `confident.*` error key.
pub mod confident {
    /// `llm`, `tool`, `agent`, `retriever` or `base`.
    pub const SPAN_TYPE: &str = "confident.span.type";
    pub const SPAN_INPUT: &str = "confident.span.input";
    pub const SPAN_OUTPUT: &str = "confident.span.output";
    /// string[]: the retrieved chunks, on retriever spans.
    pub const SPAN_RETRIEVAL_CONTEXT: &str = "confident.span.retrieval_context";

    /// JSON object string: facts about the component. We put the answer's
    /// evaluation results here, on the span they evaluated: Confident AI
    /// defines no key for a score computed outside it.
    pub const SPAN_METADATA: &str = "confident.span.metadata";

    pub const LLM_MODEL: &str = "confident.llm.model";
    pub const LLM_INPUT_TOKEN_COUNT: &str = "confident.llm.input_token_count";
    pub const LLM_OUTPUT_TOKEN_COUNT: &str = "confident.llm.output_token_count";
    /// double, USD: the price of one token, for Confident AI's cost rollups.
    pub const LLM_COST_PER_INPUT_TOKEN: &str = "confident.llm.cost_per_input_token";
    pub const LLM_COST_PER_OUTPUT_TOKEN: &str = "confident.llm.cost_per_output_token";

    pub const RETRIEVER_EMBEDDER: &str = "confident.retriever.embedder";
    /// int
    pub const RETRIEVER_TOP_K: &str = "confident.retriever.top_k";
    /// int: the chunker's maximum chunk size, in words.
    pub const RETRIEVER_CHUNK_SIZE: &str = "confident.retriever.chunk_size";

    pub const TOOL_NAME: &str = "confident.tool.name";
    pub const TOOL_DESCRIPTION: &str = "confident.tool.description";
    pub const AGENT_NAME: &str = "confident.agent.name";

    /// Trace-level keys: settable on any span; we set them on the gateway's
    /// pipeline span, the natural root of the request.
    pub const TRACE_NAME: &str = "confident.trace.name";
    pub const TRACE_INPUT: &str = "confident.trace.input";
    pub const TRACE_OUTPUT: &str = "confident.trace.output";
    pub const TRACE_USER_ID: &str = "confident.trace.user_id";
    pub const TRACE_THREAD_ID: &str = "confident.trace.thread_id";
    /// string[]
    pub const TRACE_TAGS: &str = "confident.trace.tags";
    pub const TRACE_ENVIRONMENT: &str = "confident.trace.environment";
    /// The Confident AI metric collection that evaluates the trace online,
    /// on Confident's side (`CONFIDENT_METRIC_COLLECTION`).
    pub const TRACE_METRIC_COLLECTION: &str = "confident.trace.metric_collection";

    /// Values of [`SPAN_TYPE`].
    pub mod span_type {
        pub const LLM: &str = "llm";
        pub const TOOL: &str = "tool";
        pub const AGENT: &str = "agent";
        pub const RETRIEVER: &str = "retriever";
    }
}

/// Stable OpenTelemetry HTTP semantic conventions. The same keys serve the
/// SERVER/CLIENT spans and `http.server.request.duration`; `server.address`
/// and `server.port` are also the GenAI conventions' names for a model API's
/// host and port.
pub mod http {
    pub const REQUEST_METHOD: &str = "http.request.method";
    pub const RESPONSE_STATUS_CODE: &str = "http.response.status_code";
    pub const ROUTE: &str = "http.route";
    pub const URL_FULL: &str = "url.full";
    pub const URL_PATH: &str = "url.path";
    pub const URL_SCHEME: &str = "url.scheme";
    pub const SERVER_ADDRESS: &str = "server.address";
    pub const SERVER_PORT: &str = "server.port";
    pub const CLIENT_ADDRESS: &str = "client.address";
    pub const USER_AGENT_ORIGINAL: &str = "user_agent.original";
    pub const NETWORK_PROTOCOL_VERSION: &str = "network.protocol.version";
}

/// OpenTelemetry database semantic conventions, for the vector store.
pub mod db {
    pub const SYSTEM_NAME: &str = "db.system.name";
    pub const OPERATION_NAME: &str = "db.operation.name";
    pub const COLLECTION_NAME: &str = "db.collection.name";
    /// How many rows (here: points) the operation returned.
    pub const RESPONSE_RETURNED_ROWS: &str = "db.response.returned_rows";
}

/// OpenTelemetry MCP semantic conventions (GenAI conventions, `mcp.md`,
/// status Development), on the CLIENT span of a Model Context Protocol
/// request and the SERVER span that handles it. Spans are named
/// `{mcp.method.name} {target}` (`tools/call search_documents`), or the
/// method alone when it has no target. A `tools/call` span also carries
/// `gen_ai.operation.name=execute_tool` and `gen_ai.tool.name`.
pub mod mcp {
    /// The JSON-RPC method: `tools/call`, `tools/list`, `initialize`, ...
    pub const METHOD_NAME: &str = "mcp.method.name";
    /// The protocol version the request was made under, e.g. `2025-11-25`.
    pub const PROTOCOL_VERSION: &str = "mcp.protocol.version";
    /// The `Mcp-Session-Id` of a Streamable HTTP session, when there is one.
    pub const SESSION_ID: &str = "mcp.session.id";
    /// `mcp.resource.uri`: the resource a `resources/read` asks for.
    pub const RESOURCE_URI: &str = "mcp.resource.uri";
    /// JSON-RPC conventions: the request id, as a string.
    pub const JSONRPC_REQUEST_ID: &str = "jsonrpc.request.id";
    /// The JSON-RPC error code of a failed request, as a string.
    pub const RPC_RESPONSE_STATUS_CODE: &str = "rpc.response.status_code";
    /// Network conventions: `tcp` for Streamable HTTP, `pipe` for stdio.
    pub const NETWORK_TRANSPORT: &str = "network.transport";
    /// `error.type` of a tool result with `isError: true`.
    pub const TOOL_ERROR: &str = "tool_error";
    /// The tool call's arguments and result (GenAI `execute_tool`
    /// conventions, opt-in): content, recorded only under capture.
    pub const TOOL_CALL_ARGUMENTS: &str = "gen_ai.tool.call.arguments";
    pub const TOOL_CALL_RESULT: &str = "gen_ai.tool.call.result";
}

/// General error conventions.
pub mod error {
    /// Low-cardinality error class; our stable machine codes
    /// (`service_unavailable`, `invalid_query`, ...) or `_OTHER`.
    pub const TYPE: &str = "error.type";
    pub const EXCEPTION_TYPE: &str = "exception.type";
    pub const EXCEPTION_MESSAGE: &str = "exception.message";
}

/// OpenInference (Arize Phoenix), enabled with `RAGTRACE_SPAN_DIALECTS`.
/// Indexed keys are written in [`crate::dialects`]:
/// `retrieval.documents.{i}.document.id`, `.content`, `.score`;
/// `llm.input_messages.{i}.message.role`, `.content`;
/// `embedding.embeddings.{i}.embedding.text`. `session.id` and `user.id` are shared with
/// [`identity`].
pub mod openinference {
    /// `LLM`, `EMBEDDING`, `CHAIN`, `RETRIEVER`, `TOOL`, `AGENT`, ...
    pub const SPAN_KIND: &str = "openinference.span.kind";
    pub const INPUT_VALUE: &str = "input.value";
    pub const INPUT_MIME_TYPE: &str = "input.mime_type";
    pub const OUTPUT_VALUE: &str = "output.value";
    pub const OUTPUT_MIME_TYPE: &str = "output.mime_type";
    pub const LLM_MODEL_NAME: &str = "llm.model_name";
    /// Who hosts the model: `openai`, `azure`, `google`, `aws`, ...
    pub const LLM_PROVIDER: &str = "llm.provider";
    /// The AI product: `openai`, `anthropic`, `mistralai`, `vertexai`, ...
    pub const LLM_SYSTEM: &str = "llm.system";
    /// The one output message of a chat completion (`llm.output_messages.{i}.*`;
    /// input messages are indexed in [`crate::dialects`]).
    pub const LLM_OUTPUT_ROLE_0: &str = "llm.output_messages.0.message.role";
    pub const LLM_OUTPUT_CONTENT_0: &str = "llm.output_messages.0.message.content";
    /// JSON object of the request parameters.
    pub const LLM_INVOCATION_PARAMETERS: &str = "llm.invocation_parameters";
    pub const LLM_TOKEN_COUNT_PROMPT: &str = "llm.token_count.prompt";
    pub const LLM_TOKEN_COUNT_COMPLETION: &str = "llm.token_count.completion";
    pub const LLM_TOKEN_COUNT_TOTAL: &str = "llm.token_count.total";
    pub const EMBEDDING_MODEL_NAME: &str = "embedding.model_name";
    pub const TOOL_NAME: &str = "tool.name";
    pub const TOOL_DESCRIPTION: &str = "tool.description";
    /// JSON Schema of the tool's arguments.
    pub const TOOL_PARAMETERS: &str = "tool.parameters";
    pub const AGENT_NAME: &str = "agent.name";
    /// string[]
    pub const TAG_TAGS: &str = "tag.tags";
}

/// FutureAGI's traceAI conventions (`SemanticConventions` of traceAI's
/// TypeScript, Java and C# SDKs, which FutureAGI's backend reads). traceAI
/// takes the OpenTelemetry GenAI keys as they are (including
/// `gen_ai.evaluation.*`) and adds a span kind and a few `gen_ai.*` keys the
/// conventions do not define.
pub mod futureagi {
    /// The span's kind, on every span: the values of OpenInference's
    /// `openinference.span.kind` (`LLM`, `EMBEDDING`, `RETRIEVER`, `TOOL`,
    /// `AGENT`, `EVALUATOR`, `CHAIN`, ...). traceAI's Python SDK writes
    /// `gen_ai.span.kind`; FutureAGI reads either.
    pub const SPAN_KIND: &str = "fi.span.kind";
    /// Input plus output tokens.
    pub const USAGE_TOTAL_TOKENS: &str = "gen_ai.usage.total_tokens";
    /// How many results a retrieval asked for (our `gen_ai.request.top_k`).
    pub const RETRIEVAL_TOP_K: &str = "gen_ai.retrieval.top_k";
    /// An agent's node in the agent graph, and its name there. Our one agent
    /// is the graph's root, so it has no `gen_ai.agent.graph.parent_node_id`.
    pub const AGENT_GRAPH_NODE_ID: &str = "gen_ai.agent.graph.node_id";
    pub const AGENT_GRAPH_NODE_NAME: &str = "gen_ai.agent.graph.node_name";
    /// JSON Schema of a tool's arguments.
    pub const TOOL_PARAMETERS: &str = "gen_ai.tool.parameters";
}

/// General OpenTelemetry identity conventions, filled from W3C baggage.
pub mod identity {
    pub const USER_ID: &str = "user.id";
    pub const SESSION_ID: &str = "session.id";
}

/// The W3C baggage keys ragtrace sets at the gateway and reads everywhere.
/// Only these are copied onto spans; other baggage is forwarded untouched
/// but never recorded (it may hold anything).
pub mod baggage {
    pub const USER_ID: &str = "user_id";
    pub const SESSION_ID: &str = "session_id";
    /// The request's tags, as a JSON array of strings (one baggage value can
    /// hold any tag text that way; the propagator percent-encodes it).
    pub const TAGS: &str = "tags";
}

/// Our own keys, for facts no convention covers. Namespaced `ragtrace.*`
/// so they can never collide with a standard key.
pub mod ragtrace {
    /// The downstream service a CLIENT span calls (our `service.name` values).
    pub const PEER_SERVICE: &str = "ragtrace.peer.service";
    pub const CONTEXTS_RETURNED: &str = "ragtrace.contexts.returned";
    /// How a streamed response ended, on every span that carried it:
    /// `completed` (done event sent), `error` (error event, or the stream
    /// broke), `cancelled` (the client went away first).
    pub const STREAM_OUTCOME: &str = "ragtrace.stream.outcome";
    /// int: content chunks (delta events) a stream carried.
    pub const STREAM_CHUNKS: &str = "ragtrace.stream.chunks";
}
