use serde_json::json;

use super::{T, chat_trace, pipeline, sp};
use crate::receiver::{SpanKind, SpanStatus, StatusCode};
use crate::tree::render;

#[test]
fn renders_tree_lines() {
    let mut spans = pipeline();
    spans[0].status = SpanStatus {
        code: StatusCode::Error,
        message: "model overloaded".into(),
    };
    spans[0]
        .attributes
        .insert("error.type".into(), json!("overloaded"));
    spans[0]
        .attributes
        .insert("http.response.status_code".into(), json!(503));
    let text = render(&spans);
    println!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + spans.len() + 1, "header, spans, health");
    assert_eq!(lines[0], format!("trace {T}"));
    let starts = [
        "  [gateway] SERVER POST /v1/chat ",
        "  └─ [gateway] CLIENT POST ",
        "     └─ [query-processor] SERVER POST /query ",
        "        ├─ [retrieval] SERVER POST /search ",
        "        │  ├─ [retrieval] CLIENT embeddings nomic ",
        "        │  └─ [retrieval] INTERNAL vector search ",
        "        └─ [llm-service] SERVER POST /generate ",
        "           └─ [llm-service] CLIENT chat llama3 ",
    ];
    for (line, start) in lines[1..].iter().zip(starts) {
        assert!(
            line.starts_with(start),
            "{line:?} should start with {start:?}"
        );
    }
    // Durations, aligned in one column.
    assert!(lines[1].contains("150.0 ms"), "{}", lines[1]);
    assert!(lines[5].contains("  6.0 ms"), "{}", lines[5]);
    let col = |l: &str| l[..l.find(" ms").unwrap()].chars().count();
    assert!(lines[1..9].iter().all(|l| col(l) == col(lines[1])));
    // Key attributes; a 200 status is not shown, a 503 is.
    assert!(!lines[1].contains("http.response.status_code"));
    assert!(lines[4].ends_with(" ms  gen_ai.request.top_k=4 gen_ai.data_source.id=corpus"));
    assert!(lines[5].ends_with("gen_ai.usage.input_tokens=9"));
    assert!(lines[6].ends_with("db.system.name=in-memory"));
    assert!(
        lines[7].ends_with(
            "http.response.status_code=503 error.type=overloaded ERROR: model overloaded"
        )
    );
    assert!(lines[8].ends_with(
        "gen_ai.request.model=llama3 gen_ai.response.model=llama3:8b \
         gen_ai.usage.input_tokens=201 gen_ai.usage.output_tokens=32"
    ));
    assert!(
        lines[3].ends_with(" ms"),
        "no attributes, no trailing space"
    );
    assert_eq!(
        lines[9],
        "  trace 4bf92f35…: 8 spans, 4 services (gateway, llm-service, query-processor, \
         retrieval), depth 5, 1 hop, 0 orphans, 1 error, 233 tokens (201 in / 32 out)"
    );
    assert!(!text.contains('\x1b'), "no ANSI escapes");
    assert_eq!(render(&spans), text, "deterministic");
}

#[test]
fn renders_orphans_quoted_values_and_several_traces() {
    let mut a = sp("o", Some("gone"), "svc", SpanKind::Internal, "lost", 0, 1);
    a.attributes.insert("error.type".into(), json!("has space"));
    let mut b = sp("r", None, "svc", SpanKind::Server, "other", 0, 2);
    b.trace_id = "00000000000000000000000000000001".into();
    // Trace T has a real root, so its span with a missing parent is an orphan.
    let root = sp("t", None, "svc", SpanKind::Server, "root", 5, 9);
    let text = render(&[a, b, root]);
    let blocks: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(blocks.len(), 2);
    assert!(
        blocks[0].starts_with(&format!(
            "trace {T}\n  [svc] INTERNAL lost (orphan)  1.0 ms  error.type=\"has space\"\n"
        )),
        "{text}"
    );
    assert!(
        blocks[0].ends_with("depth 1, 0 hops, 1 orphan, 0 errors, 0 tokens (0 in / 0 out)"),
        "{text}"
    );
    assert!(
        blocks[1]
            .starts_with("trace 00000000000000000000000000000001\n  [svc] SERVER other  2.0 ms\n"),
        "{text}"
    );
    assert_eq!(render(&[]), "(no spans)");
}

#[test]
fn renders_http_hops() {
    let text = render(&chat_trace(false));
    println!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 10 + 1, "header, spans, health");
    // The tool's name is in the span name; no `gen_ai.tool.name` off MCP.
    assert!(
        lines[4].starts_with("        └─ [query-processor] INTERNAL execute_tool process_query "),
        "{}",
        lines[4]
    );
    assert!(lines[4].ends_with(" ms"), "{}", lines[4]);
    assert_eq!(
        lines[11],
        "  trace 4bf92f35…: 10 spans, 4 services (gateway, llm-service, query-processor, \
         retrieval), depth 7, 3 hops, 0 orphans, 0 errors, 150 tokens (100 in / 50 out)"
    );
}

#[test]
fn renders_an_mcp_hop_with_its_method_and_tool() {
    let text = render(&chat_trace(true));
    println!("{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1 + 11 + 1, "header, spans, health");
    let mcp = " ms  mcp.method.name=tools/call gen_ai.tool.name=search_documents";
    let starts = [
        (
            5,
            "           ├─ [query-processor] CLIENT tools/call search_documents ",
        ),
        (6, "           │  ├─ [retrieval] SERVER POST /mcp "),
        (
            7,
            "           │  └─ [retrieval] SERVER tools/call search_documents ",
        ),
    ];
    for (i, start) in starts {
        assert!(
            lines[i].starts_with(start),
            "{:?} should start with {start:?}",
            lines[i]
        );
    }
    assert!(lines[5].ends_with(mcp), "{}", lines[5]);
    assert!(lines[6].ends_with(" ms"), "{}", lines[6]);
    assert!(lines[7].ends_with(mcp), "{}", lines[7]);
    assert!(lines[4].ends_with(" ms"), "{}", lines[4]);
    assert_eq!(
        lines[12],
        "  trace 4bf92f35…: 11 spans, 4 services (gateway, llm-service, query-processor, \
         retrieval), depth 7, 3 hops (2 http, 1 mcp), 0 orphans, 0 errors, 150 tokens \
         (100 in / 50 out)"
    );
}
