//! What query-processor's evaluation adds to every `/chat` trace: one
//! `evaluation {name}` span per evaluator under the tool span, the same
//! results as `gen_ai.evaluation.result` events on the tool span and in
//! the response, and, with a remote embedder, the `POST /embed` hop.

use ragtrace::receiver::{SpanKind, SpanRecord};
use serde_json::Value;

use super::{assert_parent, span};

/// The default evaluators, in the order they report.
pub const EVALUATORS: [&str; 3] = ["context_relevance", "groundedness", "citation_validity"];

/// Spans the evaluation adds: one per evaluator, plus the `POST /embed` hop
/// (CLIENT, SERVER, `embeddings`) when the embedder is remote.
pub fn evaluation_spans(remote_embedder: bool) -> usize {
    EVALUATORS.len() + if remote_embedder { 3 } else { 0 }
}

/// One result as the response reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Result {
    pub name: String,
    pub score: f64,
    pub label: String,
}

/// Check the evaluation part of a `/chat` trace against the response's
/// `evaluations`, and return the results by name.
pub fn assert_evaluations(
    spans: &[SpanRecord],
    tool: &SpanRecord,
    evaluations: &Value,
    remote_embedder: bool,
) -> Vec<Result> {
    let results: Vec<Result> = evaluations
        .as_array()
        .unwrap_or_else(|| panic!("no evaluations in the response: {evaluations}"))
        .iter()
        .map(|e| Result {
            name: e["name"].as_str().unwrap().to_owned(),
            score: e["score"].as_f64().unwrap(),
            label: e["label"].as_str().unwrap().to_owned(),
        })
        .collect();
    let names: Vec<&str> = results.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, EVALUATORS);
    let events: Vec<_> = tool
        .events
        .iter()
        .filter(|e| e.name == "gen_ai.evaluation.result")
        .collect();
    assert_eq!(events.len(), results.len(), "{:?}", tool.events);
    for (result, event) in results.iter().zip(events) {
        assert!((0.0..=1.0).contains(&result.score), "{result:?}");
        assert!(["pass", "fail"].contains(&result.label.as_str()));
        let evaluation = span(
            spans,
            "query-processor",
            &format!("evaluation {}", result.name),
        );
        assert_parent(evaluation, tool);
        assert_eq!(evaluation.kind, SpanKind::Internal);
        for attributes in [&evaluation.attributes, &event.attributes] {
            assert_eq!(attributes["gen_ai.evaluation.name"], result.name.as_str());
            assert_eq!(
                attributes["gen_ai.evaluation.score.value"].as_f64(),
                Some(result.score)
            );
            assert_eq!(
                attributes["gen_ai.evaluation.score.label"],
                result.label.as_str()
            );
            assert!(attributes["gen_ai.evaluation.explanation"].is_string());
        }
    }
    let embed_calls: Vec<&SpanRecord> = spans.iter().filter(|s| s.name == "POST /embed").collect();
    if remote_embedder {
        let groundedness = span(spans, "query-processor", "evaluation groundedness");
        let client = span(spans, "query-processor", "POST /embed");
        let server = span(spans, "retrieval", "POST /embed");
        assert_parent(client, groundedness);
        assert_parent(server, client);
        assert!(
            spans
                .iter()
                .any(|s| s.parent_span_id.as_deref() == Some(&server.span_id)
                    && s.attr_str("gen_ai.operation.name") == Some("embeddings")),
            "no embeddings span under retrieval's POST /embed"
        );
    } else {
        assert!(
            embed_calls.is_empty(),
            "the in-process embedder needs no hop"
        );
    }
    results
}
