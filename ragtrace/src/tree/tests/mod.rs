//! The tree's tests, one file per source file, and the trace they share: the
//! RAG pipeline's spans in a shuffled arrival order.

mod build;
mod health;
mod printer;
mod render;

use serde_json::{Value, json};

use super::TreeNode;
use crate::receiver::tests::rec;
use crate::receiver::{SpanKind, SpanRecord};

const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn sp(
    id: &str,
    parent: Option<&str>,
    service: &str,
    kind: SpanKind,
    name: &str,
    start_ms: u64,
    end_ms: u64,
) -> SpanRecord {
    let mut s = rec(T, id, parent);
    s.service_name = service.to_string();
    s.kind = kind;
    s.name = name.to_string();
    s.start_unix_nanos = 1_700_000_000_000_000_000 + start_ms * 1_000_000;
    s.end_unix_nanos = 1_700_000_000_000_000_000 + end_ms * 1_000_000;
    s
}

fn attrs(mut s: SpanRecord, kv: &[(&str, Value)]) -> SpanRecord {
    for (k, v) in kv {
        s.attributes.insert(k.to_string(), v.clone());
    }
    s
}

/// The RAG pipeline's trace, deliberately in a shuffled arrival order
/// (exporters flush per service, children usually first).
fn pipeline() -> Vec<SpanRecord> {
    use SpanKind::*;
    vec![
        attrs(
            sp(
                "c2",
                Some("q1"),
                "llm-service",
                Server,
                "POST /generate",
                40,
                140,
            ),
            &[],
        ),
        attrs(
            sp(
                "d2",
                Some("c2"),
                "llm-service",
                Client,
                "chat llama3",
                41,
                139,
            ),
            &[
                ("gen_ai.operation.name", json!("chat")),
                ("gen_ai.request.model", json!("llama3")),
                ("gen_ai.response.model", json!("llama3:8b")),
                ("gen_ai.usage.input_tokens", json!(201)),
                ("gen_ai.usage.output_tokens", json!(32)),
            ],
        ),
        attrs(
            sp("g1", None, "gateway", Server, "POST /v1/chat", 0, 150),
            &[("http.response.status_code", json!(200))],
        ),
        sp("g2", Some("g1"), "gateway", Client, "POST", 1, 149),
        sp(
            "q1",
            Some("g2"),
            "query-processor",
            Server,
            "POST /query",
            2,
            148,
        ),
        attrs(
            sp("c1", Some("q1"), "retrieval", Server, "POST /search", 3, 30),
            &[
                ("gen_ai.request.top_k", json!(4)),
                ("gen_ai.data_source.id", json!("corpus")),
            ],
        ),
        attrs(
            sp(
                "e1",
                Some("c1"),
                "retrieval",
                Client,
                "embeddings nomic",
                4,
                10,
            ),
            &[
                ("gen_ai.operation.name", json!("embeddings")),
                ("gen_ai.usage.input_tokens", json!(9)),
            ],
        ),
        attrs(
            sp(
                "s1",
                Some("c1"),
                "retrieval",
                Internal,
                "vector search",
                11,
                29,
            ),
            &[("db.system.name", json!("in-memory"))],
        ),
    ]
}

fn ids(nodes: &[TreeNode<'_>]) -> Vec<String> {
    nodes.iter().map(|n| n.span.span_id.clone()).collect()
}
