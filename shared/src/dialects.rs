//! One mapping from what a span *is* to the attribute dialects that trace
//! backends understand. Handlers describe their spans with [`Fact`]s; this
//! module alone decides which keys that becomes.
//!
//! - **genai** (always): OpenTelemetry GenAI semantic conventions v1.41,
//!   which every OTLP backend can index.
//! - **confident**: Confident AI's `confident.*` keys (span types, trace
//!   name/user/thread/tags, LLM and retriever fields).
//! - **openinference**: Arize Phoenix's OpenInference keys
//!   (`openinference.span.kind`, `input.value`/`output.value`,
//!   `llm.model_name`, `llm.token_count.*`, `retrieval.documents.{i}.*`,
//!   `session.id`, `user.id`), so Phoenix classifies every span.
//!
//! `RAGTRACE_SPAN_DIALECTS` picks the extra dialects (comma list; default
//! `genai,confident`). Content facts ([`Fact::Input`], [`Fact::Output`],
//! [`Fact::Documents`], ...) carry [`Content`] and [`Passages`], which only
//! [`crate::redact`] can build: empty when content capture is off
//! (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`, see
//! [`crate::telemetry::capture_content`]), redacted and capped when it is
//! on. No arm here can record raw text, because none is ever handed one.

use std::sync::OnceLock;

use opentelemetry::{Array, StringValue, Value};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::attributes::{confident, gen_ai, identity, openinference};
use crate::redact::{Content, Passages};

/// What a span is, in our own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Plumbing: HTTP server/client and database spans. Only OpenInference
    /// has a kind for it (`CHAIN`), so Phoenix classifies every span.
    Chain,
    Agent,
    Tool,
    Retrieval,
    Embeddings,
    Llm,
}

/// A fact about a span, convention-neutral.
#[derive(Debug, Clone, Copy)]
pub enum Fact<'a> {
    /// What the span is; sets the span-type keys of every dialect.
    Role(Role),
    Agent {
        name: &'a str,
    },
    Trace {
        name: &'a str,
        environment: &'a str,
    },
    User(&'a str),
    Session(&'a str),
    Tags(&'a [String]),
    Tool {
        name: &'a str,
        description: &'a str,
        /// The JSON Schema of the tool's arguments.
        parameters: &'a str,
    },
    Retrieval {
        data_source: &'a str,
        top_k: usize,
        embedder: &'a str,
        chunk_size: usize,
    },
    Embeddings {
        model: &'a str,
        provider: &'a str,
    },
    EmbeddingsDimension(usize),
    Chat {
        model: &'a str,
        provider: &'a str,
    },
    ChatParameters {
        temperature: Option<f32>,
        max_tokens: Option<u64>,
    },
    ChatResponse {
        id: Option<&'a str>,
        model: &'a str,
        finish_reason: &'a str,
    },
    /// Tokens as the model (or our documented counting rule) reported them.
    Usage {
        input: u64,
        output: Option<u64>,
    },
    /// Content: the question or prompt.
    Input(&'a Content),
    /// Content: the answer.
    Output(&'a Content),
    /// Content: the retrieved passages.
    Documents(&'a Passages),
    /// Content: the texts an embeddings call embedded, in order.
    EmbeddingTexts(&'a [Content]),
    /// Content: the whole request's input, on the agent span.
    TraceInput(&'a Content),
    /// Content: the whole request's output, on the agent span.
    TraceOutput(&'a Content),
    /// The model that actually served the request (embeddings).
    ResponseModel(&'a str),
    /// The response was requested as a stream of chunks.
    Streaming,
    /// A streamed response's first content chunk arrived this long after
    /// the request was sent.
    TimeToFirstChunk(std::time::Duration),
    /// Content: the messages sent to a chat model (GenAI message schema).
    ChatInput {
        system: Option<&'a Content>,
        user: &'a Content,
    },
    /// Content: the model's reply (GenAI message schema).
    ChatOutput {
        text: &'a Content,
        finish_reason: &'a str,
    },
}

/// The dialects switched on for this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialects {
    pub confident: bool,
    pub openinference: bool,
}

impl Dialects {
    /// Parse a `RAGTRACE_SPAN_DIALECTS` value. `genai` is always on; unknown
    /// names are reported, not silently ignored.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut dialects = Dialects {
            confident: false,
            openinference: false,
        };
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "genai" => {}
                "confident" => dialects.confident = true,
                "openinference" => dialects.openinference = true,
                other => {
                    return Err(format!(
                        "unknown span dialect {other:?} (expected genai, confident, openinference)"
                    ));
                }
            }
        }
        Ok(dialects)
    }

    /// From `RAGTRACE_SPAN_DIALECTS`, read once (default `genai,confident`).
    pub fn current() -> Dialects {
        static CURRENT: OnceLock<Dialects> = OnceLock::new();
        *CURRENT.get_or_init(|| {
            let value = std::env::var("RAGTRACE_SPAN_DIALECTS")
                .unwrap_or_else(|_| "genai,confident".into());
            Dialects::parse(&value).unwrap_or_else(|err| {
                tracing::warn!("{err}; using genai,confident");
                Dialects::parse("genai,confident").expect("valid default")
            })
        })
    }
}

fn strings(values: impl IntoIterator<Item = String>) -> Value {
    Value::Array(Array::String(
        values.into_iter().map(StringValue::from).collect(),
    ))
}

/// Record `facts` on `span` in every enabled dialect.
pub fn record(span: &Span, facts: &[Fact<'_>]) {
    record_with(span, facts, Dialects::current());
}

/// The `llm.system` and `llm.provider` of OpenInference for a
/// `gen_ai.provider.name`: the AI product, and who hosts it. Every remote
/// call here speaks OpenAI's API, so a host OpenInference has no name for
/// (`openai_compatible`, `ollama`, ...) is the `openai` system on that host.
fn openinference_system_and_provider(provider: &str) -> (&str, &str) {
    match provider {
        gen_ai::PROVIDER_RAGTRACE | "anthropic" | "deepseek" | "groq" => (provider, provider),
        "azure.ai.openai" => ("openai", "azure"),
        "mistral_ai" => ("mistralai", "mistralai"),
        "gcp.gemini" => ("vertexai", "google"),
        "x_ai" => ("xai", "xai"),
        other => ("openai", other),
    }
}

/// Most embedded texts recorded on one `EMBEDDING` span (an ingest batch
/// can embed hundreds; the SDK keeps 128 attributes per span).
pub const MAX_RECORDED_EMBEDDING_TEXTS: usize = 16;

/// [`record`] with explicit dialects (for tests).
pub fn record_with(span: &Span, facts: &[Fact<'_>], dialects: Dialects) {
    let set = |key: &'static str, value: Value| span.set_attribute(key, value);
    let text = |content: &Content| content.text().map(str::to_owned);
    for fact in facts {
        match *fact {
            Fact::Role(Role::Chain) => {
                if dialects.openinference {
                    set(openinference::SPAN_KIND, "CHAIN".into());
                }
            }
            Fact::Role(role) => {
                let (operation, confident_type, oi_kind) = match role {
                    Role::Chain => unreachable!("handled above"),
                    Role::Agent => (
                        gen_ai::operation::INVOKE_AGENT,
                        confident::span_type::AGENT,
                        "AGENT",
                    ),
                    Role::Tool => (
                        gen_ai::operation::EXECUTE_TOOL,
                        confident::span_type::TOOL,
                        "TOOL",
                    ),
                    Role::Retrieval => (
                        gen_ai::operation::RETRIEVAL,
                        confident::span_type::RETRIEVER,
                        "RETRIEVER",
                    ),
                    Role::Embeddings => (
                        gen_ai::operation::EMBEDDINGS,
                        confident::span_type::BASE,
                        "EMBEDDING",
                    ),
                    Role::Llm => (gen_ai::operation::CHAT, confident::span_type::LLM, "LLM"),
                };
                set(gen_ai::OPERATION_NAME, operation.into());
                // Confident AI has no embedding type: embeddings stay plain
                // (`base`) spans under the retriever.
                if dialects.confident && role != Role::Embeddings {
                    set(confident::SPAN_TYPE, confident_type.into());
                }
                if dialects.openinference {
                    set(openinference::SPAN_KIND, oi_kind.into());
                }
            }
            Fact::Agent { name } => {
                set(gen_ai::AGENT_NAME, name.to_owned().into());
                if dialects.confident {
                    set(confident::AGENT_NAME, name.to_owned().into());
                }
                if dialects.openinference {
                    set(openinference::AGENT_NAME, name.to_owned().into());
                }
            }
            Fact::Trace { name, environment } => {
                if dialects.confident {
                    set(confident::TRACE_NAME, name.to_owned().into());
                    set(confident::TRACE_ENVIRONMENT, environment.to_owned().into());
                }
            }
            Fact::User(user) => {
                set(identity::USER_ID, user.to_owned().into());
                if dialects.confident {
                    set(confident::TRACE_USER_ID, user.to_owned().into());
                }
            }
            Fact::Session(session) => {
                set(identity::SESSION_ID, session.to_owned().into());
                set(gen_ai::CONVERSATION_ID, session.to_owned().into());
                if dialects.confident {
                    set(confident::TRACE_THREAD_ID, session.to_owned().into());
                }
            }
            Fact::Tags(tags) => {
                if dialects.confident {
                    set(confident::TRACE_TAGS, strings(tags.iter().cloned()));
                }
                if dialects.openinference {
                    set(openinference::TAG_TAGS, strings(tags.iter().cloned()));
                }
            }
            Fact::Tool {
                name,
                description,
                parameters,
            } => {
                set(gen_ai::TOOL_NAME, name.to_owned().into());
                set(gen_ai::TOOL_DESCRIPTION, description.to_owned().into());
                if dialects.confident {
                    set(confident::TOOL_NAME, name.to_owned().into());
                    set(confident::TOOL_DESCRIPTION, description.to_owned().into());
                }
                if dialects.openinference {
                    set(openinference::TOOL_NAME, name.to_owned().into());
                    set(
                        openinference::TOOL_DESCRIPTION,
                        description.to_owned().into(),
                    );
                    set(openinference::TOOL_PARAMETERS, parameters.to_owned().into());
                }
            }
            Fact::Retrieval {
                data_source,
                top_k,
                embedder,
                chunk_size,
            } => {
                set(gen_ai::DATA_SOURCE_ID, data_source.to_owned().into());
                set(gen_ai::REQUEST_TOP_K, (top_k as i64).into());
                if dialects.confident {
                    set(confident::RETRIEVER_EMBEDDER, embedder.to_owned().into());
                    set(confident::RETRIEVER_TOP_K, (top_k as i64).into());
                    set(confident::RETRIEVER_CHUNK_SIZE, (chunk_size as i64).into());
                }
            }
            Fact::Embeddings { model, provider } => {
                set(gen_ai::PROVIDER_NAME, provider.to_owned().into());
                set(gen_ai::REQUEST_MODEL, model.to_owned().into());
                if dialects.openinference {
                    set(openinference::EMBEDDING_MODEL_NAME, model.to_owned().into());
                }
            }
            Fact::EmbeddingsDimension(dimension) => {
                set(
                    gen_ai::EMBEDDINGS_DIMENSION_COUNT,
                    (dimension as i64).into(),
                );
            }
            Fact::Chat { model, provider } => {
                set(gen_ai::PROVIDER_NAME, provider.to_owned().into());
                set(gen_ai::REQUEST_MODEL, model.to_owned().into());
                set(gen_ai::OUTPUT_TYPE, "text".into());
                if dialects.confident {
                    set(confident::LLM_MODEL, model.to_owned().into());
                }
                if dialects.openinference {
                    let (system, host) = openinference_system_and_provider(provider);
                    set(openinference::LLM_MODEL_NAME, model.to_owned().into());
                    set(openinference::LLM_SYSTEM, system.to_owned().into());
                    set(openinference::LLM_PROVIDER, host.to_owned().into());
                }
            }
            Fact::ChatParameters {
                temperature,
                max_tokens,
            } => {
                if let Some(t) = temperature {
                    set(gen_ai::REQUEST_TEMPERATURE, f64::from(t).into());
                }
                if let Some(m) = max_tokens {
                    set(gen_ai::REQUEST_MAX_TOKENS, (m as i64).into());
                }
                if dialects.openinference {
                    let mut params = serde_json::Map::new();
                    if let Some(t) = temperature {
                        params.insert("temperature".into(), f64::from(t).into());
                    }
                    if let Some(m) = max_tokens {
                        params.insert("max_tokens".into(), m.into());
                    }
                    set(
                        openinference::LLM_INVOCATION_PARAMETERS,
                        serde_json::Value::Object(params).to_string().into(),
                    );
                }
            }
            Fact::ChatResponse {
                id,
                model,
                finish_reason,
            } => {
                if let Some(id) = id {
                    set(gen_ai::RESPONSE_ID, id.to_owned().into());
                }
                set(gen_ai::RESPONSE_MODEL, model.to_owned().into());
                set(
                    gen_ai::RESPONSE_FINISH_REASONS,
                    strings([finish_reason.to_owned()]),
                );
            }
            Fact::Usage { input, output } => {
                set(gen_ai::USAGE_INPUT_TOKENS, (input as i64).into());
                // An embeddings call has input tokens only.
                if output.is_none() && dialects.openinference {
                    set(openinference::LLM_TOKEN_COUNT_PROMPT, (input as i64).into());
                    set(openinference::LLM_TOKEN_COUNT_TOTAL, (input as i64).into());
                }
                if let Some(output) = output {
                    set(gen_ai::USAGE_OUTPUT_TOKENS, (output as i64).into());
                    if dialects.confident {
                        set(confident::LLM_INPUT_TOKEN_COUNT, (input as i64).into());
                        set(confident::LLM_OUTPUT_TOKEN_COUNT, (output as i64).into());
                    }
                    if dialects.openinference {
                        set(openinference::LLM_TOKEN_COUNT_PROMPT, (input as i64).into());
                        set(
                            openinference::LLM_TOKEN_COUNT_COMPLETION,
                            (output as i64).into(),
                        );
                        set(
                            openinference::LLM_TOKEN_COUNT_TOTAL,
                            ((input + output) as i64).into(),
                        );
                    }
                }
            }
            Fact::Input(content) => {
                let Some(text) = text(content) else { continue };
                if dialects.confident {
                    set(confident::SPAN_INPUT, text.clone().into());
                }
                if dialects.openinference {
                    set(openinference::INPUT_VALUE, text.into());
                    set(openinference::INPUT_MIME_TYPE, "text/plain".into());
                }
            }
            Fact::Output(content) => {
                let Some(text) = text(content) else { continue };
                if dialects.confident {
                    set(confident::SPAN_OUTPUT, text.clone().into());
                }
                if dialects.openinference {
                    set(openinference::OUTPUT_VALUE, text.into());
                    set(openinference::OUTPUT_MIME_TYPE, "text/plain".into());
                }
            }
            Fact::Documents(passages) => {
                let Some(passages) = passages.get() else {
                    continue;
                };
                if dialects.confident {
                    set(
                        confident::SPAN_RETRIEVAL_CONTEXT,
                        strings(passages.iter().map(|p| p.text().to_owned())),
                    );
                }
                if dialects.openinference {
                    for (i, passage) in passages.iter().enumerate() {
                        let key = |field: &str| format!("retrieval.documents.{i}.document.{field}");
                        span.set_attribute(key("id"), passage.id.clone());
                        span.set_attribute(key("content"), passage.text().to_owned());
                        span.set_attribute(key("score"), f64::from(passage.score));
                    }
                }
            }
            Fact::EmbeddingTexts(contents) => {
                if dialects.openinference {
                    let captured = contents.iter().filter_map(Content::text);
                    for (i, text) in captured.take(MAX_RECORDED_EMBEDDING_TEXTS).enumerate() {
                        span.set_attribute(
                            format!("embedding.embeddings.{i}.embedding.text"),
                            text.to_owned(),
                        );
                    }
                }
            }
            Fact::TraceInput(content) => {
                if let (true, Some(text)) = (dialects.confident, text(content)) {
                    set(confident::TRACE_INPUT, text.into());
                }
            }
            Fact::TraceOutput(content) => {
                if let (true, Some(text)) = (dialects.confident, text(content)) {
                    set(confident::TRACE_OUTPUT, text.into());
                }
            }
            Fact::ResponseModel(model) => set(gen_ai::RESPONSE_MODEL, model.to_owned().into()),
            Fact::Streaming => set(gen_ai::REQUEST_STREAM, true.into()),
            Fact::TimeToFirstChunk(after) => set(
                gen_ai::RESPONSE_TIME_TO_FIRST_CHUNK,
                after.as_secs_f64().into(),
            ),
            // GenAI content keys: JSON in the conventions' message schema,
            // `{"role", "parts": [{"type": "text", "content"}]}`.
            // OpenInference: flattened `llm.input_messages.{i}.message.*`.
            Fact::ChatInput { system, user } => {
                let Some(user) = text(user) else { continue };
                let system = system.and_then(text);
                if let Some(system) = &system {
                    let parts = serde_json::json!([{"type": "text", "content": system}]);
                    set(gen_ai::SYSTEM_INSTRUCTIONS, parts.to_string().into());
                }
                let messages = serde_json::json!([
                    {"role": "user", "parts": [{"type": "text", "content": user}]}
                ]);
                set(gen_ai::INPUT_MESSAGES, messages.to_string().into());
                if dialects.openinference {
                    let messages = system.map(|s| ("system", s)).into_iter();
                    for (i, (role, content)) in messages.chain([("user", user)]).enumerate() {
                        let key = |field: &str| format!("llm.input_messages.{i}.message.{field}");
                        span.set_attribute(key("role"), role);
                        span.set_attribute(key("content"), content);
                    }
                }
            }
            Fact::ChatOutput {
                text: content,
                finish_reason,
            } => {
                let Some(answer) = text(content) else {
                    continue;
                };
                let messages = serde_json::json!([{
                    "role": "assistant",
                    "parts": [{"type": "text", "content": answer}],
                    "finish_reason": finish_reason,
                }]);
                set(gen_ai::OUTPUT_MESSAGES, messages.to_string().into());
                if dialects.openinference {
                    set(openinference::LLM_OUTPUT_ROLE_0, "assistant".into());
                    set(openinference::LLM_OUTPUT_CONTENT_0, answer.into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Dialects;

    #[test]
    fn dialects_parse() {
        assert_eq!(
            Dialects::parse("genai,confident").unwrap(),
            Dialects {
                confident: true,
                openinference: false
            }
        );
        assert_eq!(
            Dialects::parse(" openinference , GENAI ").unwrap(),
            Dialects {
                confident: false,
                openinference: true
            }
        );
        assert!(Dialects::parse("genai,zipkin").is_err());
    }
}
