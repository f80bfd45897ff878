//! The MCP hop, end to end: retrieval's `search_documents` tool called by
//! query-processor over Streamable HTTP (`RETRIEVAL_PROTOCOL=mcp`), and by
//! an MCP client from the same SDK over stdio (`ragtrace mcp`), with trace
//! context in `params._meta`. Every assertion is on what arrived: JSON-RPC
//! answers, OTLP spans and metrics.

mod support;

use std::time::Duration;

use ragtrace::receiver::metrics::MetricPoint;
use ragtrace::receiver::{Receiver, SpanKind, SpanRecord, StatusCode};
use ragtrace::tree::health;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, MetaObject, RequestMetaObject};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};
use support::{SPANS_PER_CHAT, TestPipeline, assert_parent, span};

const QUESTION: &str = "What does the traceparent header contain?";
const TOOL_SPAN: &str = "tools/call search_documents";
/// The MCP conventions' advisory buckets, written out: the test checks the
/// conventions, not that the code agrees with itself.
const MCP_BOUNDS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

fn mcp_pipeline_env() -> [(&'static str, &'static str); 2] {
    [
        ("RETRIEVAL_PROTOCOL", "mcp"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
    ]
}

/// The MCP attributes both ends of a `tools/call` carry.
fn assert_tool_call_attributes(span: &SpanRecord, transport: &str) {
    assert_eq!(span.attr_str("mcp.method.name"), Some("tools/call"));
    assert_eq!(span.attr_str("gen_ai.operation.name"), Some("execute_tool"));
    assert_eq!(span.attr_str("gen_ai.tool.name"), Some("search_documents"));
    assert_eq!(span.attr_str("network.transport"), Some(transport));
    let version = span.attr_str("mcp.protocol.version").unwrap_or_default();
    assert!(
        version.starts_with("20"),
        "mcp.protocol.version {version:?}"
    );
    assert!(span.attr_str("jsonrpc.request.id").is_some(), "{span:#?}");
    assert_eq!(span.status.code, StatusCode::Unset, "{span:#?}");
}

#[actix_web::test]
async fn the_tool_call_stands_where_post_retrieve_stood_in_one_tree() {
    let app = TestPipeline::start(&mcp_pipeline_env()).await;

    // The first request opens the session: an `initialize` CLIENT span
    // with retrieval's spans below it, in the same trace.
    let (status, first) = app.chat(json!({"query": QUESTION}), &[]).await;
    assert_eq!(status, 200, "{first}");
    // The HTTP tree's spans, with the tool call's 3 in place of `POST
    // /retrieve`'s 2, and `initialize` with its 4 (the CLIENT span, two
    // `POST /mcp` and retrieval's `initialize`).
    let spans = app
        .trace(first["trace_id"].as_str().unwrap(), SPANS_PER_CHAT + 5)
        .await;
    assert_one_tree(&spans, (2, 2));
    let initialize = span(&spans, "query-processor", "initialize");
    assert_eq!(initialize.kind, SpanKind::Client);
    assert_parent(span(&spans, "retrieval", "initialize"), initialize);
    // Its two HTTP requests (`initialize`, `notifications/initialized`)
    // are its children too, by their headers; the call's is the call's.
    let under = |parent: &SpanRecord| {
        let posts = spans.iter().filter(|s| s.name == "POST /mcp");
        posts
            .filter(|s| s.parent_span_id.as_deref() == Some(&parent.span_id))
            .count()
    };
    assert_eq!(under(initialize), 2, "{}", render(&spans));
    let first_call = span(&spans, "query-processor", TOOL_SPAN);
    assert_eq!(under(first_call), 1, "{}", render(&spans));

    // Later requests reuse it: the tree of an HTTP /chat, with the tool
    // call in place of `POST /retrieve`.
    let (status, body) = app.chat(json!({"query": QUESTION}), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["contexts"].as_array().unwrap().len(), 4, "{body}");
    assert_eq!(body["contexts"][0]["source"], "w3c-traceparent-header.md");
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT + 1)
        .await;
    assert_eq!(spans.len(), SPANS_PER_CHAT + 1, "{}", render(&spans));
    assert_one_tree(&spans, (2, 1));
    assert!(!spans.iter().any(|s| s.name.contains("/retrieve")));

    let tool = span(&spans, "query-processor", "execute_tool process_query");
    let client = span(&spans, "query-processor", TOOL_SPAN);
    let server = span(&spans, "retrieval", TOOL_SPAN);
    assert_eq!(
        (client.kind, server.kind),
        (SpanKind::Client, SpanKind::Server)
    );
    assert_parent(client, tool);
    // The MCP span's parent came from `params._meta`...
    assert_parent(server, client);
    assert_tool_call_attributes(client, "tcp");
    assert_tool_call_attributes(server, "tcp");
    assert_eq!(
        client.attr_str("jsonrpc.request.id"),
        server.attr_str("jsonrpc.request.id")
    );
    assert_eq!(
        client.attr_str("mcp.protocol.version"),
        server.attr_str("mcp.protocol.version")
    );
    assert_eq!(client.attr_str("server.address"), Some("127.0.0.1"));
    let session = server.attr_str("mcp.session.id");
    assert!(session.is_some_and(|id| !id.is_empty()), "{server:#?}");
    assert_eq!(client.attr_str("mcp.session.id"), session);
    // ...and the HTTP request's from its headers: both under the CLIENT span.
    assert_parent(span(&spans, "retrieval", "POST /mcp"), client);
    let retrieval = span(&spans, "retrieval", "retrieval ragtrace");
    assert_parent(retrieval, server);
    assert_parent(
        span(&spans, "retrieval", "embeddings ragtrace-hashing-384"),
        retrieval,
    );
    assert_parent(span(&spans, "retrieval", "search ragtrace"), retrieval);

    // Both ends' durations, in the conventions' histograms.
    let points = app
        .receiver
        .metrics
        .wait_until(Duration::from_secs(20), |points| {
            tool_calls(points, "query-processor", "mcp.client.operation.duration") >= 2
                && tool_calls(points, "retrieval", "mcp.server.operation.duration") >= 2
        })
        .await
        .unwrap_or_else(|points| panic!("no MCP durations: {points:#?}"));
    let server_point = points
        .iter()
        .find(|p| p.name == "mcp.server.operation.duration" && p.histogram().is_some())
        .unwrap();
    assert_eq!(server_point.unit, "s");
    assert_eq!(server_point.histogram().unwrap().bounds, MCP_BOUNDS);
    app.assert_no_panics();
}

/// How many `tools/call search_documents` a service's histogram counted.
fn tool_calls(points: &[MetricPoint], service: &str, name: &str) -> u64 {
    let subset = [
        ("mcp.method.name", json!("tools/call")),
        ("gen_ai.tool.name", json!("search_documents")),
        ("network.transport", json!("tcp")),
    ];
    points
        .iter()
        .filter(|p| p.service_name == service && p.name == name && p.has_attributes(&subset))
        .filter_map(|p| p.histogram())
        .map(|h| h.count)
        .sum()
}

/// One root, no orphans, no errors, and `hops` (http, mcp) hops.
fn assert_one_tree(spans: &[SpanRecord], hops: (usize, usize)) {
    let tree = health(spans);
    let counts = (
        tree.roots,
        tree.orphans,
        tree.errors,
        tree.http_hops,
        tree.mcp_hops,
    );
    assert_eq!(counts, (1, 0, 0, hops.0, hops.1), "{}", render(spans));
}

fn render(spans: &[SpanRecord]) -> String {
    ragtrace::tree::render(spans)
}

/// `ragtrace mcp`, exporting to `receiver`, as an rmcp child process.
fn stdio_server(receiver: &Receiver) -> TokioChildProcess {
    let mut command = support::command("ragtrace");
    command
        .arg("mcp")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "50");
    let (process, _) = TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start ragtrace mcp");
    process
}

fn search(query: &str, meta: Option<Value>) -> CallToolRequestParams {
    let mut params = CallToolRequestParams::new("search_documents").with_arguments(
        json!({"query": query, "top_k": 2})
            .as_object()
            .unwrap()
            .clone(),
    );
    if let Some(Value::Object(meta)) = meta {
        params.meta = Some(RequestMetaObject(MetaObject(meta)));
    }
    params
}

#[actix_web::test]
async fn over_stdio_the_callers_traceparent_in_meta_parents_the_server_span() {
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let client = ().serve(stdio_server(&receiver)).await.expect("initialize");

    // A caller's span, as an MCP host would send it in `_meta`.
    let (trace_id, parent_id) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let meta = json!({
        "traceparent": format!("00-{trace_id}-{parent_id}-01"),
        "tracestate": "host=stdio-test",
        "baggage": "user_id=stdio-user",
    });
    let result = client
        .call_tool(search(QUESTION, Some(meta)))
        .await
        .unwrap();
    assert_eq!(result.is_error, Some(false), "{result:?}");
    let contexts = &result.structured_content.as_ref().unwrap()["contexts"];
    assert_eq!(contexts.as_array().unwrap().len(), 2, "{result:?}");
    assert_eq!(contexts[0]["source"], "w3c-traceparent-header.md");

    let spans = receiver
        .store
        .wait_for_trace(trace_id, 4, Duration::from_secs(15))
        .await
        .unwrap_or_else(|partial| panic!("{}", render(&partial)));
    let server = span(&spans, "retrieval", TOOL_SPAN);
    assert_eq!(server.parent_span_id.as_deref(), Some(parent_id));
    assert_eq!(server.trace_state, "host=stdio-test");
    assert_eq!(
        server.attr_str("user.id"),
        Some("stdio-user"),
        "baggage from _meta"
    );
    assert_tool_call_attributes(server, "pipe");
    assert_eq!(
        server.attr_str("mcp.session.id"),
        None,
        "stdio has no session id"
    );
    assert_parent(span(&spans, "retrieval", "retrieval ragtrace"), server);

    // Without `_meta`, and with a malformed traceparent, the call succeeds
    // and starts a trace of its own.
    let bad = json!({"traceparent": "00-not-a-trace-id-01"});
    for meta in [None, Some(bad)] {
        let result = client
            .call_tool(search("What is baggage?", meta))
            .await
            .unwrap();
        assert_eq!(result.is_error, Some(false), "{result:?}");
    }
    let roots = receiver
        .store
        .wait_until(Duration::from_secs(15), |spans| {
            spans
                .iter()
                .filter(|s| s.name == TOOL_SPAN && s.is_root())
                .count()
                == 2
        })
        .await
        .unwrap_or_else(|spans| panic!("{}", render(&spans)));
    let roots: Vec<&SpanRecord> = roots
        .iter()
        .filter(|s| s.name == TOOL_SPAN && s.is_root())
        .collect();
    assert_ne!(roots[0].trace_id, roots[1].trace_id);
    assert!(
        roots
            .iter()
            .all(|s| s.trace_id != trace_id && s.status.code == StatusCode::Unset)
    );
    client.cancel().await.unwrap();
}
