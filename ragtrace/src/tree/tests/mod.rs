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

/// A `/chat` trace as the services emit it: gateway → query-processor →
/// retrieval and llm-service, each call a CLIENT span parenting the next
/// service's SERVER span (3 HTTP hops). With `mcp`, query-processor calls
/// retrieval's `search_documents` tool over MCP instead: its CLIENT span
/// `tools/call search_documents` parents both retrieval's MCP SERVER span
/// and the HTTP SERVER span `POST /mcp` that carried the request.
fn chat_trace(mcp: bool) -> Vec<SpanRecord> {
    use SpanKind::*;
    let search = if mcp {
        "tools/call search_documents"
    } else {
        "POST /retrieve"
    };
    let (gw, qp, rt, llm) = ("gateway", "query-processor", "retrieval", "llm-service");
    let tool = "execute_tool process_query";
    let mut spans = vec![
        sp("g1", None, gw, Server, "POST /chat", 0, 150),
        sp("g2", Some("g1"), gw, Client, "POST /process", 1, 149),
        sp("q1", Some("g2"), qp, Server, "POST /process", 2, 148),
        sp("t1", Some("q1"), qp, Internal, tool, 3, 147),
        sp("q2", Some("t1"), qp, Client, search, 4, 40),
        sp("r1", Some("q2"), rt, Server, search, 6, 38),
        sp("r2", Some("r1"), rt, Internal, "search ragtrace", 7, 37),
        sp("q3", Some("t1"), qp, Client, "POST /generate", 41, 146),
        sp("l1", Some("q3"), llm, Server, "POST /generate", 42, 145),
        sp("l2", Some("l1"), llm, Internal, "chat extractive", 43, 144),
    ];
    if mcp {
        spans.push(sp("h1", Some("q2"), rt, Server, "POST /mcp", 5, 39));
    }
    spans
        .into_iter()
        .map(|s| {
            let kv = chat_attributes(&s, mcp);
            attrs(s, &kv)
        })
        .collect()
}

/// The attributes of a [`chat_trace`] span.
fn chat_attributes(s: &SpanRecord, mcp: bool) -> Vec<(&'static str, Value)> {
    match s.span_id.as_str() {
        "t1" => vec![
            ("gen_ai.operation.name", json!("execute_tool")),
            ("gen_ai.tool.name", json!("process_query")),
        ],
        "q2" | "r1" if mcp => vec![
            ("mcp.method.name", json!("tools/call")),
            ("gen_ai.tool.name", json!("search_documents")),
            ("gen_ai.operation.name", json!("execute_tool")),
            ("network.transport", json!("tcp")),
            ("jsonrpc.request.id", json!("1")),
            ("mcp.protocol.version", json!("2025-06-18")),
        ],
        "l2" => vec![
            ("gen_ai.operation.name", json!("chat")),
            ("gen_ai.usage.input_tokens", json!(100)),
            ("gen_ai.usage.output_tokens", json!(50)),
        ],
        _ if s.name.starts_with("POST ") => vec![("http.request.method", json!("POST"))],
        _ => vec![],
    }
}
