//! The real backends, end to end: the same four binaries switched to Qdrant
//! (through `qdrant-client`) and to OpenAI-compatible APIs (through
//! `async-openai`). Qdrant and the hosted APIs cannot run here, so the tests
//! start doubles that speak their real wire protocols (`testkit`): a Qdrant
//! gRPC server and an OpenAI HTTP API. The assertions are on what the fakes
//! received and on the OTLP the services exported.

mod support;

use std::time::Duration;

use ragtrace::launcher::Service;
use ragtrace::receiver::{SpanKind, StatusCode};
use serde_json::{Value, json};
use support::{Backend, SPANS_PER_CHAT, TestPipeline, assert_chat_tree_with, is_trace_id, span};
use testkit::fake_openai::{FakeOpenAi, FakeOpenAiConfig, Fault};
use testkit::fake_qdrant::FakeQdrant;

const QUESTION: &str = "What does the traceparent header contain?";
const API_KEY: &str = "sk-test-4f9a2c7e1b8d3e6f0a5c";

fn corpus_chunks() -> u64 {
    let dir = retrieval::corpus::default_corpus_dir();
    retrieval::corpus::load_corpus(&dir, &Default::default())
        .unwrap()
        .len() as u64
}

async fn get_json(app: &TestPipeline, url: String) -> (u16, Value) {
    let mut response = app.client.get(url).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[actix_web::test]
async fn qdrant_backed_chat_is_one_trace_and_ingest_is_idempotent() {
    let qdrant = FakeQdrant::start();
    let env = [("QDRANT_URL", qdrant.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let app = TestPipeline::start(&env).await;

    let chunks = corpus_chunks();
    assert_eq!(qdrant.points_count("ragtrace"), Some(chunks));
    assert_eq!(qdrant.collection_dimension("ragtrace"), Some(384));
    let batches = chunks.div_ceil(retrieval::retriever::INGEST_BATCH as u64) as usize;
    assert_eq!(qdrant.upsert_batches(), batches);

    let (status, body) = app.chat(json!({"query": QUESTION}), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["contexts"][0]["source"], "w3c-traceparent-header.md");
    assert!(
        body["contexts"][0]["text"]
            .as_str()
            .unwrap()
            .contains("traceparent")
    );
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT)
        .await;
    // The whole tree check of the embedded pipeline, with Qdrant behind retrieval.
    assert_chat_tree_with(
        &spans,
        &body,
        &Backend {
            db_system: "qdrant",
            remote_db: true,
            ..Backend::EMBEDDED
        },
    );
    let search = span(&spans, "retrieval", "search ragtrace");
    assert_eq!(search.kind, SpanKind::Client);
    assert_eq!(search.attr_str("db.system.name"), Some("qdrant"));
    assert_eq!(search.attr_str("db.operation.name"), Some("search"));
    assert_eq!(search.attr_str("db.collection.name"), Some("ragtrace"));
    assert_eq!(search.attr_str("server.address"), Some("127.0.0.1"));
    assert_eq!(
        search.attr_i64("server.port"),
        Some(qdrant.addr().port() as i64)
    );
    assert_eq!(search.attr_i64("db.response.returned_rows"), Some(4));
    let retrieval = span(&spans, "retrieval", "retrieval ragtrace");
    assert_eq!(
        retrieval.attr_str("gen_ai.data_source.id"),
        Some("ragtrace")
    );
    assert_eq!(retrieval.attr_str("db.system.name"), Some("qdrant"));
    assert!(qdrant.calls().iter().any(|c| c == "Points/Query"));

    // A second pipeline against the same Qdrant (a restart, or a replica):
    // the collection is reused and re-ingest overwrites, never duplicates.
    drop(app);
    let again = TestPipeline::start(&env).await;
    assert_eq!(qdrant.points_count("ragtrace"), Some(chunks));
    assert_eq!(
        qdrant
            .calls()
            .iter()
            .filter(|c| *c == "Collections/Create")
            .count(),
        1
    );
    drop(again);

    // `ragtrace ingest <dir>`: the same documents again, a span per batch.
    let receiver = ragtrace::receiver::Receiver::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let output = support::command("ragtrace")
        .args([
            "ingest",
            retrieval::corpus::default_corpus_dir().to_str().unwrap(),
        ])
        .env("QDRANT_URL", qdrant.url())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("{chunks} chunks in {batches} batches")),
        "{stdout}"
    );
    assert_eq!(qdrant.points_count("ragtrace"), Some(chunks));
    let spans = receiver
        .store
        .wait_until(Duration::from_secs(10), |s| {
            s.iter().any(|s| s.name == "ingest ragtrace")
        })
        .await
        .expect("ingest spans exported");
    let batch_spans = spans
        .iter()
        .filter(|s| s.name == "ingest_batch ragtrace")
        .count();
    assert_eq!(batch_spans, batches);
    assert_eq!(
        spans.iter().filter(|s| s.name == "upsert ragtrace").count(),
        batches
    );
}

#[actix_web::test]
async fn qdrant_outage_is_a_503_with_an_error_span_and_retrieval_recovers() {
    let mut qdrant = FakeQdrant::start();
    let url = qdrant.url();
    let app = TestPipeline::start(&[("QDRANT_URL", &url)]).await;
    let retrieve = r#"{"query": "What is a span?", "top_k": 3}"#;

    qdrant.stop();
    let (status, body) = app
        .post(Service::Retrieval, "/retrieve", retrieve, &[])
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "vector_store_unavailable");
    let spans = app.trace(body["trace_id"].as_str().unwrap(), 4).await;
    let search = span(&spans, "retrieval", "search ragtrace");
    assert_eq!(search.status.code, StatusCode::Error);
    assert_eq!(
        search.attr_str("error.type"),
        Some("vector_store_unavailable")
    );
    let (status, ready) = get_json(&app, format!("{}/readyz", app.url(Service::Retrieval))).await;
    assert_eq!(status, 503);
    assert!(
        ready["message"].as_str().unwrap().contains("qdrant"),
        "{ready}"
    );
    // Through the whole pipeline: the same 503 and code at the public edge,
    // not a hang (the public message is tested in edge_errors.rs).
    let (status, body) = app.chat(json!({"query": QUESTION}), &[]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "vector_store_unavailable", "{body}");

    // Qdrant is back: no restart of retrieval needed.
    qdrant.restart();
    let mut recovered = None;
    for _ in 0..50 {
        let (status, body) = app
            .post(Service::Retrieval, "/retrieve", retrieve, &[])
            .await;
        if status == 200 {
            recovered = Some(body);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = recovered.expect("retrieval recovers once Qdrant is back");
    assert_eq!(body["contexts"].as_array().unwrap().len(), 3);
    let (status, _) = get_json(&app, format!("{}/readyz", app.url(Service::Retrieval))).await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn qdrant_down_at_startup_then_back_gets_the_corpus_ingested() {
    let mut qdrant = FakeQdrant::start();
    let url = qdrant.url();
    qdrant.stop();
    let app = TestPipeline::start_with(&[("QDRANT_URL", &url)], false).await;
    let (status, body) = get_json(&app, format!("{}/readyz", app.url(Service::Retrieval))).await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = app
        .post(
            Service::Retrieval,
            "/retrieve",
            r#"{"query": "span", "top_k": 1}"#,
            &[],
        )
        .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "index_not_ready");

    qdrant.restart();
    let mut ready = false;
    for _ in 0..100 {
        let (status, _) = get_json(&app, format!("{}/readyz", app.url(Service::Retrieval))).await;
        if status == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "retrieval became ready after Qdrant came back");
    assert_eq!(qdrant.points_count("ragtrace"), Some(corpus_chunks()));
}

#[actix_web::test]
async fn a_collection_of_another_dimension_is_a_clear_startup_error() {
    let qdrant = FakeQdrant::start();
    qdrant.create_collection("ragtrace", 7);
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        support::command("retrieval")
            .env("QDRANT_URL", qdrant.url())
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("OTEL_SDK_DISABLED", "true")
            .output(),
    )
    .await
    .expect("retrieval exits instead of serving garbage")
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("7-dimensional") && stderr.contains("384-dimensional"),
        "{stderr}"
    );
    assert_eq!(qdrant.points_count("ragtrace"), Some(0));
}

fn openai_env(fake: &FakeOpenAi) -> Vec<(&'static str, String)> {
    vec![
        ("LLM_BASE_URL", fake.base_url()),
        ("LLM_MODEL", "gpt-4o-mini".into()),
        ("LLM_API_KEY", API_KEY.into()),
        ("LLM_TEMPERATURE", "0.2".into()),
        ("LLM_MAX_TOKENS", "200".into()),
        ("LLM_TIMEOUT_MS", "1500".into()),
        ("EMBEDDINGS_BASE_URL", fake.base_url()),
        ("EMBEDDINGS_MODEL", "text-embedding-3-small".into()),
        // The embedder has no key of its own: it falls back to OPENAI_API_KEY.
        ("OPENAI_API_KEY", API_KEY.into()),
    ]
}

/// The pipeline on the fake API; `embeddings: false` keeps the built-in
/// embedder, so every request the fake gets is a chat completion.
async fn start_with_openai(
    fake: &FakeOpenAi,
    embeddings: bool,
    extra: &[(&'static str, String)],
) -> TestPipeline {
    let mut env = openai_env(fake);
    if !embeddings {
        env.retain(|(name, _)| !name.starts_with("EMBEDDINGS_"));
    }
    env.extend(extra.iter().cloned());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    TestPipeline::start(&env).await
}

#[actix_web::test]
async fn openai_compatible_embeddings_and_chat_are_client_spans_with_reported_usage() {
    let fake = FakeOpenAi::start_with(FakeOpenAiConfig {
        api_key: Some(API_KEY.into()),
        response_model: Some("gpt-4o-mini-2024-07-18".into()),
        ..Default::default()
    });
    let app = start_with_openai(&fake, true, &[("LOG_FORMAT", "json".into())]).await;
    let (status, body) = app
        .chat(json!({"query": QUESTION, "user_id": "u-1"}), &[])
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(is_trace_id(&body["trace_id"]));
    assert!(
        body["answer"].as_str().unwrap().starts_with("Per [1]"),
        "{body}"
    );
    assert_eq!(body["model"], "gpt-4o-mini-2024-07-18");

    // What the services sent the API.
    let requests = fake.requests();
    let chat = requests
        .iter()
        .find(|r| r.path == "/v1/chat/completions")
        .expect("a chat completion request");
    assert_eq!(
        chat.header("authorization"),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(chat.body["model"], "gpt-4o-mini");
    assert!(
        (chat.body["temperature"].as_f64().unwrap() - 0.2).abs() < 1e-6,
        "{}",
        chat.body
    );
    assert_eq!(chat.body["max_tokens"], 200);
    let messages = chat.body["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    assert!(
        messages[0]["content"]
            .as_str()
            .unwrap()
            .contains("Cite every passage")
    );
    assert_eq!(messages[1]["role"], "user");
    let prompt = messages[1]["content"].as_str().unwrap();
    assert!(
        prompt.contains("[1] (w3c-traceparent-header.md)"),
        "{prompt}"
    );
    assert!(prompt.contains("[4] ("), "{prompt}");
    assert!(
        prompt.ends_with(&format!("Question: {QUESTION}")),
        "{prompt}"
    );
    let embedding_requests: Vec<_> = requests
        .iter()
        .filter(|r| r.path == "/v1/embeddings")
        .collect();
    assert!(
        embedding_requests.len() >= 3,
        "corpus ingest, the query, and the groundedness evaluator"
    );
    assert!(
        embedding_requests
            .iter()
            .all(|r| r.body["model"] == "text-embedding-3-small")
    );
    // The query, then the groundedness evaluator's sentences (through
    // retrieval's `POST /embed`: the same embedder), the passages' last.
    let [.., query, evaluator] = embedding_requests.as_slice() else {
        unreachable!()
    };
    assert_eq!(query.body["input"], json!([QUESTION]));
    let sentences = evaluator.body["input"].as_array().unwrap();
    let last = sentences.last().and_then(Value::as_str).unwrap();
    assert!(
        sentences.len() > 1
            && body["contexts"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["text"].as_str().unwrap().contains(last)),
        "{sentences:?}"
    );

    // What the spans say: the whole tree check, with both models remote.
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT + 3)
        .await;
    let tree = assert_chat_tree_with(
        &spans,
        &body,
        &Backend {
            embedder: "text-embedding-3-small",
            embed_provider: "openai_compatible",
            remote_embedder: true,
            model: "gpt-4o-mini",
            response_model: "gpt-4o-mini-2024-07-18",
            chat_provider: "openai_compatible",
            remote_chat: true,
            ..Backend::EMBEDDED
        },
    );
    let chat = span(&spans, "llm-service", "chat gpt-4o-mini");
    assert_eq!(chat.kind, SpanKind::Client);
    assert_eq!(chat.attr_str("gen_ai.operation.name"), Some("chat"));
    assert_eq!(
        chat.attr_str("gen_ai.provider.name"),
        Some("openai_compatible")
    );
    assert_eq!(chat.attr_str("gen_ai.request.model"), Some("gpt-4o-mini"));
    assert_eq!(
        chat.attr_str("gen_ai.response.model"),
        Some("gpt-4o-mini-2024-07-18")
    );
    assert!(
        chat.attr_str("gen_ai.response.id")
            .unwrap()
            .starts_with("chatcmpl-")
    );
    assert_eq!(
        chat.attributes["gen_ai.response.finish_reasons"],
        json!(["stop"])
    );
    assert!(
        (chat.attributes["gen_ai.request.temperature"]
            .as_f64()
            .unwrap()
            - 0.2)
            .abs()
            < 1e-6
    );
    assert_eq!(chat.attr_i64("gen_ai.request.max_tokens"), Some(200));
    assert_eq!(chat.attr_str("server.address"), Some("127.0.0.1"));
    assert_eq!(
        chat.attr_i64("server.port"),
        Some(fake.addr().port() as i64)
    );
    assert_eq!(
        chat.attr_i64("gen_ai.usage.input_tokens"),
        body["usage"]["input_tokens"].as_i64()
    );
    assert_eq!(
        chat.attr_i64("gen_ai.usage.output_tokens"),
        body["usage"]["output_tokens"].as_i64()
    );
    assert!(body["usage"]["input_tokens"].as_i64().unwrap() > 50);
    assert_eq!(chat.attr_str("confident.span.type"), Some("llm"));
    // The query's embeddings, under the retrieval span (the evaluator's are
    // under `POST /embed`, checked by `assert_chat_tree_with`).
    let embeddings = spans
        .iter()
        .find(|s| {
            s.name == "embeddings text-embedding-3-small"
                && s.parent_span_id.as_deref() == Some(tree.retrieval.span_id.as_str())
        })
        .unwrap();
    assert_eq!(embeddings.kind, SpanKind::Client);
    assert_eq!(
        embeddings.attr_str("gen_ai.request.model"),
        Some("text-embedding-3-small")
    );
    assert_eq!(
        embeddings.attr_str("gen_ai.provider.name"),
        Some("openai_compatible")
    );
    assert_eq!(
        embeddings.attr_i64("gen_ai.embeddings.dimension.count"),
        Some(384)
    );
    assert!(embeddings.attr_i64("gen_ai.usage.input_tokens").unwrap() > 0);

    // The key is nowhere in what was exported or logged.
    let exported = serde_json::to_string(&app.receiver.store.all()).unwrap();
    assert!(!exported.contains(API_KEY) && !exported.contains("sk-test"));
    let logs = app.logs.lock().unwrap().join("\n");
    assert!(!logs.contains(API_KEY), "the API key leaked into logs");
}

#[actix_web::test]
async fn provider_failures_are_clear_errors_and_error_spans_without_the_key() {
    let fake = FakeOpenAi::start_with(FakeOpenAiConfig {
        api_key: Some(API_KEY.into()),
        ..Default::default()
    });
    let app = start_with_openai(&fake, false, &[]).await;
    let generate = json!({"query": "What is a span?", "contexts": [
        {"id": "a.md#0", "source": "a.md", "text": "A span is one operation.", "score": 0.9}
    ]})
    .to_string();

    // (faults queued, expected status, expected code). async-openai retries
    // 429 and 5xx three times, so a persistent failure is four faults.
    let cases: Vec<(Vec<Fault>, u16, &str)> = vec![
        (vec![Fault::unauthorized()], 502, "model_auth_failed"),
        (vec![Fault::rate_limited(); 4], 503, "rate_limited"),
        (vec![Fault::server_error(); 4], 503, "model_unavailable"),
        (vec![Fault::Malformed], 502, "model_invalid_response"),
        (vec![Fault::Hang], 504, "model_timeout"),
    ];
    for (faults, status, code) in cases {
        for fault in faults {
            fake.push_fault(fault);
        }
        let started = std::time::Instant::now();
        let (got, body) = app
            .post(Service::LlmService, "/generate", &generate, &[])
            .await;
        assert_eq!(got, status, "{code}: {body}");
        assert_eq!(body["error"], code, "{body}");
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "{code} took {:?}",
            started.elapsed()
        );
        let message = body["message"].as_str().unwrap();
        assert!(!message.contains("sk-"), "{message}");
        let spans = app.trace(body["trace_id"].as_str().unwrap(), 2).await;
        let chat = span(&spans, "llm-service", "chat gpt-4o-mini");
        assert_eq!(chat.status.code, StatusCode::Error, "{code}");
        assert_eq!(chat.attr_str("error.type"), Some(code));
        assert!(!chat.status.message.contains("sk-"), "{:?}", chat.status);
    }

    // A transient 500 is retried and succeeds.
    fake.push_fault(Fault::server_error());
    let (status, body) = app
        .post(Service::LlmService, "/generate", &generate, &[])
        .await;
    assert_eq!(status, 200, "{body}");

    // Through the pipeline, a provider timeout is a 504 naming the cause.
    fake.push_fault(Fault::Hang);
    let (status, body) = app.chat(json!({"query": QUESTION}), &[]).await;
    assert_eq!(status, 504, "{body}");
    assert_eq!(body["error"], "model_timeout");
    app.assert_no_panics();
}
