//! Token cost per span through the real services: a priced model's `chat`
//! and `embeddings` spans carry `gen_ai.cost.{input,output,total}` equal to
//! their tokens times the list price (a dated snapshot priced as its base
//! model, streamed or not), the model judge's too; an unknown model's span
//! carries none; a `RAGTRACE_PRICES` file replaces the table, and a bad one
//! stops the service at startup; the offline pipeline costs 0. The
//! console's health line sums it.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use ragtrace::receiver::SpanRecord;
use serde_json::json;
use support::{Backend, SPANS_PER_CHAT, TestPipeline, span};
use testkit::fake_openai::{FakeOpenAi, FakeOpenAiConfig};

const QUESTION: &str = "What does the traceparent header contain?";
const COST_KEYS: [&str; 3] = [
    "gen_ai.cost.input",
    "gen_ai.cost.output",
    "gen_ai.cost.total",
];

/// `(input, output, total)` as the span carries them.
fn cost(span: &SpanRecord) -> (f64, f64, f64) {
    let key = |k: &str| {
        span.attributes
            .get(k)
            .and_then(|v| v.as_f64())
            .unwrap_or_else(|| panic!("{} has no {k}: {:?}", span.name, span.attributes))
    };
    (
        key("gen_ai.cost.input"),
        key("gen_ai.cost.output"),
        key("gen_ai.cost.total"),
    )
}

/// The span's cost is its tokens times `(input, output)` USD per 1M tokens.
fn assert_priced(span: &SpanRecord, per_million: (f64, f64)) -> f64 {
    let tokens = |k: &str| span.attr_i64(k).unwrap_or(0) as f64;
    let input = tokens("gen_ai.usage.input_tokens") * per_million.0 / 1e6;
    let output = tokens("gen_ai.usage.output_tokens") * per_million.1 / 1e6;
    let (got_input, got_output, got_total) = cost(span);
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-12;
    assert!(
        close(got_input, input) && close(got_output, output) && close(got_total, input + output),
        "{}: cost {:?}, expected ({input}, {output}) from {:?}",
        span.name,
        (got_input, got_output, got_total),
        span.attributes
    );
    got_total
}

fn assert_no_cost(span: &SpanRecord) {
    for key in COST_KEYS {
        assert!(
            !span.attributes.contains_key(key),
            "{} has {key}: {:?}",
            span.name,
            span.attributes
        );
    }
}

fn embeddings<'a>(spans: &'a [SpanRecord], model: &str) -> Vec<&'a SpanRecord> {
    let name = format!("embeddings {model}");
    let found: Vec<&SpanRecord> = spans.iter().filter(|s| s.name == name).collect();
    assert!(!found.is_empty(), "{}", ragtrace::tree::render(spans));
    found
}

/// The pipeline with llm-service on `chat` as `model`, and `extra` on top.
async fn with_model(chat: &FakeOpenAi, model: &str, extra: &[(&str, &str)]) -> TestPipeline {
    let base_url = chat.base_url();
    let mut env = vec![
        ("LLM_BASE_URL", base_url.as_str()),
        ("LLM_MODEL", model),
        ("LLM_API_KEY", "sk-test"),
    ];
    env.extend_from_slice(extra);
    TestPipeline::start(&env).await
}

/// A `RAGTRACE_PRICES` file with `json` in it, removed on drop.
struct PriceFile(PathBuf);

impl PriceFile {
    fn new(name: &str, json: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ragtrace-cost-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, json).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for PriceFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[actix_web::test]
async fn a_priced_model_costs_its_tokens_times_the_list_price() {
    // The API answers as a dated snapshot; it is priced as gpt-4o-mini
    // ($0.15 in, $0.60 out per 1M tokens).
    let chat = FakeOpenAi::start_with(FakeOpenAiConfig {
        response_model: Some("gpt-4o-mini-2024-07-18".into()),
        ..Default::default()
    });
    let embed = FakeOpenAi::start();
    let embed_url = embed.base_url();
    let app = with_model(
        &chat,
        "gpt-4o-mini",
        &[
            ("EMBEDDINGS_BASE_URL", embed_url.as_str()),
            ("EMBEDDINGS_MODEL", "text-embedding-3-small"),
            ("EMBEDDINGS_API_KEY", "sk-test"),
        ],
    )
    .await;
    let (status, body) = app.chat(json!({ "query": QUESTION }), &[]).await;
    assert_eq!(status, 200, "{body}");
    let remote = Backend {
        remote_embedder: true,
        ..Backend::EMBEDDED
    };
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), remote.spans_per_chat())
        .await;
    let chat_span = span(&spans, "llm-service", "chat gpt-4o-mini");
    assert_eq!(
        chat_span.attr_str("gen_ai.response.model"),
        Some("gpt-4o-mini-2024-07-18")
    );
    assert!(chat_span.attr_i64("gen_ai.usage.output_tokens").unwrap() > 0);
    let mut total = assert_priced(chat_span, (0.15, 0.60));
    // Confident AI's price per token (the default dialects include it).
    let per_token = |key: &str| chat_span.attributes[key].as_f64().unwrap();
    assert!((per_token("confident.llm.cost_per_input_token") - 0.15e-6).abs() < 1e-15);
    assert!((per_token("confident.llm.cost_per_output_token") - 0.60e-6).abs() < 1e-15);
    // The query's embeddings and the groundedness evaluator's, at $0.02.
    for embeddings in embeddings(&spans, "text-embedding-3-small") {
        total += assert_priced(embeddings, (0.02, 0.0));
    }
    let health = ragtrace::tree::health(&spans);
    assert!((health.cost.unwrap() - total).abs() < 1e-12, "{health}");
    assert!(
        health.to_string().contains(&format!(", cost ${total:.6}")),
        "{health}"
    );

    // Streamed: the usage comes in the last chunk, and the cost with it.
    let streamed = app.stream_chat(json!({ "query": QUESTION })).await;
    let done = streamed.done();
    let spans = app
        .trace(done.trace_id.as_deref().unwrap(), remote.spans_per_chat())
        .await;
    let chat_span = span(&spans, "llm-service", "chat gpt-4o-mini");
    assert_eq!(
        chat_span.attr_i64("gen_ai.usage.input_tokens"),
        Some(done.usage.input_tokens as i64)
    );
    assert_priced(chat_span, (0.15, 0.60));
    app.assert_no_panics();
}

#[actix_web::test]
async fn the_judges_chat_is_priced_and_counted_in_the_traces_cost() {
    let model = FakeOpenAi::start();
    let judge = FakeOpenAi::start_with(FakeOpenAiConfig {
        reply: Some(r#"{"score": 0.9, "explanation": "addresses the question"}"#.into()),
        ..Default::default()
    });
    let judge_url = judge.base_url();
    let app = with_model(
        &model,
        "gpt-4o-mini",
        &[
            ("EVAL_MODEL", "gpt-4.1-nano"),
            ("EVAL_BASE_URL", judge_url.as_str()),
        ],
    )
    .await;
    let (status, body) = app.chat(json!({ "query": QUESTION }), &[]).await;
    assert_eq!(status, 200, "{body}");
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT + 2)
        .await;
    let answer = assert_priced(
        span(&spans, "llm-service", "chat gpt-4o-mini"),
        (0.15, 0.60),
    );
    let judged = assert_priced(
        span(&spans, "query-processor", "chat gpt-4.1-nano"),
        (0.10, 0.40),
    );
    assert!(judged > 0.0);
    let health = ragtrace::tree::health(&spans);
    let total = answer + judged; // the hashing embedder's is 0
    assert!((health.cost.unwrap() - total).abs() < 1e-12, "{health}");
    assert!(
        health.evaluation_tokens > 0,
        "the judge's tokens stay apart"
    );
}

#[actix_web::test]
async fn an_unknown_model_records_no_cost_and_a_price_file_gives_it_one() {
    let chat = FakeOpenAi::start();
    let app = with_model(&chat, "local-llama-3", &[]).await;
    let (status, body) = app.chat(json!({ "query": QUESTION }), &[]).await;
    assert_eq!(status, 200, "{body}");
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT)
        .await;
    let chat_span = span(&spans, "llm-service", "chat local-llama-3");
    assert!(chat_span.attr_i64("gen_ai.usage.input_tokens").unwrap() > 0);
    assert_no_cost(chat_span);
    // The built-in embedder is still free, but a partial sum is no total.
    for embeddings in embeddings(&spans, "ragtrace-hashing-384") {
        assert_eq!(cost(embeddings), (0.0, 0.0, 0.0));
    }
    let health = ragtrace::tree::health(&spans);
    assert_eq!(health.cost, None, "{health}");
    assert!(!health.to_string().contains("cost"), "{health}");
    drop(app);

    // A price file replaces the table: the model has a price, and the
    // embedded one's entries are gone (the hashing embedder has none).
    let prices = PriceFile::new(
        "prices.json",
        r#"{"_source": "test", "models": {"local-llama-3": {"input": 1.5, "output": 4}}}"#,
    );
    let app = with_model(
        &chat,
        "local-llama-3",
        &[("RAGTRACE_PRICES", prices.path())],
    )
    .await;
    let (status, body) = app.chat(json!({ "query": QUESTION }), &[]).await;
    assert_eq!(status, 200, "{body}");
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT)
        .await;
    assert_priced(
        span(&spans, "llm-service", "chat local-llama-3"),
        (1.5, 4.0),
    );
    for embeddings in embeddings(&spans, "ragtrace-hashing-384") {
        assert_no_cost(embeddings);
    }
    app.assert_no_panics();
}

#[actix_web::test]
async fn a_bad_price_file_stops_each_service_at_startup_naming_it() {
    let malformed = PriceFile::new(
        "malformed.json",
        r#"{"models": {"gpt-4o": {"input": "2.50", "output": 10}}}"#,
    );
    let missing = "/nonexistent/ragtrace-prices.json";
    let cases = [
        (missing, "cannot read the price file"),
        (malformed.path(), "not a price table: models.gpt-4o.input"),
    ];
    for service in ["llm-service", "retrieval", "query-processor"] {
        for (path, problem) in cases {
            let output = support::command(service)
                .env("LISTEN_ADDR", "127.0.0.1:0")
                .env("OTEL_SDK_DISABLED", "true")
                .env("RAGTRACE_PRICES", path)
                .output();
            let output = tokio::time::timeout(Duration::from_secs(20), output)
                .await
                .expect("exits at once")
                .unwrap();
            assert!(!output.status.success(), "{service} started with {path}");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                stderr.contains(&format!("RAGTRACE_PRICES={path}: {problem}")),
                "{service}: {stderr}"
            );
        }
    }
}

#[actix_web::test]
async fn the_offline_pipeline_costs_zero() {
    let app = TestPipeline::start(&[]).await;
    let (status, body) = app.chat(json!({ "query": QUESTION }), &[]).await;
    assert_eq!(status, 200, "{body}");
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT)
        .await;
    let chat_span = span(&spans, "llm-service", "chat ragtrace-extractive-v1");
    assert!(chat_span.attr_i64("gen_ai.usage.output_tokens").unwrap() > 0);
    assert_eq!(cost(chat_span), (0.0, 0.0, 0.0));
    for embeddings in embeddings(&spans, "ragtrace-hashing-384") {
        assert_eq!(cost(embeddings), (0.0, 0.0, 0.0));
    }
    let health = ragtrace::tree::health(&spans);
    assert_eq!(health.cost, Some(0.0));
    assert!(
        health.to_string().contains("out), cost $0.000000;"),
        "{health}"
    );
}
