//! End to end, through real interfaces: the four service binaries on loopback
//! ports, real HTTP between them, real OTLP/HTTP protobuf from their exporters
//! into a receiver in this test. Every assertion is on what arrived.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use ragtrace::launcher::Service;
use ragtrace::receiver::{SpanKind, SpanRecord, StatusCode};
use serde_json::{Value, json};
use support::{TestPipeline, is_trace_id, span};

use support::SPANS_PER_CHAT;

const QUESTION: &str = "What does the traceparent header contain?";
const EMBEDDER: &str = "ragtrace-hashing-384";
const MODEL: &str = "ragtrace-extractive-v1";
const CONTENT_KEYS: [&str; 7] = [
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "confident.trace.input",
    "confident.trace.output",
    "confident.span.input",
    "confident.span.output",
    "confident.span.retrieval_context",
];

use support::{Backend, ChatTree, entry_spans};

fn assert_chat_tree<'a>(spans: &'a [SpanRecord], response: &Value) -> ChatTree<'a> {
    support::assert_chat_tree_with(spans, response, &Backend::EMBEDDED)
}

fn assert_answer(status: u16, body: &Value) {
    assert_eq!(status, 200, "{body}");
    assert!(is_trace_id(&body["trace_id"]), "{body}");
    assert_eq!(body["model"], MODEL);
    let contexts = body["contexts"].as_array().unwrap();
    assert_eq!(contexts.len(), 4);
    assert_eq!(contexts[0]["source"], "w3c-traceparent-header.md");
    assert!(
        contexts[0]["id"]
            .as_str()
            .unwrap()
            .starts_with("w3c-traceparent-header.md#")
    );
    let answer = body["answer"].as_str().unwrap();
    assert!(
        answer.contains("trace-id") && answer.contains("[1]"),
        "{answer}"
    );
    assert!(
        answer.contains("Sources: [1] w3c-traceparent-header.md"),
        "{answer}"
    );
}

#[actix_web::test]
async fn one_chat_is_one_trace_tree_across_four_services() {
    let app = TestPipeline::start(&[]).await;
    let (status, body) = app
        .chat(
            json!({"query": QUESTION, "user_id": "u-42", "session_id": "s-7", "tags": ["e2e", "docs"]}),
            &[],
        )
        .await;
    assert_answer(status, &body);
    assert!(
        body.get("trace_url").is_none(),
        "no TRACE_UI_URL, no link: {body}"
    );
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT)
        .await;
    let tree = assert_chat_tree(&spans, &body);

    // The gateway started the trace.
    assert_eq!(tree.gateway_server.parent_span_id, None);
    // Trace-level keys on the agent span, from the body.
    assert_eq!(tree.agent.attr_str("confident.trace.user_id"), Some("u-42"));
    assert_eq!(
        tree.agent.attr_str("confident.trace.thread_id"),
        Some("s-7")
    );
    assert_eq!(tree.agent.attr_str("gen_ai.conversation.id"), Some("s-7"));
    assert_eq!(
        tree.agent.attributes["confident.trace.tags"],
        json!(["e2e", "docs"])
    );
    // user_id / session_id travelled as baggage and were recorded downstream.
    for server in [tree.retrieval_server, tree.llm_server] {
        assert_eq!(
            server.attr_str("user.id"),
            Some("u-42"),
            "{}",
            server.service_name
        );
        assert_eq!(
            server.attr_str("session.id"),
            Some("s-7"),
            "{}",
            server.service_name
        );
    }
    // Content capture is off by default: no prompt, chunk or answer anywhere.
    for span in &spans {
        for key in CONTENT_KEYS {
            assert!(!span.attributes.contains_key(key), "{key} on {}", span.name);
        }
    }
    app.assert_no_panics();
}

#[actix_web::test]
async fn a_callers_traceparent_tracestate_and_baggage_are_continued() {
    let app = TestPipeline::start(&[]).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{caller_span}-01");
    let (status, body) = app
        .chat(
            json!({"query": QUESTION}),
            &[
                ("traceparent", &traceparent),
                ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
                ("baggage", "user_id=alice,tenant=acme"),
            ],
        )
        .await;
    assert_answer(status, &body);
    assert_eq!(
        body["trace_id"], trace_id,
        "the response names the caller's trace"
    );

    let spans = app.trace(trace_id, SPANS_PER_CHAT).await;
    let tree = assert_chat_tree(&spans, &body);
    assert_eq!(
        tree.gateway_server.parent_span_id.as_deref(),
        Some(caller_span)
    );
    // tracestate crossed every hop: each service's spans carry it.
    for span in &spans {
        assert_eq!(
            span.trace_state, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
            "{}/{}",
            span.service_name, span.name
        );
    }
    // The caller's baggage reached the last hop; unknown keys are forwarded
    // but never recorded.
    for server in [tree.gateway_server, tree.retrieval_server, tree.llm_server] {
        assert_eq!(
            server.attr_str("user.id"),
            Some("alice"),
            "{}",
            server.service_name
        );
    }
    assert!(
        spans
            .iter()
            .all(|s| s.attributes.values().all(|v| v != "acme"))
    );
}

#[actix_web::test]
async fn content_is_recorded_only_when_capture_is_enabled() {
    let app = TestPipeline::start(&[(
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        "SPAN_ONLY",
    )])
    .await;
    let (status, body) = app.chat(json!({"query": QUESTION}), &[]).await;
    assert_answer(status, &body);
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT)
        .await;
    let tree = assert_chat_tree(&spans, &body);
    assert_eq!(tree.agent.attr_str("confident.trace.input"), Some(QUESTION));
    assert_eq!(
        tree.agent.attr_str("confident.trace.output"),
        body["answer"].as_str()
    );
    let chunks: Vec<&str> = body["contexts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        tree.retrieval.attributes["confident.span.retrieval_context"],
        json!(chunks)
    );
    assert_eq!(
        tree.chat.attr_str("confident.span.output"),
        body["answer"].as_str()
    );

    // The GenAI content keys, in the conventions' message schema.
    let input: Value =
        serde_json::from_str(tree.chat.attr_str("gen_ai.input.messages").unwrap()).unwrap();
    assert_eq!(input[0]["role"], "user");
    assert_eq!(input[0]["parts"][0]["type"], "text");
    assert!(
        input[0]["parts"][0]["content"]
            .as_str()
            .unwrap()
            .contains(QUESTION)
    );
    let output: Value =
        serde_json::from_str(tree.chat.attr_str("gen_ai.output.messages").unwrap()).unwrap();
    assert_eq!(output[0]["role"], "assistant");
    assert_eq!(output[0]["parts"][0]["content"], body["answer"]);
    assert_eq!(output[0]["finish_reason"], "stop");

    // Captured content is redacted before it is recorded: nothing personal
    // or secret leaves the process, on any span of the trace.
    let secrets = [
        "alice.smith@example.com",
        "4111 1111 1111 1111",
        "sk-live-4f9a2c7e1b8d3e6f",
        "+1 (415) 555-0132",
    ];
    let query = format!(
        "I am {} (card {}, phone {}), my key is {}: what is a span?",
        secrets[0], secrets[1], secrets[3], secrets[2]
    );
    let (status, body) = app.chat(json!({"query": query}), &[]).await;
    assert_eq!(status, 200, "{body}");
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT)
        .await;
    let agent = span(&spans, "gateway", "invoke_agent ragtrace");
    assert_eq!(
        agent.attr_str("confident.trace.input"),
        Some("I am [EMAIL] (card [CARD], phone [PHONE]), my key is [SECRET]: what is a span?")
    );
    let exported = serde_json::to_string(&spans).unwrap();
    for secret in secrets {
        assert!(!exported.contains(secret), "{secret} was exported");
    }
}

/// (service, path, content type, body, status, error code)
type BadInput = (
    Service,
    &'static str,
    &'static str,
    String,
    u16,
    &'static str,
);

#[actix_web::test]
async fn bad_input_gets_a_4xx_with_the_error_body_and_a_span_saying_why() {
    let app = TestPipeline::start(&[]).await;
    let json = "application/json";
    let cases: Vec<BadInput> = vec![
        (Service::Gateway, "/chat", json, r#"{"query": ""}"#.into(), 422, "invalid_query"),
        (Service::Gateway, "/chat", json, r#"{"query": "   "}"#.into(), 422, "invalid_query"),
        (Service::Gateway, "/chat", json, r#"{}"#.into(), 422, "invalid_request"),
        (Service::Gateway, "/chat", json, r#"{"query": 5}"#.into(), 422, "invalid_request"),
        (Service::Gateway, "/chat", json, r#"{"query": "x", "topk": 3}"#.into(), 422, "invalid_request"),
        (Service::Gateway, "/chat", json, r#"{"query": "x", "top_k": 0}"#.into(), 422, "invalid_top_k"),
        (Service::Gateway, "/chat", json, r#"{"query": "x", "top_k": 21}"#.into(), 422, "invalid_top_k"),
        (Service::Gateway, "/chat", json, r#"{"query": "x", "top_k": -1}"#.into(), 422, "invalid_request"),
        (Service::Gateway, "/chat", json, r#"{"query": "x", "tags": "a"}"#.into(), 422, "invalid_request"),
        (Service::Gateway, "/chat", json, r#"{"query": "x", "user_id": ""}"#.into(), 422, "invalid_id"),
        (Service::Gateway, "/chat", json, r#"{"query": "#.into(), 400, "malformed_json"),
        (Service::Gateway, "/chat", json, r#"{"query": "x"} trailing"#.into(), 400, "malformed_json"),
        (Service::Gateway, "/chat", json, "\u{1}".into(), 400, "malformed_json"),
        (Service::Gateway, "/chat", json, r#"["What is a span?"]"#.into(), 422, "invalid_request"),
        (Service::Gateway, "/chat", json, "".into(), 400, "malformed_json"),
        (Service::Gateway, "/chat", "text/plain", r#"{"query": "x"}"#.into(), 415, "unsupported_media_type"),
        (Service::Gateway, "/chat", json, format!(r#"{{"query": "{}"}}"#, "a".repeat(4001)), 422, "invalid_query"),
        (Service::Gateway, "/chat", json, format!(r#"{{"query": "{}"}}"#, "a".repeat(300 * 1024)), 413, "payload_too_large"),
        (Service::Gateway, "/nope", json, "{}".into(), 404, "not_found"),
        (Service::QueryProcessor, "/process", json, r#"{"query": "\u0007 "}"#.into(), 422, "invalid_query"),
        (Service::Retrieval, "/retrieve", json, r#"{"query": "x", "top_k": 0}"#.into(), 422, "invalid_top_k"),
        (Service::Retrieval, "/retrieve", json, r#"{"query": "x"}"#.into(), 422, "invalid_request"),
        (
            Service::LlmService,
            "/generate",
            json,
            json!({"query": "x", "contexts": vec![json!({"id": "a", "source": "a", "text": "a", "score": 0.5}); 21]}).to_string(),
            422,
            "too_many_contexts",
        ),
    ];
    for (service, path, content_type, body, status, code) in cases {
        let mut response = app
            .client
            .post(format!("{}{path}", app.url(service)))
            .insert_header(("content-type", content_type))
            .send_body(body.clone())
            .await
            .expect("send");
        let what = format!("{} {path} {:.60}", service.name(), body);
        assert_eq!(response.status().as_u16(), status, "{what}");
        let error: Value = response
            .json()
            .limit(1 << 20)
            .await
            .expect("JSON error body");
        assert_eq!(error["error"], code, "{what}: {error}");
        assert!(!error["message"].as_str().unwrap().is_empty(), "{what}");
        assert!(is_trace_id(&error["trace_id"]), "{what}: {error}");

        // The rejection is in the trace: a SERVER span with the status and
        // the machine code as `error.type`.
        let spans = app.trace(error["trace_id"].as_str().unwrap(), 1).await;
        let server = spans
            .iter()
            .find(|s| s.kind == SpanKind::Server && s.service_name == service.name())
            .unwrap_or_else(|| panic!("{what}: no server span"));
        assert_eq!(
            server.attr_i64("http.response.status_code"),
            Some(status as i64),
            "{what}"
        );
        assert_eq!(server.attr_str("error.type"), Some(code), "{what}");
        // 4xx is the caller's fault: the SERVER span is not an error.
        assert_ne!(server.status.code, StatusCode::Error, "{what}");
        // The warning logged for it is a JSON line naming the same trace and span.
        let trace_id = error["trace_id"].as_str().unwrap();
        let logs = app.logs.lock().unwrap().clone();
        let line = logs
            .iter()
            .filter_map(|l| l.split_once("] ").map(|(_, json)| json))
            .filter_map(|json| serde_json::from_str::<Value>(json).ok())
            .find(|l| l["trace_id"] == trace_id)
            .unwrap_or_else(|| panic!("{what}: no log line with trace_id {trace_id}"));
        assert_eq!(line["level"], "WARN", "{line}");
        assert_eq!(line["span_id"], server.span_id.as_str(), "{line}");
        assert_eq!(line["fields"]["error"], code, "{line}");
    }
    // Wrong method: 405 with the same body.
    let mut response = app
        .client
        .get(format!("{}/chat", app.url(Service::Gateway)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "method_not_allowed");

    // Nothing broke: every service still serves.
    let (status, body) = app.chat(json!({"query": QUESTION}), &[]).await;
    assert_answer(status, &body);
    app.assert_no_panics();
}

#[actix_web::test]
async fn a_stopped_service_gives_a_503_and_an_error_span_naming_the_hop() {
    let mut app = TestPipeline::start(&[]).await;
    let status = app
        .pipeline
        .stop(Service::LlmService, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        status.success(),
        "llm-service exits cleanly on SIGTERM: {status}"
    );

    let (status, body) = app.chat(json!({"query": QUESTION}), &[]).await;
    // A dead hop is transient from the caller's view: 503, the same code at
    // every hop, and the hop named only in the trace.
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "service_unavailable");
    let message = body["message"].as_str().unwrap();
    assert!(!message.contains("llm-service"), "{message}");
    assert!(is_trace_id(&body["trace_id"]));

    // gateway 3 + query-processor 4 + retrieval 4; llm-service recorded nothing.
    let spans = app.trace(body["trace_id"].as_str().unwrap(), 11).await;
    let call = span(&spans, "query-processor", "POST /generate");
    assert_eq!(call.status.code, StatusCode::Error);
    assert_eq!(call.attr_str("error.type"), Some("service_unavailable"));
    assert!(
        call.status.message.contains("llm-service"),
        "{:?}",
        call.status
    );
    let exception = call
        .events
        .iter()
        .find(|e| e.name == "exception")
        .expect("exception event");
    assert_eq!(
        exception.attributes["exception.type"],
        "service_unavailable"
    );
    for (service, name) in [
        ("query-processor", "POST /process"),
        ("gateway", "POST /chat"),
    ] {
        let server = span(&spans, service, name);
        assert_eq!(server.status.code, StatusCode::Error, "{service}");
        assert_eq!(
            server.attr_i64("http.response.status_code"),
            Some(503),
            "{service}"
        );
        assert!(
            server.status.message.contains("llm-service"),
            "{service}: {:?}",
            server.status
        );
    }
    assert_eq!(entry_spans(&spans).len(), 1);

    // And one hop up: query-processor gone.
    app.pipeline
        .stop(Service::QueryProcessor, Duration::from_secs(10))
        .await
        .unwrap();
    let (status, body) = app.chat(json!({"query": QUESTION}), &[]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "service_unavailable");
}

#[actix_web::test]
async fn a_hung_service_gives_a_504_within_the_timeout_not_a_hang() {
    // A listener that accepts connections (the kernel completes the
    // handshake) but never answers.
    let hung = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung_url = format!("http://{}", hung.local_addr().unwrap());
    let app = TestPipeline::start_with(
        &[
            ("LLM_SERVICE_URL", &hung_url),
            ("LLM_SERVICE_TIMEOUT_MS", "700"),
        ],
        false,
    )
    .await;
    // query-processor knows it is not ready: its readiness probe times out.
    let mut readyz = app
        .client
        .get(format!("{}/readyz", app.url(Service::QueryProcessor)))
        .send()
        .await
        .unwrap();
    assert_eq!(readyz.status().as_u16(), 503);
    let not_ready: Value = readyz.json().await.unwrap();
    assert_eq!(not_ready["error"], "not_ready");
    assert!(
        not_ready["message"]
            .as_str()
            .unwrap()
            .contains("llm-service"),
        "{not_ready}"
    );

    let started = std::time::Instant::now();
    let (status, body) = app.chat(json!({"query": QUESTION}), &[]).await;
    assert_eq!(status, 504, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(body["error"], "timeout");
    assert!(
        !body["message"].as_str().unwrap().contains("llm-service"),
        "{body}"
    );

    let spans = app.trace(body["trace_id"].as_str().unwrap(), 11).await;
    let call = span(&spans, "query-processor", "POST /generate");
    assert_eq!(call.status.code, StatusCode::Error);
    assert_eq!(call.attr_str("error.type"), Some("timeout"));
    drop(hung);
}

/// The keys listed in docs/attributes.md (`{i}` placeholders kept as is).
fn documented_keys() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/attributes.md"
    ))
    .unwrap();
    doc.lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(key, _)| key.to_owned()))
        .collect()
}

/// `retrieval.documents.3.document.id` -> `retrieval.documents.{i}.document.id`.
fn key_pattern(key: &str) -> String {
    key.split('.')
        .map(|part| {
            if part.chars().all(|c| c.is_ascii_digit()) {
                "{i}"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[actix_web::test]
async fn every_dialect_classifies_every_span_and_every_key_is_documented() {
    let app = TestPipeline::start(&[
        (
            "RAGTRACE_SPAN_DIALECTS",
            "genai,confident,openinference,futureagi",
        ),
        (
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
            "SPAN_ONLY",
        ),
    ])
    .await;
    let (status, body) = app
        .chat(
            json!({"query": QUESTION, "user_id": "u-1", "session_id": "s-1", "tags": ["t"]}),
            &[],
        )
        .await;
    assert_answer(status, &body);
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT)
        .await;
    let tree = assert_chat_tree(&spans, &body);

    // OpenInference: Phoenix classifies every span.
    for span in &spans {
        assert!(
            span.attr_str("openinference.span.kind").is_some(),
            "{} has no kind",
            span.name
        );
    }
    let kind = |s: &SpanRecord| s.attr_str("openinference.span.kind").unwrap().to_owned();
    assert_eq!(kind(tree.agent), "AGENT");
    assert_eq!(kind(tree.retrieval), "RETRIEVER");
    assert_eq!(kind(tree.chat), "LLM");
    assert_eq!(kind(tree.gateway_server), "CHAIN");
    assert_eq!(
        kind(span(&spans, "retrieval", &format!("embeddings {EMBEDDER}"))),
        "EMBEDDING"
    );
    assert_eq!(
        kind(span(
            &spans,
            "query-processor",
            "execute_tool process_query"
        )),
        "TOOL"
    );
    // FutureAGI: the same kind as `fi.span.kind`, on every span; the
    // evaluations are EVALUATOR spans; the agent is its graph's node.
    for span in &spans {
        assert_eq!(
            span.attr_str("fi.span.kind"),
            span.attr_str("openinference.span.kind"),
            "{}",
            span.name
        );
        let evaluation = span.attr_str("gen_ai.evaluation.name").is_some();
        assert_eq!(kind(span) == "EVALUATOR", evaluation, "{}", span.name);
    }
    assert_eq!(
        tree.agent.attr_str("gen_ai.agent.graph.node_id"),
        tree.agent.attr_str("gen_ai.agent.name")
    );
    assert_eq!(
        tree.retrieval.attr_i64("gen_ai.retrieval.top_k"),
        tree.retrieval.attr_i64("gen_ai.request.top_k")
    );
    assert!(tree.retrieval.attr_i64("gen_ai.retrieval.top_k").is_some());

    let (input, output) = (
        body["usage"]["input_tokens"].as_i64().unwrap(),
        body["usage"]["output_tokens"].as_i64().unwrap(),
    );
    assert_eq!(
        tree.chat.attr_i64("gen_ai.usage.total_tokens"),
        Some(input + output)
    );
    assert_eq!(tree.chat.attr_i64("llm.token_count.prompt"), Some(input));
    assert_eq!(
        tree.chat.attr_i64("llm.token_count.completion"),
        Some(output)
    );
    assert_eq!(
        tree.chat.attr_i64("llm.token_count.total"),
        Some(input + output)
    );
    assert_eq!(tree.chat.attr_str("llm.model_name"), Some(MODEL));
    assert_eq!(tree.chat.attr_str("output.value"), body["answer"].as_str());
    assert_eq!(tree.agent.attr_str("input.value"), Some(QUESTION));
    assert_eq!(tree.agent.attr_str("session.id"), Some("s-1"));
    assert_eq!(tree.agent.attr_str("user.id"), Some("u-1"));
    assert_eq!(
        tree.retrieval.attr_str("retrieval.documents.0.document.id"),
        body["contexts"][0]["id"].as_str()
    );
    assert_eq!(
        tree.retrieval
            .attr_str("retrieval.documents.3.document.content"),
        body["contexts"][3]["text"].as_str()
    );

    // Every key on every span (this chat, plus an error path) is in the table.
    let (status, bad) = app.chat(json!({"query": ""}), &[]).await;
    assert_eq!(status, 422);
    let mut all = spans.clone();
    all.extend(app.trace(bad["trace_id"].as_str().unwrap(), 1).await);
    let documented = documented_keys();
    let mut undocumented = BTreeSet::new();
    for span in &all {
        for key in span.attributes.keys() {
            if !documented.contains(&key_pattern(key)) {
                undocumented.insert(format!("{key} (on {}/{})", span.service_name, span.name));
            }
        }
    }
    assert!(
        undocumented.is_empty(),
        "not in docs/attributes.md: {undocumented:#?}"
    );
}
