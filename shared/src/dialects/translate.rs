//! Vendor keys derived from the conventions' keys, when a span is exported.
//!
//! Handlers set `gen_ai.*` (and `user.id`, `session.id`) on their spans and
//! nothing else. [`Translate`] wraps the span exporter: for each span of a
//! batch it reads those keys and appends what Confident AI and OpenInference
//! call the same facts. The work runs on the batch processor's thread, off
//! the request path, and only for spans that are sampled and exported.
//!
//! The derivation is a table (`RULES`) plus four facts that need more
//! than a copy: the span type/kind (from `gen_ai.operation.name`),
//! OpenInference's `llm.system`/`llm.provider` (from `gen_ai.provider.name`),
//! `llm.invocation_parameters` (a JSON object of the request parameters) and
//! `llm.token_count.total`.

use std::time::Duration;

use opentelemetry::{Key, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use super::Dialects;
use crate::attributes::{confident, gen_ai, identity, openinference};

use gen_ai::operation::{CHAT, EMBEDDINGS, EXECUTE_TOOL, INVOKE_AGENT, RETRIEVAL};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Confident,
    OpenInference,
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

use Dialect::{Confident, OpenInference};

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
];

/// Confident AI's span type and OpenInference's span kind for a
/// `gen_ai.operation.name` (`None`: a span of no GenAI operation, such as
/// HTTP, database and ingest spans). Confident AI has no embeddings type:
/// those stay plain spans under the retriever.
fn span_type(operation: Option<&str>) -> (Option<&'static str>, &'static str) {
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
const SOURCE_KEYS: [&str; 13] = [
    gen_ai::OPERATION_NAME,
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
    if !dialects.confident && !dialects.openinference {
        return;
    }
    let sources = Sources::of(&span.attributes);
    let get = |key: &str| sources.get(key);
    let on = |dialect| match dialect {
        Confident => dialects.confident,
        OpenInference => dialects.openinference,
    };
    let operation = get(gen_ai::OPERATION_NAME).map(|v| v.as_str().into_owned());
    let operation = operation.as_deref();
    let mut added = Vec::with_capacity(8);
    let mut add = |key: &'static str, value: Value| {
        added.push(KeyValue::new(Key::from_static_str(key), value))
    };

    let (confident_type, kind) = span_type(operation);
    if let (true, Some(confident_type)) = (dialects.confident, confident_type) {
        add(confident::SPAN_TYPE, confident_type.into());
    }
    if dialects.openinference {
        add(openinference::SPAN_KIND, kind.into());
    }
    for rule in RULES {
        if on(rule.dialect)
            && rule.operation.is_none_or(|op| operation == Some(op))
            && let Some(value) = get(rule.from)
        {
            add(rule.to, value);
        }
    }
    if dialects.openinference {
        openinference_derived(&get, operation, &mut add);
    }
    span.attributes.extend(added);
}

/// OpenInference's keys that combine a span's keys: the token total, and
/// on chat spans `llm.system`/`llm.provider` and `llm.invocation_parameters`.
fn openinference_derived(
    get: &impl Fn(&str) -> Option<Value>,
    operation: Option<&str>,
    add: &mut impl FnMut(&'static str, Value),
) {
    if let Some(Value::I64(input)) = get(gen_ai::USAGE_INPUT_TOKENS) {
        let output = match get(gen_ai::USAGE_OUTPUT_TOKENS) {
            Some(Value::I64(output)) => output,
            _ => 0,
        };
        add(
            openinference::LLM_TOKEN_COUNT_TOTAL,
            (input + output).into(),
        );
    }
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
mod tests {
    use std::borrow::Cow;
    use std::time::SystemTime;

    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};

    use super::*;

    fn span(attributes: Vec<KeyValue>) -> SpanData {
        SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: Cow::Borrowed("test"),
            start_time: SystemTime::UNIX_EPOCH,
            end_time: SystemTime::UNIX_EPOCH,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::builder("test").build(),
        }
    }

    fn translated(attributes: Vec<KeyValue>, dialects: Dialects) -> Vec<(String, Value)> {
        let mut span = span(attributes);
        let before = span.attributes.len();
        translate(&mut span, dialects);
        let mut added: Vec<(String, Value)> = span.attributes[before..]
            .iter()
            .map(|kv| (kv.key.to_string(), kv.value.clone()))
            .collect();
        added.sort_by(|a, b| a.0.cmp(&b.0));
        added
    }

    const ALL: Dialects = Dialects {
        confident: true,
        openinference: true,
    };

    #[test]
    fn every_key_a_rule_reads_is_looked_up() {
        for rule in RULES {
            assert!(
                SOURCE_KEYS.contains(&rule.from),
                "{} is not in SOURCE_KEYS",
                rule.from
            );
        }
    }

    #[test]
    fn a_chat_span_gets_each_dialects_keys() {
        let added = translated(
            vec![
                KeyValue::new(gen_ai::OPERATION_NAME, "chat"),
                KeyValue::new(gen_ai::PROVIDER_NAME, "azure.ai.openai"),
                KeyValue::new(gen_ai::REQUEST_MODEL, "gpt-4o"),
                KeyValue::new(gen_ai::REQUEST_TEMPERATURE, 0.5),
                KeyValue::new(gen_ai::REQUEST_MAX_TOKENS, 256),
                KeyValue::new(gen_ai::USAGE_INPUT_TOKENS, 10),
                KeyValue::new(gen_ai::USAGE_OUTPUT_TOKENS, 5),
            ],
            ALL,
        );
        let get = |key: &str| {
            added
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no {key} in {added:?}"))
        };
        assert_eq!(get(confident::SPAN_TYPE), "llm".into());
        assert_eq!(get(confident::LLM_MODEL), "gpt-4o".into());
        assert_eq!(get(confident::LLM_INPUT_TOKEN_COUNT), 10.into());
        assert_eq!(get(openinference::SPAN_KIND), "LLM".into());
        assert_eq!(get(openinference::LLM_SYSTEM), "openai".into());
        assert_eq!(get(openinference::LLM_PROVIDER), "azure".into());
        assert_eq!(get(openinference::LLM_TOKEN_COUNT_TOTAL), 15.into());
        assert_eq!(
            get(openinference::LLM_INVOCATION_PARAMETERS),
            r#"{"max_tokens":256,"temperature":0.5}"#.into()
        );
    }

    #[test]
    fn rules_apply_only_to_their_operation_and_dialect() {
        // `gen_ai.request.top_k` on a tool span is not a retriever's top_k.
        let tool = translated(
            vec![
                KeyValue::new(gen_ai::OPERATION_NAME, "execute_tool"),
                KeyValue::new(gen_ai::REQUEST_TOP_K, 4),
            ],
            ALL,
        );
        assert!(
            !tool.iter().any(|(k, _)| k == confident::RETRIEVER_TOP_K),
            "{tool:?}"
        );
        // Confident only: no OpenInference key; an embeddings span has no
        // Confident type.
        let confident_only = Dialects {
            confident: true,
            openinference: false,
        };
        let embeddings = translated(
            vec![
                KeyValue::new(gen_ai::OPERATION_NAME, "embeddings"),
                KeyValue::new(gen_ai::REQUEST_MODEL, "m"),
            ],
            confident_only,
        );
        assert!(embeddings.is_empty(), "{embeddings:?}");
    }

    #[test]
    fn a_span_of_no_genai_operation_is_a_chain_and_genai_alone_adds_nothing() {
        let http = vec![KeyValue::new("http.request.method", "POST")];
        let added = translated(http.clone(), ALL);
        assert_eq!(
            added,
            vec![(openinference::SPAN_KIND.to_owned(), "CHAIN".into())]
        );
        let genai = Dialects {
            confident: false,
            openinference: false,
        };
        assert!(translated(http, genai).is_empty());
    }
}
