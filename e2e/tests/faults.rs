//! Failure behaviour through real processes: an untrusted edge, the gateway
//! API key, injected faults, and a collector that is dead or never answers.

mod support;

use std::time::{Duration, Instant};

use ragtrace::launcher::Service;
use ragtrace::receiver::StatusCode;
use serde_json::json;
use support::{TestPipeline, is_trace_id, span};

const QUESTION: &str = "What does the traceparent header contain?";
const SPANS_PER_CHAT: usize = 16;

#[actix_web::test]
async fn an_untrusted_edge_starts_a_new_trace_linked_to_the_callers() {
    let app = TestPipeline::start(&[("GATEWAY_TRUST_INCOMING_CONTEXT", "false")]).await;
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let (status, body) = app
        .chat(
            json!({"query": QUESTION}),
            &[
                (
                    "traceparent",
                    &format!("00-{caller_trace}-{caller_span}-01"),
                ),
                ("tracestate", "evil=1"),
                ("baggage", "user_id=mallory"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let trace_id = body["trace_id"].as_str().unwrap();
    assert_ne!(
        trace_id, caller_trace,
        "the caller must not choose our trace id"
    );

    let spans = app.trace(trace_id, SPANS_PER_CHAT).await;
    let root = span(&spans, "gateway", "POST /chat");
    assert_eq!(root.parent_span_id, None);
    assert_eq!(
        root.links.len(),
        1,
        "the caller's context is kept as a link"
    );
    assert_eq!(root.links[0].trace_id, caller_trace);
    assert_eq!(root.links[0].span_id, caller_span);
    // Inbound baggage and tracestate were dropped at the edge.
    assert!(
        spans.iter().all(|s| s.attr_str("user.id").is_none()),
        "baggage leaked"
    );
    assert!(
        spans.iter().all(|s| s.trace_state.is_empty()),
        "tracestate leaked"
    );
    // The body's user id is ours to set, and still travels.
    let (_, body) = app
        .chat(json!({"query": QUESTION, "user_id": "u-9"}), &[])
        .await;
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT)
        .await;
    assert_eq!(
        span(&spans, "llm-service", "POST /generate").attr_str("user.id"),
        Some("u-9")
    );
}

#[actix_web::test]
async fn the_gateway_api_key_guards_chat_and_never_leaks() {
    let key = "gw-key-7c1e9a44d2b0";
    let app = TestPipeline::start(&[("GATEWAY_API_KEY", key)]).await;
    let body = json!({"query": QUESTION}).to_string();
    let bearer = format!("Bearer {key}");
    for (headers, expected) in [
        (vec![], 401),
        (vec![("authorization", "Bearer wrong")], 401),
        (vec![("authorization", key)], 401),
        (vec![("authorization", bearer.as_str())], 200),
    ] {
        let (status, response) = app.post(Service::Gateway, "/chat", &body, &headers).await;
        assert_eq!(status, expected, "{headers:?}: {response}");
        assert!(is_trace_id(&response["trace_id"]));
        if expected == 401 {
            assert_eq!(response["error"], "unauthorized");
            // Nothing downstream ran: the trace is the gateway's SERVER span alone.
            let spans = app.trace(response["trace_id"].as_str().unwrap(), 1).await;
            assert_eq!(spans.len(), 1, "{}", ragtrace::tree::render(&spans));
            assert_eq!(spans[0].attr_str("error.type"), Some("unauthorized"));
        }
    }
    // A malformed body without the key is still a 401, not a 4xx about the body.
    let (status, _) = app.post(Service::Gateway, "/chat", "{not json", &[]).await;
    assert_eq!(status, 401);

    tokio::time::sleep(Duration::from_millis(300)).await;
    let exported = serde_json::to_string(&app.receiver.store.all()).unwrap();
    assert!(
        !exported.contains(key),
        "the API key was exported in a span"
    );
    assert!(
        !app.logs.lock().unwrap().join("\n").contains(key),
        "the API key was logged"
    );
}

#[actix_web::test]
async fn injected_errors_and_latency_show_up_in_the_trace() {
    let app = TestPipeline::start_custom(
        &[],
        &[
            (Service::Retrieval, "FAULT_ERROR_RATE", "1"),
            (Service::LlmService, "FAULT_DELAY_MS", "300"),
        ],
        true,
    )
    .await;
    let (status, body) = app.chat(json!({"query": QUESTION}), &[]).await;
    // An injected 500 is no code the callers relay: a 502 `bad_gateway` at
    // the edge, the fault named on query-processor's CLIENT span.
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"], "bad_gateway", "{body}");
    let spans = app.trace(body["trace_id"].as_str().unwrap(), 7).await;
    let call = span(&spans, "query-processor", "POST /retrieve");
    assert!(
        call.status.message.contains("retrieval") && call.status.message.contains("fault injected"),
        "{:?}",
        call.status
    );
    let server = span(&spans, "retrieval", "POST /retrieve");
    assert_eq!(server.status.code, StatusCode::Error);
    assert_eq!(server.attr_str("error.type"), Some("injected_fault"));
    assert!(server.events.iter().any(|e| e.name == "fault.injected"));

    // llm-service: slow, not failing (call it directly).
    let generate = json!({"query": "What is a span?", "contexts": []}).to_string();
    let started = Instant::now();
    let (status, body) = app
        .post(Service::LlmService, "/generate", &generate, &[])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let trace_id = app
        .receiver
        .store
        .wait_until(Duration::from_secs(10), |spans| {
            spans
                .iter()
                .any(|s| s.service_name == "llm-service" && s.name == "POST /generate")
        })
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.service_name == "llm-service" && s.name == "POST /generate")
        .unwrap();
    assert!(
        trace_id.duration() >= Duration::from_millis(300),
        "{:?}",
        trace_id.duration()
    );
    let delay = trace_id
        .events
        .iter()
        .find(|e| e.name == "fault.injected")
        .expect("delay event");
    assert_eq!(delay.attributes["fault.type"], "delay");
    assert_eq!(delay.attributes["fault.delay_ms"], 300);
}

/// Requests must not wait for the collector: export happens on the batch
/// processor's thread. (A generous bound: this checks for blocking, it is not
/// a latency target; the benchmark measures latency.)
async fn chats_stay_fast_with_collector_at(endpoint: &str) {
    let app = TestPipeline::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
    ])
    .await;
    for _ in 0..20 {
        let started = Instant::now();
        let (status, body) = app.chat(json!({"query": QUESTION}), &[]).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a request waited {:?}",
            started.elapsed()
        );
    }
    app.assert_no_panics();
    // And shutdown does not hang on the unreachable collector either.
    let mut app = app;
    for (service, status) in app.pipeline.stop_all(Duration::from_secs(15)).await {
        let status = status.unwrap_or_else(|err| panic!("{}: {err:#}", service.name()));
        assert!(status.success(), "{}: {status}", service.name());
    }
}

#[actix_web::test]
async fn a_dead_collector_does_not_slow_requests_or_block_shutdown() {
    let dead = ragtrace::launcher::free_loopback_addr().unwrap();
    chats_stay_fast_with_collector_at(&format!("http://{dead}")).await;
}

#[actix_web::test]
async fn a_black_hole_collector_does_not_slow_requests_or_block_shutdown() {
    // Accepts connections, never answers.
    let hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    chats_stay_fast_with_collector_at(&format!("http://{}", hole.local_addr().unwrap())).await;
    drop(hole);
}
