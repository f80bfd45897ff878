use serde_json::json;

use super::{T, chat_trace, pipeline, sp};
use crate::receiver::{SpanKind, StatusCode};
use crate::tree::{Health, health};

#[test]
fn health_counts() {
    let spans = pipeline();
    let h = health(&spans);
    assert_eq!(
        h,
        Health {
            trace_ids: vec![T.to_string()],
            spans: 8,
            services: vec![
                "gateway".into(),
                "llm-service".into(),
                "query-processor".into(),
                "retrieval".into()
            ],
            depth: 5,
            // gateway → query-processor; retrieval's and llm-service's
            // SERVER spans hang off query-processor's SERVER span.
            http_hops: 1,
            mcp_hops: 0,
            roots: 1,
            orphans: 0,
            errors: 0,
            input_tokens: 201,
            output_tokens: 32,
            evaluation_tokens: 0,
            cost: None,
            evaluations: vec![],
        },
        "embedding tokens (9) are not counted"
    );
    assert_eq!(
        h.to_string(),
        "trace 4bf92f35…: 8 spans, 4 services (gateway, llm-service, query-processor, \
         retrieval), depth 5, 1 hop, 0 orphans, 0 errors, 233 tokens (201 in / 32 out)"
    );

    // Broken trace: no gateway, an error, tokens as strings and on
    // another inference operation.
    let mut spans = pipeline();
    spans.retain(|s| !s.span_id.starts_with('g'));
    spans[0].status.code = StatusCode::Error;
    let mut extra = sp(
        "t",
        Some("c2"),
        "llm-service",
        SpanKind::Client,
        "tc",
        50,
        60,
    );
    extra
        .attributes
        .insert("gen_ai.operation.name".into(), json!("text_completion"));
    extra
        .attributes
        .insert("gen_ai.usage.input_tokens".into(), json!("10"));
    extra
        .attributes
        .insert("gen_ai.usage.output_tokens".into(), json!(5.0));
    spans.push(extra);
    let h = health(&spans);
    // No parentless span: the entry span (parent in the caller's
    // process) is the root, not an orphan.
    assert_eq!((h.roots, h.orphans, h.errors, h.depth), (1, 0, 1, 3));
    assert_eq!((h.input_tokens, h.output_tokens), (211, 37));
    assert_eq!(
        h.to_string(),
        "trace 4bf92f35…: 7 spans, 3 services (llm-service, query-processor, retrieval), \
         depth 3, 0 hops, 0 orphans, 1 error, 248 tokens (211 in / 37 out)"
    );
    assert_eq!(
        health(&[]).to_string(),
        "no trace: 0 spans, 0 services (), depth 0, 0 hops, 0 roots, 0 orphans, 0 errors, 0 tokens (0 in / 0 out)"
    );
}

#[test]
fn counts_http_hops() {
    let mut spans = chat_trace(false);
    spans.reverse();
    let h = health(&spans);
    assert_eq!((h.http_hops, h.mcp_hops, h.hops()), (3, 0, 3));
    assert_eq!(
        h.to_string(),
        "trace 4bf92f35…: 10 spans, 4 services (gateway, llm-service, query-processor, \
         retrieval), depth 7, 3 hops, 0 orphans, 0 errors, 150 tokens (100 in / 50 out)"
    );
}

#[test]
fn counts_an_mcp_hop_once_and_not_its_http_transport() {
    let spans = chat_trace(true);
    let transport = spans.iter().find(|s| s.name == "POST /mcp").unwrap();
    assert_eq!(transport.parent_span_id.as_deref(), Some("q2"));
    let h = health(&spans);
    assert_eq!((h.http_hops, h.mcp_hops, h.hops()), (2, 1, 3));
    assert_eq!(
        h.to_string(),
        "trace 4bf92f35…: 11 spans, 4 services (gateway, llm-service, query-processor, \
         retrieval), depth 7, 3 hops (2 http, 1 mcp), 0 orphans, 0 errors, 150 tokens \
         (100 in / 50 out)"
    );

    // Over stdio there is no `POST /mcp`, and the MCP SERVER span's parent
    // is in the client's process: the entry span, still an MCP hop.
    let mut spans = chat_trace(true);
    spans.retain(|s| s.service_name == "retrieval" && s.name != "POST /mcp");
    let h = health(&spans);
    assert_eq!((h.http_hops, h.mcp_hops, h.roots, h.orphans), (0, 1, 1, 0));
    assert_eq!(
        h.to_string(),
        "trace 4bf92f35…: 2 spans, 1 service (retrieval), depth 2, 1 hop (0 http, 1 mcp), \
         0 orphans, 0 errors, 0 tokens (0 in / 0 out)"
    );
}

#[test]
fn evaluations_close_the_line_and_a_judges_tokens_are_not_the_answers() {
    let mut spans = pipeline();
    let tool = spans
        .iter()
        .find(|s| s.service_name == "query-processor")
        .unwrap()
        .span_id
        .clone();
    let evaluation = |id: &str, name: &str, score: f64, label: &str, start: u64| {
        let mut span = sp(
            id,
            Some(&tool),
            "query-processor",
            SpanKind::Internal,
            id,
            start,
            start + 1,
        );
        span.attributes
            .insert("gen_ai.evaluation.name".into(), json!(name));
        span.attributes
            .insert("gen_ai.evaluation.score.value".into(), json!(score));
        span.attributes
            .insert("gen_ai.evaluation.score.label".into(), json!(label));
        span
    };
    spans.push(evaluation("e2", "citation_validity", 0.5, "fail", 92));
    spans.push(evaluation("e1", "groundedness", 1.0, "pass", 91));
    let mut judge = sp(
        "j",
        Some("e1"),
        "query-processor",
        SpanKind::Client,
        "chat judge",
        91,
        92,
    );
    judge
        .attributes
        .insert("gen_ai.operation.name".into(), json!("chat"));
    judge
        .attributes
        .insert("gen_ai.usage.input_tokens".into(), json!(300));
    judge
        .attributes
        .insert("gen_ai.usage.output_tokens".into(), json!(20));
    spans.push(judge);
    // A failed evaluator has no score: not listed.
    let mut failed = evaluation("e3", "answer_relevance", 0.0, "", 93);
    failed.attributes.remove("gen_ai.evaluation.score.value");
    spans.push(failed);

    let h = health(&spans);
    assert_eq!(
        (h.input_tokens, h.output_tokens, h.evaluation_tokens),
        (201, 32, 320)
    );
    assert!(
        h.to_string().ends_with(
            "233 tokens (201 in / 32 out) (+320 evaluating); groundedness 1.00 pass, \
             citation_validity 0.50 fail"
        ),
        "{h}"
    );
}

#[test]
fn the_cost_of_every_priced_span_follows_the_tokens() {
    let mut spans = pipeline();
    let set = |spans: &mut Vec<crate::receiver::SpanRecord>, id: &str, cost: f64| {
        let span = spans.iter_mut().find(|s| s.span_id == id).unwrap();
        span.attributes
            .insert("gen_ai.cost.total".into(), json!(cost));
    };
    // The chat (201 in, 32 out) and the query's embeddings.
    set(&mut spans, "d2", 0.000123);
    set(&mut spans, "e1", 0.000001);
    // A judge's chat under its evaluation: its tokens apart, its cost in.
    let mut judge = sp(
        "j",
        Some("q1"),
        "query-processor",
        SpanKind::Client,
        "chat judge",
        91,
        92,
    );
    judge
        .attributes
        .insert("gen_ai.operation.name".into(), json!("chat"));
    judge
        .attributes
        .insert("gen_ai.cost.total".into(), json!(0.0001));
    spans.push(judge);
    let h = health(&spans);
    assert!((h.cost.unwrap() - 0.000224).abs() < 1e-12, "{:?}", h.cost);
    assert!(
        h.to_string()
            .ends_with("233 tokens (201 in / 32 out), cost $0.000224"),
        "{h}"
    );

    // Free models cost 0, and say so.
    let mut spans = pipeline();
    set(&mut spans, "d2", 0.0);
    set(&mut spans, "e1", 0.0);
    assert!(health(&spans).to_string().ends_with(", cost $0.000000"));
    // No price anywhere: no cost at all, not $0.
    let h = health(&pipeline());
    assert_eq!(h.cost, None);
    assert!(!h.to_string().contains("cost"), "{h}");
    // A chat model without a price: the embeddings' cost alone would
    // understate the trace's, so none is shown.
    let mut spans = pipeline();
    set(&mut spans, "e1", 0.0);
    assert_eq!(health(&spans).cost, None);
}
