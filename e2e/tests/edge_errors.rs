//! The public edge (docs/errors.md): for each cause, through the real
//! binaries, the gateway answers with the cause's status, stable code and
//! fixed message and the `trace_id`, and nothing internal (no address, port,
//! URL, library error or chain of hops); the trace of that id holds the
//! whole cause instead: the failing service's span, `error.type` on every
//! CLIENT span up the chain, and an ERROR log line carrying the trace id.

mod support;

use std::time::Duration;

use ragtrace::launcher::Service;
use serde_json::{Value, json};
use shared::http::error_codes;
use support::TestPipeline;
use support::edge::{
    assert_cause, assert_clients, assert_error_logged, chat, one, rate_limiting_callee, trace,
};
use testkit::fake_openai::{FakeOpenAi, FakeOpenAiConfig, Fault};
use testkit::fake_qdrant::FakeQdrant;

const QUESTION: &str = "What does the traceparent header contain?";
const API_KEY: &str = "sk-test-edge-7c1d9e2f4a6b8c0d";

/// The gateway's answer is the table's for `code`, with nothing internal,
/// no key and no question in it.
fn assert_public(app: &TestPipeline, ports: &[u16], answer: (u16, &Value), code: &str) {
    support::edge::assert_public(app, ports, &[API_KEY, QUESTION], answer, code);
}

#[actix_web::test]
async fn vector_store_down_is_a_503_with_the_cause_on_retrievals_span() {
    let mut qdrant = FakeQdrant::start();
    let qdrant_port = qdrant.addr().port();
    let app = TestPipeline::start(&[("QDRANT_URL", &qdrant.url())]).await;
    qdrant.stop();

    let (status, retry_after, body) = chat(&app).await;
    let code = "vector_store_unavailable";
    assert_public(&app, &[qdrant_port], (status, &body), code);
    assert_eq!(retry_after, None);

    let trace_id = body["trace_id"].as_str().unwrap();
    let spans = trace(
        &app,
        trace_id,
        &[
            ("retrieval", "retrieval ragtrace"),
            ("gateway", "POST /chat"),
        ],
    )
    .await;
    // The whole cause, the store's address and transport error included.
    let port = qdrant_port.to_string();
    assert_cause(
        one(&spans, "retrieval", "retrieval ragtrace"),
        code,
        &["vector store unreachable", &port],
    );
    assert_clients(&spans, code, &[("query-processor", "POST /retrieve")]);
    // The chain of hops is on the spans that relayed it.
    let gateway = one(&spans, "gateway", "POST /chat");
    assert_cause(
        gateway,
        code,
        &["query-processor", "retrieval", "vector store unreachable"],
    );
    assert_error_logged(&app, Service::Retrieval, trace_id, code);
    assert_error_logged(&app, Service::Gateway, trace_id, code);

    // Streaming: the same answer before the first event.
    let streamed = app.stream_chat(json!({"query": QUESTION})).await;
    assert_eq!(streamed.status, 503);
    app.assert_no_panics();
}

#[actix_web::test]
async fn embeddings_provider_down_is_a_503_embeddings_unavailable() {
    let embeddings = FakeOpenAi::start();
    let fake_port = embeddings.addr().port();
    let app = TestPipeline::start(&[
        ("EMBEDDINGS_BASE_URL", &embeddings.base_url()),
        ("EMBEDDINGS_MODEL", "text-embedding-3-small"),
        ("OPENAI_API_KEY", API_KEY),
        ("EMBEDDINGS_TIMEOUT_MS", "8000"),
        ("RETRIEVAL_TIMEOUT_MS", "12000"),
    ])
    .await;
    embeddings.stop();

    let (status, _, body) = chat(&app).await;
    let code = "embeddings_unavailable";
    assert_public(&app, &[fake_port], (status, &body), code);

    let trace_id = body["trace_id"].as_str().unwrap();
    let name = "embeddings text-embedding-3-small";
    let spans = trace(
        &app,
        trace_id,
        &[("retrieval", name), ("gateway", "POST /chat")],
    )
    .await;
    assert_cause(one(&spans, "retrieval", name), code, &["unreachable"]);
    assert_cause(
        one(&spans, "retrieval", "retrieval ragtrace"),
        code,
        &["embedding the query failed"],
    );
    assert_clients(&spans, code, &[("query-processor", "POST /retrieve")]);
    assert_error_logged(&app, Service::Retrieval, trace_id, code);
}

#[actix_web::test]
async fn model_provider_failures_keep_their_meaning_at_the_edge() {
    let fake = FakeOpenAi::start_with(FakeOpenAiConfig {
        api_key: Some(API_KEY.into()),
        ..Default::default()
    });
    let fake_port = fake.addr().port();
    let app = TestPipeline::start(&[
        ("LLM_BASE_URL", &fake.base_url()),
        ("LLM_MODEL", "gpt-4o-mini"),
        ("LLM_API_KEY", API_KEY),
        ("LLM_TIMEOUT_MS", "4000"),
    ])
    .await;

    // (faults queued, code, what the chat span's message quotes). async-openai
    // retries 429 and 5xx three times, so a persistent failure is four.
    let cases: Vec<(Vec<Fault>, &str, &str)> = vec![
        (
            vec![Fault::unauthorized()],
            "model_auth_failed",
            "rejected the API key (401)",
        ),
        (
            vec![Fault::rate_limited(); 4],
            "rate_limited",
            "Rate limit reached",
        ),
        (
            vec![Fault::server_error(); 4],
            "model_unavailable",
            "The server had an error",
        ),
    ];
    for (faults, code, cause) in cases {
        for fault in faults {
            fake.push_fault(fault);
        }
        let (status, _, body) = chat(&app).await;
        assert_public(&app, &[fake_port], (status, &body), code);
        let trace_id = body["trace_id"].as_str().unwrap();
        let spans = trace(
            &app,
            trace_id,
            &[
                ("llm-service", "chat gpt-4o-mini"),
                ("gateway", "POST /chat"),
            ],
        )
        .await;
        assert_cause(
            one(&spans, "llm-service", "chat gpt-4o-mini"),
            code,
            &[cause],
        );
        assert_clients(&spans, code, &[("query-processor", "POST /generate")]);
        assert_error_logged(&app, Service::LlmService, trace_id, code);
    }

    // A provider message quoting the user reaches no error body, at any hop:
    // the span keeps it (redacted), llm-service's body says what failed.
    let quoted = "The prompt 'What does the traceparent header contain?' was flagged";
    let rejected = || Fault::Status {
        status: 400,
        error_type: "invalid_request_error".into(),
        code: Some("content_policy_violation".into()),
        message: quoted.into(),
    };
    fake.push_fault(rejected());
    let (status, _, body) = chat(&app).await;
    assert_public(&app, &[fake_port], (status, &body), "model_rejected");
    fake.push_fault(rejected());
    let generate = json!({"query": QUESTION, "contexts": []}).to_string();
    let (status, body) = app
        .post(Service::LlmService, "/generate", &generate, &[])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("model_rejected")),
        "{body}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        !message.contains("traceparent") && !message.contains(API_KEY),
        "{message}"
    );

    // Mid-stream, the `error` event is the public one too.
    fake.push_fault(Fault::unauthorized());
    let streamed = app.stream_chat(json!({"query": QUESTION})).await;
    assert_eq!(streamed.status, 502);
    let Some(shared::wire::StreamEvent::Error(event)) = streamed.events.last() else {
        panic!("no error event: {:?}", streamed.events);
    };
    assert_eq!(event.error, "model_auth_failed");
    assert_eq!(
        event.message,
        error_codes::public_message("model_auth_failed")
    );
    app.assert_no_panics();
}

#[actix_web::test]
async fn a_slow_hop_past_its_deadline_is_a_504_timeout() {
    let app = TestPipeline::start_custom(
        &[("LLM_SERVICE_TIMEOUT_MS", "500")],
        &[(Service::LlmService, "FAULT_DELAY_MS", "1500")],
        true,
    )
    .await;
    let (status, _, body) = chat(&app).await;
    let code = "timeout";
    assert_public(&app, &[], (status, &body), code);

    let trace_id = body["trace_id"].as_str().unwrap();
    let spans = trace(
        &app,
        trace_id,
        &[
            ("query-processor", "POST /generate"),
            ("gateway", "POST /chat"),
        ],
    )
    .await;
    let call = one(&spans, "query-processor", "POST /generate");
    assert_cause(call, code, &["llm-service did not answer within 500ms"]);
    assert_clients(&spans, code, &[]);
    assert_error_logged(&app, Service::QueryProcessor, trace_id, code);
}

#[actix_web::test]
async fn a_dead_hop_is_a_503_service_unavailable() {
    let mut app = TestPipeline::start(&[]).await;
    app.pipeline
        .stop(Service::Retrieval, Duration::from_secs(10))
        .await
        .unwrap();
    let (status, _, body) = chat(&app).await;
    let code = "service_unavailable";
    assert_public(&app, &[], (status, &body), code);

    let trace_id = body["trace_id"].as_str().unwrap();
    let spans = trace(
        &app,
        trace_id,
        &[
            ("query-processor", "POST /retrieve"),
            ("gateway", "POST /chat"),
        ],
    )
    .await;
    let call = one(&spans, "query-processor", "POST /retrieve");
    let port = app
        .pipeline
        .topology()
        .addr(Service::Retrieval)
        .port()
        .to_string();
    assert_cause(call, code, &["retrieval is unreachable", &port]);
    assert_clients(&spans, code, &[]);
    assert_error_logged(&app, Service::QueryProcessor, trace_id, code);
}

#[actix_web::test]
async fn a_callees_retry_after_reaches_the_client_with_its_code() {
    let (callee, url) = rate_limiting_callee();
    let app = TestPipeline::start_with(&[("QUERY_PROCESSOR_URL", &url)], false).await;
    let (status, retry_after, body) = chat(&app).await;
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert_public(&app, &[port, 9], (status, &body), "rate_limited");
    assert_eq!(retry_after.as_deref(), Some("7"));
    let trace_id = body["trace_id"].as_str().unwrap();
    let spans = trace(&app, trace_id, &[("gateway", "POST /process")]).await;
    assert_clients(&spans, "rate_limited", &[]);
    callee.stop(true).await;
}
