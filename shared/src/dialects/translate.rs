//! Vendor keys derived from the conventions' keys, when a span is exported.
//!
//! Handlers set `gen_ai.*` (and `user.id`, `session.id`) on their spans and
//! nothing else. [`Translate`] wraps the span exporter: for each span of a
//! batch it reads those keys and appends what Confident AI, OpenInference
//! and FutureAGI call the same facts. The work runs on the batch processor's thread, off
//! the request path, and only for spans that are sampled and exported.
//!
//! The derivation is a table (`RULES`) plus the facts that need more
//! than a copy: the span type/kind (from `gen_ai.operation.name`, or
//! `EVALUATOR` for a span with `gen_ai.evaluation.name`), OpenInference's
//! `llm.system`/`llm.provider` (from `gen_ai.provider.name`),
//! `llm.invocation_parameters` (a JSON object of the request parameters),
//! the token total (`llm.token_count.total`, `gen_ai.usage.total_tokens`)
//! and Confident AI's price per token (from `gen_ai.cost.*` and the usage).

use std::time::Duration;

use opentelemetry::{Key, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::Dialects;
use crate::attributes::{confident, cost, futureagi, gen_ai, identity, openinference};

use gen_ai::operation::{CHAT, EMBEDDINGS, EXECUTE_TOOL, INVOKE_AGENT, RETRIEVAL};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Confident,
    OpenInference,
    FutureAgi,
}

/// "`to` repeats `from`", for `dialect`, on spans of `operation` (any
/// operation when `None`).
struct Rule {
    from: &'static str,
    to: &'static str,
    dialect: Dialect,
    operation: Option<&'static str>,
}

const fn rule(
    from: &'static str,
    to: &'static str,
    dialect: Dialect,
    operation: Option<&'static str>,
) -> Rule {
    Rule {
        from,
        to,
        dialect,
        operation,
    }
}

use Dialect::{Confident, FutureAgi, OpenInference};

/// The keys that repeat a convention's key under a vendor's name, one rule
/// a line.
#[rustfmt::skip]
const RULES: &[Rule] = &[
    rule(gen_ai::AGENT_NAME,         confident::AGENT_NAME,                    Confident,     None),
    rule(gen_ai::AGENT_NAME,         openinference::AGENT_NAME,                OpenInference, None),
    rule(identity::USER_ID,          confident::TRACE_USER_ID,                 Confident,     None),
    rule(identity::SESSION_ID,       confident::TRACE_THREAD_ID,               Confident,     None),
    rule(gen_ai::TOOL_NAME,          confident::TOOL_NAME,                     Confident,     None),
    rule(gen_ai::TOOL_NAME,          openinference::TOOL_NAME,                 OpenInference, None),
    rule(gen_ai::TOOL_DESCRIPTION,   confident::TOOL_DESCRIPTION,              Confident,     None),
    rule(gen_ai::TOOL_DESCRIPTION,   openinference::TOOL_DESCRIPTION,          OpenInference, None),
    rule(gen_ai::REQUEST_TOP_K,      confident::RETRIEVER_TOP_K,               Confident,     Some(RETRIEVAL)),
    rule(gen_ai::REQUEST_MODEL,      confident::LLM_MODEL,                     Confident,     Some(CHAT)),
    rule(gen_ai::REQUEST_MODEL,      openinference::LLM_MODEL_NAME,            OpenInference, Some(CHAT)),
    rule(gen_ai::REQUEST_MODEL,      openinference::EMBEDDING_MODEL_NAME,      OpenInference, Some(EMBEDDINGS)),
    rule(gen_ai::USAGE_INPUT_TOKENS, confident::LLM_INPUT_TOKEN_COUNT,         Confident,     Some(CHAT)),
    rule(gen_ai::USAGE_OUTPUT_TOKENS, confident::LLM_OUTPUT_TOKEN_COUNT,       Confident,     Some(CHAT)),
    rule(gen_ai::USAGE_INPUT_TOKENS, openinference::LLM_TOKEN_COUNT_PROMPT,    OpenInference, None),
    rule(gen_ai::USAGE_OUTPUT_TOKENS, openinference::LLM_TOKEN_COUNT_COMPLETION, OpenInference, None),
    rule(gen_ai::REQUEST_TOP_K,      futureagi::RETRIEVAL_TOP_K,               FutureAgi,     Some(RETRIEVAL)),
    rule(gen_ai::AGENT_NAME,         futureagi::AGENT_GRAPH_NODE_ID,           FutureAgi,     Some(INVOKE_AGENT)),
    rule(gen_ai::AGENT_NAME,         futureagi::AGENT_GRAPH_NODE_NAME,         FutureAgi,     Some(INVOKE_AGENT)),
];

/// Confident AI's span type and the OpenInference/FutureAGI span kind (one
/// set of values) for a `gen_ai.operation.name` (`None`: a span of no GenAI
/// operation, such as HTTP, database and ingest spans), or for an
/// evaluator's span. Confident AI has no embeddings or evaluator type: those
/// stay plain spans.
fn span_type(operation: Option<&str>, evaluation: bool) -> (Option<&'static str>, &'static str) {
    if evaluation {
        return (None, "EVALUATOR");
    }
    match operation {
        Some(INVOKE_AGENT) => (Some(confident::span_type::AGENT), "AGENT"),
        Some(EXECUTE_TOOL) => (Some(confident::span_type::TOOL), "TOOL"),
        Some(RETRIEVAL) => (Some(confident::span_type::RETRIEVER), "RETRIEVER"),
        Some(EMBEDDINGS) => (None, "EMBEDDING"),
        Some(CHAT) => (Some(confident::span_type::LLM), "LLM"),
        _ => (None, "CHAIN"),
    }
}

/// OpenInference's `llm.system` and `llm.provider` for a
/// `gen_ai.provider.name`: the AI product, and who hosts it. Every remote
/// call here speaks OpenAI's API, so a host OpenInference has no name for
/// (`openai_compatible`, `ollama`, ...) is the `openai` system on that host.
fn llm_system_and_provider(provider: &str) -> (&str, &str) {
    match provider {
        gen_ai::PROVIDER_RAGTRACE | "anthropic" | "deepseek" | "groq" => (provider, provider),
        "azure.ai.openai" => ("openai", "azure"),
        "mistral_ai" => ("mistralai", "mistralai"),
        "gcp.gemini" => ("vertexai", "google"),
        "x_ai" => ("xai", "xai"),
        other => ("openai", other),
    }
}

/// The keys [`translate`] reads. A span's attributes are scanned once for
/// them ([`Sources`]); every rule then looks its key up here.
const SOURCE_KEYS: [&str; 16] = [
    gen_ai::OPERATION_NAME,
    gen_ai::EVALUATION_NAME,
    gen_ai::AGENT_NAME,
    identity::USER_ID,
    identity::SESSION_ID,
    gen_ai::TOOL_NAME,
    gen_ai::TOOL_DESCRIPTION,
    gen_ai::REQUEST_TOP_K,
    gen_ai::REQUEST_MODEL,
    gen_ai::USAGE_INPUT_TOKENS,
    gen_ai::USAGE_OUTPUT_TOKENS,
    gen_ai::PROVIDER_NAME,
    gen_ai::REQUEST_TEMPERATURE,
    gen_ai::REQUEST_MAX_TOKENS,
    cost::INPUT,
    cost::OUTPUT,
];

/// The values of [`SOURCE_KEYS`] on one span, found in one pass.
struct Sources<'a>([Option<&'a Value>; SOURCE_KEYS.len()]);

impl<'a> Sources<'a> {
    fn of(attributes: &'a [KeyValue]) -> Self {
        let mut found = [None; SOURCE_KEYS.len()];
        for kv in attributes {
            if let Some(i) = SOURCE_KEYS.iter().position(|k| *k == kv.key.as_str()) {
                found[i] = Some(&kv.value);
            }
        }
        Sources(found)
    }

    fn get(&self, key: &str) -> Option<Value> {
        let i = SOURCE_KEYS.iter().position(|k| *k == key)?;
        self.0[i].cloned()
    }
}

/// Append the vendor keys of `dialects` that `span`'s own keys imply.
pub fn translate(span: &mut SpanData, dialects: Dialects) {
    if dialects == Dialects::GENAI {
        return;
    }
    let sources = Sources::of(&span.attributes);
    let get = |key: &str| sources.get(key);
    let on = |dialect| match dialect {
        Confident => dialects.confident,
        OpenInference => dialects.openinference,
        FutureAgi => dialects.futureagi,
    };
    let operation = get(gen_ai::OPERATION_NAME).map(|v| v.as_str().into_owned());
    let operation = operation.as_deref();
    let mut added = Vec::with_capacity(8);
    let mut add = |key: &'static str, value: Value| {
        added.push(KeyValue::new(Key::from_static_str(key), value))
    };

    let evaluation = get(gen_ai::EVALUATION_NAME).is_some();
    let (confident_type, kind) = span_type(operation, evaluation);
    if let (true, Some(confident_type)) = (dialects.confident, confident_type) {
        add(confident::SPAN_TYPE, confident_type.into());
    }
    if dialects.openinference {
        add(openinference::SPAN_KIND, kind.into());
    }
    if dialects.futureagi {
        add(futureagi::SPAN_KIND, kind.into());
    }
    for rule in RULES {
        if on(rule.dialect)
            && rule.operation.is_none_or(|op| operation == Some(op))
            && let Some(value) = get(rule.from)
        {
            add(rule.to, value);
        }
    }
    if let Some(total) = total_tokens(&get) {
        if dialects.openinference {
            add(openinference::LLM_TOKEN_COUNT_TOTAL, total.into());
        }
        if dialects.futureagi {
            add(futureagi::USAGE_TOTAL_TOKENS, total.into());
        }
    }
    if dialects.openinference {
        openinference_derived(&get, operation, &mut add);
    }
    if dialects.confident && operation == Some(CHAT) {
        confident_price_per_token(&get, &mut add);
    }
    span.attributes.extend(added);
}

/// Input plus output tokens, when the span has input tokens.
fn total_tokens(get: &impl Fn(&str) -> Option<Value>) -> Option<i64> {
    let Some(Value::I64(input)) = get(gen_ai::USAGE_INPUT_TOKENS) else {
        return None;
    };
    let output = match get(gen_ai::USAGE_OUTPUT_TOKENS) {
        Some(Value::I64(output)) => output,
        _ => 0,
    };
    Some(input + output)
}

/// Confident AI's price per input and output token on a chat span, from
/// what it cost (`gen_ai.cost.*`) and its usage, when both are there.
fn confident_price_per_token(
    get: &impl Fn(&str) -> Option<Value>,
    add: &mut impl FnMut(&'static str, Value),
) {
    let per_token = [
        (
            cost::INPUT,
            gen_ai::USAGE_INPUT_TOKENS,
            confident::LLM_COST_PER_INPUT_TOKEN,
        ),
        (
            cost::OUTPUT,
            gen_ai::USAGE_OUTPUT_TOKENS,
            confident::LLM_COST_PER_OUTPUT_TOKEN,
        ),
    ];
    for (cost, tokens, key) in per_token {
        if let (Some(Value::F64(cost)), Some(Value::I64(tokens @ 1..))) = (get(cost), get(tokens)) {
            add(key, (cost / tokens as f64).into());
        }
    }
}

/// OpenInference's keys that combine a chat span's keys:
/// `llm.system`/`llm.provider` and `llm.invocation_parameters`.
fn openinference_derived(
    get: &impl Fn(&str) -> Option<Value>,
    operation: Option<&str>,
    add: &mut impl FnMut(&'static str, Value),
) {
    if operation != Some(CHAT) {
        return;
    }
    if let Some(provider) = get(gen_ai::PROVIDER_NAME) {
        let provider = provider.as_str();
        let (system, host) = llm_system_and_provider(&provider);
        add(openinference::LLM_SYSTEM, system.to_owned().into());
        add(openinference::LLM_PROVIDER, host.to_owned().into());
    }
    // serde_json's map is ordered by key: `max_tokens`, `temperature`.
    let mut parameters = serde_json::Map::new();
    if let Some(Value::F64(t)) = get(gen_ai::REQUEST_TEMPERATURE) {
        parameters.insert("temperature".into(), t.into());
    }
    if let Some(Value::I64(m)) = get(gen_ai::REQUEST_MAX_TOKENS) {
        parameters.insert("max_tokens".into(), m.into());
    }
    let parameters = serde_json::Value::Object(parameters).to_string();
    add(openinference::LLM_INVOCATION_PARAMETERS, parameters.into());
}

/// A span exporter that [`translate`]s every span before `E` exports it.
#[derive(Debug)]
pub struct Translate<E> {
    inner: E,
    dialects: Dialects,
}

impl<E> Translate<E> {
    pub fn new(inner: E, dialects: Dialects) -> Self {
        Self { inner, dialects }
    }
}

impl<E: SpanExporter> SpanExporter for Translate<E> {
    fn export(&self, mut batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        for span in &mut batch {
            translate(span, self.dialects);
        }
        self.inner.export(batch)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    // `shutdown` (the SDK's default) calls this one.
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }
}

#[cfg(test)]
mod tests;
