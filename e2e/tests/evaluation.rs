//! Online evaluation through the real services: the results in the
//! response, in the stream's `done` event and on the trace (evaluation
//! spans, `gen_ai.evaluation.result` events), for the offline generator and
//! for a model behind the fake OpenAI API; a fabricated citation fails
//! citation validity; the opt-in judge's `chat` span sits under its
//! evaluation and its tokens are not the answer's.

mod support;

use ragtrace::receiver::SpanKind;
use serde_json::{Value, json};
use support::evaluation::{Result as Evaluation, assert_evaluations};
use support::{SPANS_PER_CHAT, TestPipeline, assert_parent, span};
use testkit::fake_openai::{FakeOpenAi, FakeOpenAiConfig};

const QUESTION: &str = "What does the traceparent header contain?";

fn by_name<'a>(results: &'a [Evaluation], name: &str) -> &'a Evaluation {
    results.iter().find(|r| r.name == name).unwrap()
}

#[actix_web::test]
async fn the_offline_answer_is_evaluated_on_the_trace_in_the_response_and_in_the_stream() {
    let app = TestPipeline::start(&[]).await;
    let (status, body) = app.chat(json!({ "query": QUESTION }), &[]).await;
    assert_eq!(status, 200, "{body}");
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT)
        .await;
    let tool = span(&spans, "query-processor", "execute_tool process_query");
    let results = assert_evaluations(&spans, tool, &body["evaluations"], false);
    // The extractive generator copies cited sentences from the passages it
    // was given, which match the question: every evaluator passes.
    for result in &results {
        assert_eq!(result.label, "pass", "{result:?}");
    }
    assert_eq!(by_name(&results, "groundedness").score, 1.0);
    assert_eq!(by_name(&results, "citation_validity").score, 1.0);

    // The stream's `done` event carries the same results.
    let streamed = app.stream_chat(json!({ "query": QUESTION })).await;
    let done = streamed.done();
    let names: Vec<(&str, &str)> = done
        .evaluations
        .iter()
        .map(|e| (e.name.as_str(), e.label.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("context_relevance", "pass"),
            ("groundedness", "pass"),
            ("citation_validity", "pass")
        ]
    );
    let trace_id = done.trace_id.clone().unwrap();
    let spans = app.trace(&trace_id, SPANS_PER_CHAT).await;
    let tool = span(&spans, "query-processor", "execute_tool process_query");
    let evaluations = serde_json::to_value(&done.evaluations).unwrap();
    assert_evaluations(&spans, tool, &evaluations, false);

    // A question the corpus cannot answer: nothing relevant was retrieved.
    let (_, body) = app
        .chat(json!({ "query": "What is the capital of France?" }), &[])
        .await;
    let relevance = &body["evaluations"][0];
    assert_eq!(relevance["name"], "context_relevance");
    assert_eq!(relevance["label"], "fail", "{body}");
    app.assert_no_panics();
}

/// The pipeline with llm-service on the fake API (answers `reply`), the
/// built-in embedder, and `extra` on top.
async fn with_model(fake: &FakeOpenAi, extra: &[(&str, &str)]) -> TestPipeline {
    let base_url = fake.base_url();
    let mut env = vec![
        ("LLM_BASE_URL", base_url.as_str()),
        ("LLM_MODEL", "gpt-4o-mini"),
        ("LLM_API_KEY", "sk-test"),
    ];
    env.extend_from_slice(extra);
    TestPipeline::start(&env).await
}

#[actix_web::test]
async fn a_fabricated_citation_fails_citation_validity() {
    let fake = FakeOpenAi::start_with(FakeOpenAiConfig {
        reply: Some(
            "The traceparent header contains the version, the trace-id, the parent-id and \
             the trace-flags. [1] It also carries the user's password. [7]"
                .into(),
        ),
        ..Default::default()
    });
    let app = with_model(&fake, &[]).await;
    let (status, body) = app.chat(json!({ "query": QUESTION }), &[]).await;
    assert_eq!(status, 200, "{body}");
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT)
        .await;
    let tool = span(&spans, "query-processor", "execute_tool process_query");
    let results = assert_evaluations(&spans, tool, &body["evaluations"], false);
    let citations = by_name(&results, "citation_validity");
    // Two citations; `[7]` names no passage of the four retrieved.
    assert_eq!(citations.score, 0.5, "{body}");
    assert_eq!(citations.label, "fail");
    let explanation = body["evaluations"][2]["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("1 name no retrieved passage"),
        "{explanation}"
    );
    // The invented sentence is in no passage: half the answer is grounded.
    let groundedness = by_name(&results, "groundedness");
    assert_eq!(groundedness.score, 0.5, "{body}");
    assert_eq!(groundedness.label, "fail");
}

#[actix_web::test]
async fn the_judge_grades_under_its_evaluation_and_its_tokens_are_not_the_answers() {
    let model = FakeOpenAi::start();
    let judge = FakeOpenAi::start_with(FakeOpenAiConfig {
        reply: Some(r#"{"score": 0.9, "explanation": "addresses the question"}"#.into()),
        ..Default::default()
    });
    let judge_url = judge.base_url();
    let app = with_model(
        &model,
        &[
            ("EVAL_MODEL", "judge-model"),
            ("EVAL_BASE_URL", judge_url.as_str()),
        ],
    )
    .await;
    let (status, body) = app.chat(json!({ "query": QUESTION }), &[]).await;
    assert_eq!(status, 200, "{body}");
    let judged = &body["evaluations"][3];
    assert_eq!(judged["name"], "answer_relevance", "{body}");
    assert_eq!(judged["score"], 0.9);
    assert_eq!(judged["label"], "pass");

    // Two more spans: the judge's evaluation and its chat call.
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT + 2)
        .await;
    let evaluation = span(&spans, "query-processor", "evaluation answer_relevance");
    let chat = span(&spans, "query-processor", "chat judge-model");
    assert_parent(chat, evaluation);
    assert_eq!(chat.kind, SpanKind::Client);
    assert_eq!(chat.attr_str("gen_ai.operation.name"), Some("chat"));
    let judge_input = chat.attr_i64("gen_ai.usage.input_tokens").unwrap();
    assert!(judge_input > 0);
    assert_eq!(
        evaluation.attributes["gen_ai.evaluation.score.value"],
        Value::from(0.9)
    );
    // The answer's usage is llm-service's chat alone.
    let answer_chat = span(&spans, "llm-service", "chat gpt-4o-mini");
    assert_eq!(
        answer_chat.attr_i64("gen_ai.usage.input_tokens"),
        body["usage"]["input_tokens"].as_i64()
    );
    // The judge was asked about this answer, at temperature 0.
    let asked = &judge.requests()[0].body;
    assert_eq!(asked["model"], "judge-model");
    assert_eq!(asked["temperature"], 0.0);
    let prompt = asked["messages"][1]["content"].as_str().unwrap();
    assert!(prompt.contains(QUESTION) && prompt.contains(body["answer"].as_str().unwrap()));
}

#[actix_web::test]
async fn a_judge_that_fails_is_an_error_span_and_the_answer_still_arrives() {
    let model = FakeOpenAi::start();
    let judge = FakeOpenAi::start_with(FakeOpenAiConfig {
        reply: Some("I would rather not say.".into()),
        ..Default::default()
    });
    let judge_url = judge.base_url();
    let app = with_model(
        &model,
        &[
            ("EVAL_MODEL", "judge-model"),
            ("EVAL_BASE_URL", judge_url.as_str()),
        ],
    )
    .await;
    let (status, body) = app.chat(json!({ "query": QUESTION }), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["evaluations"].as_array().unwrap().len(), 3, "{body}");
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT + 2)
        .await;
    let evaluation = span(&spans, "query-processor", "evaluation answer_relevance");
    assert!(evaluation.is_error());
    assert_eq!(
        evaluation.attr_str("error.type"),
        Some("model_invalid_response")
    );
    assert!(
        !evaluation
            .attributes
            .contains_key("gen_ai.evaluation.score.value")
    );
}

#[actix_web::test]
async fn evaluation_can_be_switched_off() {
    let app = TestPipeline::start(&[("RAGTRACE_EVALUATIONS", "off")]).await;
    let (status, body) = app.chat(json!({ "query": QUESTION }), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["evaluations"], json!([]));
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT - 3)
        .await;
    assert!(spans.iter().all(|s| !s.name.starts_with("evaluation ")));
}
