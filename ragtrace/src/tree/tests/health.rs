use serde_json::json;

use super::{T, pipeline, sp};
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
            roots: 1,
            orphans: 0,
            errors: 0,
            input_tokens: 201,
            output_tokens: 32,
        },
        "embedding tokens (9) are not counted"
    );
    assert_eq!(
        h.to_string(),
        "trace 4bf92f35…: 8 spans, 4 services (gateway, llm-service, query-processor, \
         retrieval), depth 5, 0 orphans, 0 errors, 233 tokens (201 in / 32 out)"
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
         depth 3, \
         0 orphans, 1 error, 248 tokens (211 in / 37 out)"
    );
    assert_eq!(
        health(&[]).to_string(),
        "no trace: 0 spans, 0 services (), depth 0, 0 roots, 0 orphans, 0 errors, 0 tokens (0 in / 0 out)"
    );
}
