//! OpenInference as Phoenix and other OpenInference consumers read it.
//!
//! With the dialect and content capture on, every span the services emit,
//! start-up and ingest traces included, carries `openinference.span.kind`,
//! and each kind carries the keys the OpenInference semantic conventions
//! define for it, sent by us rather than guessed by a backend from
//! `gen_ai.*`. The root span carries the request's input, output, session
//! and user, because trace lists and session views read them from the root.

mod support;

use ragtrace::receiver::{SpanKind, SpanRecord};
use serde_json::json;
use support::{SPANS_PER_CHAT, TestPipeline};
use testkit::fake_openai::FakeOpenAi;

const QUESTION: &str = "What does the traceparent header contain?";

/// The keys each OpenInference kind must carry (with content capture on).
const LLM: &[&str] = &[
    "llm.model_name",
    "llm.system",
    "llm.provider",
    "llm.invocation_parameters",
    "llm.input_messages.0.message.role",
    "llm.input_messages.0.message.content",
    "llm.output_messages.0.message.role",
    "llm.output_messages.0.message.content",
    "llm.token_count.prompt",
    "llm.token_count.completion",
    "llm.token_count.total",
    "input.value",
    "output.value",
];
const EMBEDDING: &[&str] = &[
    "embedding.model_name",
    "embedding.embeddings.0.embedding.text",
    "llm.token_count.prompt",
    "llm.token_count.total",
];
const RETRIEVER: &[&str] = &[
    "input.value",
    "retrieval.documents.0.document.id",
    "retrieval.documents.0.document.content",
    "retrieval.documents.0.document.score",
];
const TOOL: &[&str] = &[
    "tool.name",
    "tool.description",
    "tool.parameters",
    "input.value",
    "output.value",
];
const AGENT: &[&str] = &[
    "agent.name",
    "input.value",
    "output.value",
    "session.id",
    "user.id",
];
/// OpenInference defines no keys of its own for an evaluator: the
/// conventions' result is on the span.
const EVALUATOR: &[&str] = &[
    "gen_ai.evaluation.name",
    "gen_ai.evaluation.score.value",
    "gen_ai.evaluation.score.label",
];
/// The root: the gateway's HTTP SERVER span.
const ROOT: &[&str] = &["input.value", "output.value", "session.id", "user.id"];
/// The gateway's CLIENT span to query-processor.
const GATEWAY_CLIENT: &[&str] = &["session.id", "user.id"];

fn kind(span: &SpanRecord) -> Option<&str> {
    span.attr_str("openinference.span.kind")
}

fn assert_keys(span: &SpanRecord, keys: &[&str], spans: &[SpanRecord]) {
    let missing: Vec<&&str> = keys
        .iter()
        .filter(|k| !span.attributes.contains_key(**k))
        .collect();
    assert!(
        missing.is_empty(),
        "{}/{} lacks {missing:?}; has {:?}\n{}",
        span.service_name,
        span.name,
        span.attributes.keys().collect::<Vec<_>>(),
        ragtrace::tree::render(spans)
    );
}

/// The key set of every span of one `/chat` trace, by kind.
fn assert_trace(spans: &[SpanRecord]) {
    let root = spans.iter().find(|s| s.is_root()).expect("a root span");
    assert_eq!(root.service_name, "gateway");
    assert_eq!(kind(root), Some("CHAIN"));
    assert_keys(root, ROOT, spans);
    let to_qp = spans
        .iter()
        .find(|s| s.service_name == "gateway" && s.kind == SpanKind::Client)
        .expect("gateway CLIENT span");
    assert_keys(to_qp, GATEWAY_CLIENT, spans);

    let mut seen = Vec::new();
    for span in spans {
        let Some(kind) = kind(span) else {
            panic!(
                "{}/{} has no openinference.span.kind",
                span.service_name, span.name
            );
        };
        let keys = match kind {
            "LLM" => LLM,
            "EMBEDDING" => EMBEDDING,
            "RETRIEVER" => RETRIEVER,
            "TOOL" => TOOL,
            "AGENT" => AGENT,
            "EVALUATOR" => EVALUATOR,
            "CHAIN" => &[],
            other => panic!("unexpected kind {other}"),
        };
        assert_keys(span, keys, spans);
        seen.push(kind);
    }
    for kind in [
        "LLM",
        "EMBEDDING",
        "RETRIEVER",
        "TOOL",
        "AGENT",
        "EVALUATOR",
        "CHAIN",
    ] {
        assert!(seen.contains(&kind), "no {kind} span in {seen:?}");
    }
}

#[actix_web::test]
async fn every_span_carries_its_kind_and_the_keys_of_that_kind() {
    let fake = FakeOpenAi::start();
    let app = TestPipeline::start(&[
        ("RAGTRACE_SPAN_DIALECTS", "genai,openinference"),
        (
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
            "SPAN_ONLY",
        ),
        ("LLM_BASE_URL", &fake.base_url()),
        ("LLM_MODEL", "gpt-4o-mini"),
        ("LLM_API_KEY", "sk-test-0123456789"),
        ("LLM_TEMPERATURE", "0.2"),
        ("EMBEDDINGS_BASE_URL", &fake.base_url()),
        ("EMBEDDINGS_MODEL", "text-embedding-3-small"),
        ("OPENAI_API_KEY", "sk-test-0123456789"),
    ])
    .await;
    let body = json!({"query": QUESTION, "user_id": "u-1", "session_id": "s-1"});

    let (status, answer) = app.chat(body.clone(), &[]).await;
    assert_eq!(status, 200, "{answer}");
    let spans = app
        .trace(answer["trace_id"].as_str().unwrap(), SPANS_PER_CHAT)
        .await;
    assert_trace(&spans);
    let root = spans.iter().find(|s| s.is_root()).unwrap();
    assert_eq!(root.attr_str("input.value"), Some(QUESTION));
    assert_eq!(root.attr_str("output.value"), answer["answer"].as_str());
    assert_eq!(root.attr_str("session.id"), Some("s-1"));
    assert_eq!(root.attr_str("user.id"), Some("u-1"));
    let chat = spans.iter().find(|s| kind(s) == Some("LLM")).unwrap();
    // The fake server is an OpenAI-compatible host OpenInference has no
    // name for: the `openai` system, on that provider.
    assert_eq!(chat.attr_str("llm.system"), Some("openai"));
    assert_eq!(chat.attr_str("llm.provider"), Some("openai_compatible"));
    assert_eq!(
        chat.attr_str("llm.input_messages.0.message.role"),
        Some("system")
    );
    assert_eq!(
        chat.attr_str("llm.input_messages.1.message.role"),
        Some("user")
    );
    let tool = spans.iter().find(|s| kind(s) == Some("TOOL")).unwrap();
    let schema: serde_json::Value =
        serde_json::from_str(tool.attr_str("tool.parameters").unwrap()).expect("JSON Schema");
    assert_eq!(schema["required"], json!(["query"]));

    let streamed = app.stream_chat(body).await;
    assert_eq!(streamed.status, 200);
    let Some(shared::wire::StreamEvent::Done(done)) = streamed.events.last() else {
        panic!("stream did not end with done");
    };
    let spans = app
        .trace(done.trace_id.as_deref().unwrap(), SPANS_PER_CHAT)
        .await;
    assert_trace(&spans);

    // Every span received, the start-up and ingest traces included.
    let all = app.receiver.store.all();
    assert!(all.iter().any(|s| s.name.starts_with("ingest")));
    let unkinded: Vec<String> = all
        .iter()
        .filter(|s| kind(s).is_none())
        .map(|s| format!("{}/{}", s.service_name, s.name))
        .collect();
    assert!(unkinded.is_empty(), "spans without a kind: {unkinded:?}");
}

#[actix_web::test]
async fn offline_model_is_its_own_llm_system() {
    let app = TestPipeline::start(&[
        ("RAGTRACE_SPAN_DIALECTS", "genai,openinference"),
        (
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
            "SPAN_ONLY",
        ),
    ])
    .await;
    let (status, answer) = app
        .chat(
            json!({"query": QUESTION, "user_id": "u-1", "session_id": "s-1"}),
            &[],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let spans = app
        .trace(answer["trace_id"].as_str().unwrap(), SPANS_PER_CHAT)
        .await;
    assert_trace(&spans);
    let chat = spans.iter().find(|s| kind(s) == Some("LLM")).unwrap();
    assert_eq!(chat.attr_str("llm.system"), Some("ragtrace"));
    assert_eq!(chat.attr_str("llm.provider"), Some("ragtrace"));
}
