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
    futureagi: true,
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
            KeyValue::new(cost::INPUT, 0.000_025),
            KeyValue::new(cost::OUTPUT, 0.000_05),
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
    // $2.50 and $10 per million tokens.
    let per_token = |key| match get(key) {
        Value::F64(v) => v,
        other => panic!("{key} = {other:?}"),
    };
    assert!((per_token(confident::LLM_COST_PER_INPUT_TOKEN) - 2.5e-6).abs() < 1e-15);
    assert!((per_token(confident::LLM_COST_PER_OUTPUT_TOKEN) - 1e-5).abs() < 1e-15);
    assert_eq!(get(openinference::SPAN_KIND), "LLM".into());
    assert_eq!(get(openinference::LLM_SYSTEM), "openai".into());
    assert_eq!(get(openinference::LLM_PROVIDER), "azure".into());
    assert_eq!(get(openinference::LLM_TOKEN_COUNT_TOTAL), 15.into());
    assert_eq!(get(futureagi::SPAN_KIND), "LLM".into());
    assert_eq!(get(futureagi::USAGE_TOTAL_TOKENS), 15.into());
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
        ..Dialects::GENAI
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
        vec![
            (futureagi::SPAN_KIND.to_owned(), "CHAIN".into()),
            (openinference::SPAN_KIND.to_owned(), "CHAIN".into()),
        ]
    );
    assert!(translated(http, Dialects::GENAI).is_empty());
}

#[test]
fn futureagi_kinds_agent_graph_and_retrieval_top_k() {
    let futureagi = Dialects {
        futureagi: true,
        ..Dialects::GENAI
    };
    let agent = translated(
        vec![
            KeyValue::new(gen_ai::OPERATION_NAME, "invoke_agent"),
            KeyValue::new(gen_ai::AGENT_NAME, "ragtrace"),
        ],
        futureagi,
    );
    assert_eq!(
        agent,
        vec![
            (futureagi::SPAN_KIND.to_owned(), "AGENT".into()),
            (futureagi::AGENT_GRAPH_NODE_ID.to_owned(), "ragtrace".into()),
            (
                futureagi::AGENT_GRAPH_NODE_NAME.to_owned(),
                "ragtrace".into()
            ),
        ]
    );
    let retrieval = translated(
        vec![
            KeyValue::new(gen_ai::OPERATION_NAME, "retrieval"),
            KeyValue::new(gen_ai::REQUEST_TOP_K, 4),
        ],
        futureagi,
    );
    assert_eq!(
        retrieval,
        vec![
            (futureagi::SPAN_KIND.to_owned(), "RETRIEVER".into()),
            (futureagi::RETRIEVAL_TOP_K.to_owned(), 4.into()),
        ]
    );
}

#[test]
fn an_evaluation_span_is_an_evaluator_and_no_confident_type() {
    let added = translated(
        vec![KeyValue::new(gen_ai::EVALUATION_NAME, "groundedness")],
        ALL,
    );
    assert_eq!(
        added,
        vec![
            (futureagi::SPAN_KIND.to_owned(), "EVALUATOR".into()),
            (openinference::SPAN_KIND.to_owned(), "EVALUATOR".into()),
        ]
    );
}
