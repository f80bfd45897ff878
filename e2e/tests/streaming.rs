//! `POST /chat/stream` end to end: Server-Sent Events from llm-service
//! (offline generator, or an OpenAI-compatible API streaming with usage)
//! relayed by query-processor and the gateway, one trace across all four
//! services, and a client that disconnects mid-answer.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use ragtrace::launcher::Service;
use ragtrace::receiver::metrics::{HistogramValue, MetricPoint};
use ragtrace::receiver::{SpanKind, SpanRecord, StatusCode};
use serde_json::{Value, json};
use shared::wire::StreamEvent;
use support::{SPANS_PER_CHAT, SPANS_UNEVALUATED, TestPipeline, assert_parent, is_trace_id, span};
use testkit::fake_openai::{FakeOpenAi, FakeOpenAiConfig, Fault};

const QUESTION: &str = "What does the traceparent header contain?";

/// The llm-service histogram `name` whose attributes include `subset`.
fn histogram(
    points: &[MetricPoint],
    name: &str,
    subset: &[(&str, Value)],
) -> Option<HistogramValue> {
    points
        .iter()
        .find(|p| p.service_name == "llm-service" && p.name == name && p.has_attributes(subset))
        .and_then(|p| p.histogram().cloned())
}

async fn wait_for(app: &TestPipeline, pred: impl Fn(&[MetricPoint]) -> bool) -> Vec<MetricPoint> {
    app.receiver
        .metrics
        .wait_until(Duration::from_secs(20), pred)
        .await
        .unwrap_or_else(|points| panic!("metrics not within 20 s:\n{points:#?}"))
}

fn attr<'a>(span: &'a SpanRecord, key: &str) -> &'a Value {
    span.attributes
        .get(key)
        .unwrap_or_else(|| panic!("{} has no {key}: {:?}", span.name, span.attributes))
}

/// The streaming tree: the plain `/chat` tree with `/stream` routes.
/// The spans that carry the stream, outermost first (the SERVER span down to
/// the chat span), after checking the tree's shape.
fn streaming_spans(spans: &[SpanRecord]) -> [&SpanRecord; 8] {
    let server = span(spans, "gateway", "POST /chat/stream");
    let agent = span(spans, "gateway", "invoke_agent ragtrace");
    let to_qp = span(spans, "gateway", "POST /process/stream");
    let qp_server = spans
        .iter()
        .find(|s| s.service_name == "query-processor" && s.kind == SpanKind::Server)
        .expect("query-processor SERVER span");
    let tool = span(spans, "query-processor", "execute_tool process_query");
    let to_llm = spans
        .iter()
        .find(|s| {
            s.service_name == "query-processor"
                && s.kind == SpanKind::Client
                && s.name == "POST /generate/stream"
        })
        .expect("CLIENT POST /generate/stream");
    let llm_server = spans
        .iter()
        .find(|s| s.service_name == "llm-service" && s.kind == SpanKind::Server)
        .expect("llm-service SERVER span");
    let chat = spans
        .iter()
        .find(|s| s.service_name == "llm-service" && s.name.starts_with("chat "))
        .expect("chat span");
    let retrieve = span(spans, "query-processor", "POST /retrieve");
    assert_parent(agent, server);
    assert_parent(to_qp, agent);
    assert_parent(qp_server, to_qp);
    assert_parent(tool, qp_server);
    assert_parent(retrieve, tool);
    assert_parent(to_llm, tool);
    assert_parent(llm_server, to_llm);
    assert_parent(chat, llm_server);
    assert_eq!(qp_server.name, "POST /process/stream");
    assert_eq!(llm_server.name, "POST /generate/stream");
    [
        server, agent, to_qp, qp_server, tool, to_llm, llm_server, chat,
    ]
}

/// Every carrier says how the stream ended, and none is an error.
fn assert_outcome(carriers: &[&SpanRecord], outcome: &str, spans: &[SpanRecord]) {
    for s in carriers {
        assert_eq!(
            attr(s, "ragtrace.stream.outcome"),
            &json!(outcome),
            "{}:\n{}",
            s.name,
            ragtrace::tree::render(spans)
        );
        assert_eq!(s.status.code, StatusCode::Unset, "{}", s.name);
    }
}

#[actix_web::test]
async fn offline_stream_is_one_trace_with_streaming_attributes() {
    let app = TestPipeline::start(&[
        ("GENERATOR_STREAM_DELAY_MS", "2"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
        (
            "TRACE_UI_URL",
            "http://localhost:16686/trace/{trace_id}?uiFind=1",
        ),
    ])
    .await;

    // The same question, answered whole and streamed: the deterministic
    // generator gives the same text both ways.
    let (status, whole) = app.chat(json!({"query": QUESTION}), &[]).await;
    assert_eq!(status, 200, "{whole}");
    let streamed = app
        .stream_chat(json!({"query": QUESTION, "tags": ["beta"]}))
        .await;
    assert_eq!(streamed.status, 200);
    // Both name their trace in the UI TRACE_UI_URL describes.
    let link = |trace_id: &str| format!("http://localhost:16686/trace/{trace_id}?uiFind=1");
    let whole_id = whole["trace_id"].as_str().unwrap();
    assert_eq!(whole["trace_url"], link(whole_id), "{whole}");
    let done = streamed.done();
    assert_eq!(done.trace_url, done.trace_id.as_deref().map(link));
    assert!(
        streamed.content_type.starts_with("text/event-stream"),
        "{}",
        streamed.content_type
    );

    // contexts, then deltas, then done.
    let StreamEvent::Contexts(contexts) = &streamed.events[0] else {
        panic!("first event: {:?}", streamed.events[0]);
    };
    let retrieved: Vec<shared::wire::Passage> =
        serde_json::from_value(whole["contexts"].clone()).unwrap();
    assert_eq!(
        contexts, &retrieved,
        "the streamed contexts are the retrieved ones"
    );
    let deltas = streamed.events.len() - 2;
    assert!(deltas > 10, "one delta per token piece, got {deltas}");
    assert!(
        streamed.events[1..=deltas]
            .iter()
            .all(|e| matches!(e, StreamEvent::Delta(_)))
    );
    assert_eq!(streamed.text(), whole["answer"].as_str().unwrap());
    let done = streamed.done();
    assert_eq!(done.model, "ragtrace-extractive-v1");
    assert_eq!(serde_json::to_value(done.usage).unwrap(), whole["usage"]);
    assert_eq!(done.finish_reason, "stop");
    let trace_id = done.trace_id.clone().expect("done carries the trace id");
    assert!(is_trace_id(&json!(trace_id)));

    let spans = app.trace(&trace_id, SPANS_PER_CHAT).await;
    assert_eq!(
        spans.len(),
        SPANS_PER_CHAT,
        "{}",
        ragtrace::tree::render(&spans)
    );
    let carriers = streaming_spans(&spans);
    let [_, agent, _, qp_server, _, _, llm_server, chat] = carriers;

    // The inference span says it streamed, when the first chunk came, and
    // what the model used.
    assert_eq!(attr(chat, "gen_ai.request.stream"), &json!(true));
    let ttfc = attr(chat, "gen_ai.response.time_to_first_chunk")
        .as_f64()
        .unwrap();
    let chat_secs = chat.duration().as_secs_f64();
    assert!(
        ttfc > 0.0 && ttfc < chat_secs,
        "time to first chunk {ttfc}s within the chat span's {chat_secs}s"
    );
    assert_eq!(
        attr(chat, "gen_ai.usage.output_tokens"),
        &json!(done.usage.output_tokens)
    );
    assert_eq!(
        attr(chat, "gen_ai.usage.input_tokens"),
        &json!(done.usage.input_tokens)
    );
    assert_eq!(
        attr(chat, "gen_ai.response.finish_reasons"),
        &json!(["stop"])
    );

    // Every span that carried the stream says how it ended, and lasted as
    // long as the stream: each ends no earlier than the span it wraps.
    assert_outcome(&carriers, "completed", &spans);
    for pair in carriers.windows(2) {
        let (outer, inner) = (pair[0], pair[1]);
        assert!(
            outer.end_unix_nanos >= inner.end_unix_nanos,
            "{} ended before {}:\n{}",
            outer.name,
            inner.name,
            ragtrace::tree::render(&spans)
        );
    }
    // Streaming with a 2 ms pause per chunk takes at least deltas × 2 ms;
    // the agent span covers it (it would stop at the handler's return if the
    // end time were not moved to the stream's end).
    assert!(
        agent.duration() >= Duration::from_millis(2 * deltas as u64),
        "agent span {:?} for {deltas} chunks",
        agent.duration()
    );
    assert_eq!(
        attr(chat, "ragtrace.stream.chunks"),
        &json!(deltas),
        "chunks counted"
    );

    // Tags travel as baggage and are recorded on the other services' spans.
    assert_eq!(attr(qp_server, "confident.trace.tags"), &json!(["beta"]));
    assert_eq!(attr(llm_server, "confident.trace.tags"), &json!(["beta"]));

    // Metrics: one time-to-first-chunk measurement (only the stream has
    // one), in the convention's buckets; two chat operations (the plain
    // /chat and the stream), with the stream's tokens counted too.
    let points = wait_for(&app, |points| {
        histogram(points, "gen_ai.client.operation.time_to_first_chunk", &[])
            .is_some_and(|h| h.count == 1)
            && histogram(points, "gen_ai.client.operation.duration", &[])
                .is_some_and(|h| h.count == 2)
    })
    .await;
    let ttfc = histogram(&points, "gen_ai.client.operation.time_to_first_chunk", &[]).unwrap();
    assert_eq!(ttfc.bounds, shared::metrics::OPERATION_DURATION_BOUNDARIES);
    assert!(
        (ttfc.sum.unwrap()
            - attr(chat, "gen_ai.response.time_to_first_chunk")
                .as_f64()
                .unwrap())
        .abs()
            < 0.01
    );
    let output = histogram(
        &points,
        "gen_ai.client.token.usage",
        &[("gen_ai.token.type", json!("output"))],
    )
    .unwrap();
    assert_eq!(
        output.sum.unwrap() as u64,
        2 * done.usage.output_tokens,
        "both answers' output tokens"
    );
    app.assert_no_panics();
}

#[actix_web::test]
async fn openai_compatible_streaming_reports_the_apis_usage() {
    let fake = FakeOpenAi::start_with(FakeOpenAiConfig {
        response_model: Some("gpt-4o-mini-2024-07-18".into()),
        reply: Some("Per [1], it holds four fields: version, trace-id, parent-id, flags.".into()),
        ..Default::default()
    });
    let base_url = fake.base_url();
    let app = TestPipeline::start(&[
        ("LLM_BASE_URL", &base_url),
        ("LLM_MODEL", "gpt-4o-mini"),
        ("LLM_API_KEY", "sk-test-streaming"),
        ("LLM_TIMEOUT_MS", "2000"),
    ])
    .await;

    let streamed = app.stream_chat(json!({"query": QUESTION})).await;
    assert_eq!(streamed.status, 200);
    assert_eq!(
        streamed.text(),
        "Per [1], it holds four fields: version, trace-id, parent-id, flags."
    );
    let done = streamed.done();
    assert_eq!(done.model, "gpt-4o-mini-2024-07-18");
    assert_eq!(done.finish_reason, "stop");

    // The API was asked to stream, with usage in its last chunk, and the
    // usage it reported is what the client got.
    let requests = fake.requests();
    let chat_request = requests
        .iter()
        .find(|r| r.path == "/v1/chat/completions")
        .expect("a chat completion request");
    assert_eq!(chat_request.body["stream"], json!(true));
    assert_eq!(
        chat_request.body["stream_options"]["include_usage"],
        json!(true)
    );
    assert!(done.usage.input_tokens > 0 && done.usage.output_tokens > 0);

    let trace_id = done.trace_id.clone().unwrap();
    let spans = app.trace(&trace_id, SPANS_PER_CHAT).await;
    let chat = streaming_spans(&spans)[7];
    assert_eq!(chat.kind, SpanKind::Client);
    assert_eq!(chat.name, "chat gpt-4o-mini");
    assert_eq!(attr(chat, "gen_ai.request.stream"), &json!(true));
    assert!(
        attr(chat, "gen_ai.response.time_to_first_chunk")
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(
        attr(chat, "gen_ai.response.model"),
        &json!("gpt-4o-mini-2024-07-18")
    );
    assert!(
        attr(chat, "gen_ai.response.id")
            .as_str()
            .unwrap()
            .starts_with("chatcmpl-")
    );
    assert_eq!(
        attr(chat, "gen_ai.usage.input_tokens"),
        &json!(done.usage.input_tokens)
    );
    assert_eq!(
        attr(chat, "gen_ai.usage.output_tokens"),
        &json!(done.usage.output_tokens)
    );
    assert_eq!(attr(chat, "ragtrace.stream.outcome"), &json!("completed"));

    // A provider failure before the first chunk is an ordinary error
    // response, relayed hop by hop, with an ERROR chat span.
    // (401: a 5xx would be retried by the client and then succeed.)
    fake.push_fault(Fault::unauthorized());
    let failed = app.stream_chat(json!({"query": QUESTION})).await;
    assert_eq!(failed.status, 502);
    let StreamEvent::Error(body) = &failed.events[0] else {
        unreachable!()
    };
    assert!(is_trace_id(&json!(body.trace_id)), "{body:?}");
    assert_eq!(body.error, "model_auth_failed", "{body:?}");
    assert!(!body.message.contains("llm-service"), "{body:?}");
    let spans = app.trace(&body.trace_id, SPANS_UNEVALUATED).await;
    let chat = spans
        .iter()
        .find(|s| s.name == "chat gpt-4o-mini")
        .expect("chat span");
    assert_eq!(chat.status.code, StatusCode::Error);
    assert_eq!(attr(chat, "error.type"), &json!("model_auth_failed"));
    app.assert_no_panics();
    fake.stop();
}

#[actix_web::test]
async fn bad_input_to_the_stream_endpoint_is_a_json_error() {
    let app = TestPipeline::start(&[]).await;
    let failed = app.stream_chat(json!({"query": "   "})).await;
    assert_eq!(failed.status, 422);
    assert!(failed.content_type.starts_with("application/json"));
    let StreamEvent::Error(body) = &failed.events[0] else {
        unreachable!()
    };
    assert_eq!(body.error, "invalid_query");
    assert!(is_trace_id(&json!(body.trace_id)));
    app.assert_no_panics();
}

#[actix_web::test]
async fn a_client_that_disconnects_mid_stream_ends_every_span_as_cancelled() {
    // 40 ms between chunks: the answer takes seconds, the client leaves
    // after the first chunk.
    let app = TestPipeline::start(&[
        ("GENERATOR_STREAM_DELAY_MS", "40"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
    ])
    .await;
    let mut response = app
        .client
        .post(format!("{}/chat/stream", app.url(Service::Gateway)))
        .insert_header(("content-type", "application/json"))
        .send_body(json!({"query": QUESTION}).to_string())
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200);
    let mut decoder = shared::sse::Decoder::new();
    let mut deltas = 0;
    while deltas == 0 {
        let chunk = response.next().await.expect("more").expect("chunk");
        decoder.push(&chunk);
        while let Some(raw) = decoder.next_event().unwrap() {
            if raw.event == "delta" {
                deltas += 1;
            }
        }
    }
    // Hang up: dropping the response closes the connection (awc does not
    // reuse a connection whose body was not read to the end).
    drop(response);

    // Every span still arrives — so every span ended — within a few chunk
    // intervals, not after the whole answer.
    let trace_id = loop {
        if let Some(id) = app
            .receiver
            .store
            .all()
            .iter()
            .find(|s| s.name == "POST /chat/stream")
            .map(|s| s.trace_id.clone())
        {
            break id;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let spans = app.trace(&trace_id, SPANS_UNEVALUATED).await;
    let carriers = streaming_spans(&spans);
    let chat = carriers[7];
    // The caller leaving is not a failure of ours: no span is an error.
    assert_outcome(&carriers, "cancelled", &spans);
    // The model was stopped before it finished: no response, no usage.
    assert!(!chat.attributes.contains_key("gen_ai.usage.output_tokens"));
    assert!(
        chat.duration() < Duration::from_secs(2),
        "llm-service stopped soon after the client left: {:?}",
        chat.duration()
    );
    assert!(
        !app.logged(Service::Gateway, "client disconnected mid-stream")
            .is_empty()
    );
    // The abandoned operation is counted, as `cancelled`, with no tokens.
    let points = wait_for(&app, |points| {
        histogram(
            points,
            "gen_ai.client.operation.duration",
            &[("error.type", json!("cancelled"))],
        )
        .is_some_and(|h| h.count == 1)
    })
    .await;
    assert!(histogram(&points, "gen_ai.client.token.usage", &[]).is_none());
    app.assert_no_panics();
}
