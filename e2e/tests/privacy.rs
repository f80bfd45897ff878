//! No personal data reaches a backend, through any dialect, key or path.
//!
//! Content capture is on and every dialect is switched on. Personal data is
//! planted in the three places content comes from: the user's question, a
//! corpus document, and the model's answer (the fake OpenAI server's reply
//! and the offline generator, which quotes the corpus). Then `/chat`,
//! `/chat/stream` and failing requests run through the real services.
//!
//! The sweep reads every string the receiver got, on every span of every
//! trace, start-up and ingest included: span names, attribute values (arrays
//! and JSON inside them too), status messages, events and links. It knows no
//! key names, so a key added later is covered as it is. No raw value may
//! appear; the redactor's placeholders must. The services' log lines are
//! swept the same way.

mod support;

use ragtrace::receiver::SpanRecord;
use serde_json::{Value, json};
use support::TestPipeline;
use testkit::fake_openai::{FakeOpenAi, FakeOpenAiConfig, Fault};

const QUERY: &str =
    "What does the traceparent header carry? Mail jane.doe@example.com or call +1 (415) 555-0132";
const CORPUS_DOC: &str = "# The traceparent header\n\n\
    The traceparent header carries the trace id, the parent span id and the trace flags. \
    Its maintainer is reachable at maint.ainer@corp-example.org or +44 20 7946 0958, \
    and paid with card 4111 1111 1111 1111 using key sk-proj-abcdef1234567890XYZ.\n";
const ANSWER: &str = "Per [1], the traceparent header carries the trace id. Ask answer.person@mail-example.net \
     or phone 020 7946 0999.";
/// A provider error that quotes the user's message back, as some do.
const PROVIDER_ERROR: &str =
    "Content policy: the message from jane.doe@example.com (+1 (415) 555-0132) was rejected";

/// Each planted value, and pieces of it that must not survive either.
const RAW: &[&str] = &[
    "jane.doe@example.com",
    "jane.doe",
    "555-0132",
    "maint.ainer@corp-example.org",
    "maint.ainer",
    "7946 0958",
    "4111 1111 1111 1111",
    "sk-proj-abcdef1234567890XYZ",
    "answer.person@mail-example.net",
    "answer.person",
    "7946 0999",
];

/// Every string in a JSON value, JSON-encoded strings unpacked too.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            if let Ok(inner @ (Value::Array(_) | Value::Object(_))) = serde_json::from_str(s) {
                strings(&inner, out);
            }
            out.push(s.clone());
        }
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Every string a backend receives of `span`, with where it was.
fn span_strings(span: &SpanRecord) -> Vec<(String, String)> {
    let mut found = vec![
        ("name".to_owned(), span.name.clone()),
        ("status".to_owned(), span.status.message.clone()),
    ];
    let mut add = |place: String, value: &Value| {
        let mut out = Vec::new();
        strings(value, &mut out);
        found.extend(out.into_iter().map(|s| (place.clone(), s)));
    };
    for (key, value) in &span.attributes {
        add(key.clone(), value);
    }
    for event in &span.events {
        add(
            format!("event {}", event.name),
            &Value::String(event.name.clone()),
        );
        for (key, value) in &event.attributes {
            add(format!("event {} {key}", event.name), value);
        }
    }
    for link in &span.links {
        for (key, value) in &link.attributes {
            add(format!("link {key}"), value);
        }
    }
    found
}

/// Fails with every raw value found, on which span and key.
fn assert_no_raw_values(spans: &[SpanRecord]) {
    let leaks: Vec<String> = spans
        .iter()
        .flat_map(|span| {
            span_strings(span)
                .into_iter()
                .filter_map(move |(place, text)| {
                    RAW.iter().find(|raw| text.contains(*raw)).map(|raw| {
                        format!(
                            "{}/{} {place}: {raw:?} in {text:?}",
                            span.service_name, span.name
                        )
                    })
                })
        })
        .collect();
    assert!(
        leaks.is_empty(),
        "raw personal data exported:\n{}",
        leaks.join("\n")
    );
}

fn assert_no_raw_logs(app: &TestPipeline) {
    let logs = app.logs.lock().unwrap();
    let leaks: Vec<&String> = logs
        .iter()
        .filter(|line| RAW.iter().any(|raw| line.contains(raw)))
        .collect();
    assert!(leaks.is_empty(), "raw personal data logged:\n{leaks:#?}");
}

/// Whether a string of the span `service`/`name` contains `placeholder`.
fn placeholder_on(spans: &[SpanRecord], service: &str, name: &str, placeholder: &str) -> bool {
    spans
        .iter()
        .filter(|s| s.service_name == service && s.name == name)
        .flat_map(span_strings)
        .any(|(_, text)| text.contains(placeholder))
}

/// A corpus folder holding the one document, removed when dropped.
struct Corpus(std::path::PathBuf);

impl Corpus {
    fn new(name: &str) -> Corpus {
        let dir = std::env::temp_dir().join(format!("ragtrace-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join("traceparent.md"), CORPUS_DOC).expect("write corpus");
        Corpus(dir)
    }

    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for Corpus {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start(corpus: &Corpus, extra: &[(&str, String)]) -> TestPipeline {
    let mut env: Vec<(&str, String)> = vec![
        (
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
            "SPAN_ONLY".into(),
        ),
        (
            "RAGTRACE_SPAN_DIALECTS",
            "genai,confident,openinference".into(),
        ),
        ("CORPUS_DIR", corpus.path().display().to_string()),
        ("LOG_FORMAT", "json".into()),
        ("RUST_LOG", "debug".into()),
    ];
    env.extend(extra.iter().cloned());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestPipeline::start(&env).await
}

/// One `/chat` and one `/chat/stream`; returns their trace ids.
async fn chat_both_ways(app: &TestPipeline) -> [String; 2] {
    let body = json!({"query": QUERY, "user_id": "u-1", "session_id": "s-1"});
    let (status, answer) = app.chat(body.clone(), &[]).await;
    assert_eq!(status, 200, "{answer}");
    let streamed = app.stream_chat(body).await;
    assert_eq!(streamed.status, 200);
    let Some(shared::wire::StreamEvent::Done(done)) = streamed.events.last() else {
        panic!("stream did not end with done: {:?}", streamed.events.last());
    };
    [
        answer["trace_id"].as_str().unwrap().to_owned(),
        done.trace_id.clone().expect("trace id in done"),
    ]
}

#[actix_web::test]
async fn offline_pipeline_exports_and_logs_no_personal_data() {
    let corpus = Corpus::new("privacy-offline");
    let app = start(&corpus, &[]).await;
    let traces = chat_both_ways(&app).await;
    // Bad input carrying personal data: refused, and the refusal is traced.
    let (status, body) = app.chat(json!({"query": QUERY, "top_k": 0}), &[]).await;
    assert_eq!(status, 422, "{body}");
    let refused = body["trace_id"].as_str().unwrap().to_owned();

    for trace in &traces {
        let spans = app.trace(trace, support::SPANS_PER_CHAT).await;
        // The question (agent and root spans) and the corpus (retrieval)
        // arrive redacted; the offline answer quotes the corpus, redacted.
        assert!(placeholder_on(
            &spans,
            "gateway",
            "invoke_agent ragtrace",
            "[EMAIL]"
        ));
        assert!(placeholder_on(
            &spans,
            "gateway",
            "invoke_agent ragtrace",
            "[PHONE]"
        ));
        assert!(placeholder_on(
            &spans,
            "retrieval",
            "retrieval ragtrace",
            "[EMAIL]"
        ));
        assert!(placeholder_on(
            &spans,
            "retrieval",
            "retrieval ragtrace",
            "[CARD]"
        ));
        assert!(placeholder_on(
            &spans,
            "retrieval",
            "retrieval ragtrace",
            "[SECRET]"
        ));
        assert!(placeholder_on(
            &spans,
            "llm-service",
            "chat ragtrace-extractive-v1",
            "[EMAIL]"
        ));
    }
    app.trace(&refused, 1).await;
    let all = app.receiver.store.all();
    assert!(
        all.iter().any(|s| s.name.starts_with("ingest")),
        "ingest spans swept too"
    );
    assert_no_raw_values(&all);
    assert_no_raw_logs(&app);
}

/// Over the MCP hop, the tool's arguments (the question) and its result
/// (the passages) are content: redacted on both ends of the call.
#[actix_web::test]
async fn mcp_tool_arguments_and_results_export_and_log_no_personal_data() {
    let corpus = Corpus::new("privacy-mcp");
    let app = start(&corpus, &[("RETRIEVAL_PROTOCOL", "mcp".into())]).await;
    for trace in &chat_both_ways(&app).await {
        let spans = app.trace(trace, support::SPANS_PER_CHAT).await;
        for (service, placeholder) in [("query-processor", "[EMAIL]"), ("retrieval", "[CARD]")] {
            assert!(
                placeholder_on(&spans, service, "tools/call search_documents", placeholder),
                "{service}: {placeholder}"
            );
        }
    }
    assert_no_raw_values(&app.receiver.store.all());
    assert_no_raw_logs(&app);
}

#[actix_web::test]
async fn hosted_model_answers_and_errors_export_and_log_no_personal_data() {
    let fake = FakeOpenAi::start_with(FakeOpenAiConfig {
        reply: Some(ANSWER.into()),
        ..Default::default()
    });
    let corpus = Corpus::new("privacy-hosted");
    let app = start(
        &corpus,
        &[
            ("LLM_BASE_URL", fake.base_url()),
            ("LLM_MODEL", "gpt-4o-mini".into()),
            ("LLM_API_KEY", "sk-test-key-0123456789".into()),
            ("EMBEDDINGS_BASE_URL", fake.base_url()),
            ("EMBEDDINGS_MODEL", "text-embedding-3-small".into()),
            ("OPENAI_API_KEY", "sk-test-key-0123456789".into()),
        ],
    )
    .await;
    let traces = chat_both_ways(&app).await;
    for trace in &traces {
        let spans = app.trace(trace, support::SPANS_PER_CHAT).await;
        // The model's answer arrives redacted on the chat span.
        assert!(placeholder_on(
            &spans,
            "llm-service",
            "chat gpt-4o-mini",
            "[EMAIL]"
        ));
        assert!(placeholder_on(
            &spans,
            "llm-service",
            "chat gpt-4o-mini",
            "[PHONE]"
        ));
        assert!(placeholder_on(
            &spans,
            "retrieval",
            "embeddings text-embedding-3-small",
            "[EMAIL]"
        ));
    }

    // The provider fails with a message that quotes the user, plain and
    // streamed: the error spans and logs carry it redacted.
    let provider_error = || Fault::Status {
        status: 400,
        error_type: "invalid_request_error".into(),
        code: Some("content_policy_violation".into()),
        message: PROVIDER_ERROR.into(),
    };
    let mut failed = Vec::new();
    for stream in [false, true] {
        // Retrieval embeds first: the fault must meet the chat completion.
        let before = fake.requests().len();
        fake.push_fault(Fault::Delay(std::time::Duration::ZERO));
        fake.push_fault(provider_error());
        let body = json!({"query": QUERY});
        let trace_id = if stream {
            let streamed = app.stream_chat(body).await;
            let Some(shared::wire::StreamEvent::Error(error)) = streamed.events.last() else {
                panic!("stream did not fail: {:?}", streamed.events);
            };
            assert_no_raw_body(&format!("{error:?}"));
            error.trace_id.clone()
        } else {
            let (status, body) = app.chat(body, &[]).await;
            assert!(status >= 400, "{status} {body}");
            assert_no_raw_body(&body.to_string());
            body["trace_id"].as_str().unwrap().to_owned()
        };
        assert_eq!(
            fake.requests().len(),
            before + 2,
            "embeddings, then the failing chat"
        );
        failed.push(trace_id);
    }
    for trace in &failed {
        let spans = app.trace(trace, support::SPANS_UNEVALUATED).await;
        let chat = spans
            .iter()
            .find(|s| s.service_name == "llm-service" && s.name == "chat gpt-4o-mini")
            .expect("chat span");
        assert!(chat.is_error(), "{chat:?}");
        assert!(
            span_strings(chat)
                .iter()
                .any(|(_, t)| t.contains("[EMAIL]")),
            "the provider's message is kept, redacted: {chat:?}"
        );
    }
    // Nor does the body of the hop the provider failed at.
    fake.push_fault(provider_error());
    let generate = json!({"query": QUERY, "contexts": []}).to_string();
    let (status, body) = app
        .post(
            ragtrace::launcher::Service::LlmService,
            "/generate",
            &generate,
            &[],
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_no_raw_body(&body.to_string());

    let all = app.receiver.store.all();
    assert_no_raw_values(&all);
    assert_no_raw_logs(&app);
}

/// An error body, at any hop, holds no planted value.
fn assert_no_raw_body(body: &str) {
    let leaks: Vec<&&str> = RAW.iter().filter(|raw| body.contains(*raw)).collect();
    assert!(
        leaks.is_empty(),
        "raw personal data in an error body: {leaks:?} in {body}"
    );
}
