//! Bad input to the MCP server gets a clear JSON-RPC error and breaks
//! nothing: over Streamable HTTP (retrieval's `/mcp`) and over stdio
//! (`ragtrace mcp`). A retrieval that fails is a tool error on both ends of
//! the hop.

mod support;

use std::process::Stdio;
use std::time::Duration;

use ragtrace::launcher::Service;
use ragtrace::receiver::StatusCode;
use ragtrace::receiver::metrics::MetricPoint;
use serde_json::{Value, json};
use support::{TestPipeline, assert_parent, span};
use testkit::fake_qdrant::FakeQdrant;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const ACCEPT: (&str, &str) = ("accept", "application/json, text/event-stream");
const VERSION: &str = "2025-06-18";

/// One MCP POST to retrieval's `/mcp`: status, the JSON-RPC message (from a
/// JSON body or the last `data:` event of an SSE body), the session id.
async fn rpc(
    app: &TestPipeline,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, Value, Option<String>) {
    let mut request = app
        .client
        .post(format!("{}/mcp", app.url(Service::Retrieval)))
        .insert_header(("content-type", "application/json"))
        .insert_header(ACCEPT);
    for header in headers {
        request = request.insert_header(*header);
    }
    let mut response = request.send_body(body.to_owned()).await.expect("send");
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.body().limit(1 << 20).await.expect("body");
    let text = String::from_utf8_lossy(&bytes);
    let json = text
        .lines()
        .rev()
        .filter_map(|line| line.strip_prefix("data:").map(str::trim).or(Some(line)))
        .find_map(|line| serde_json::from_str::<Value>(line).ok())
        .unwrap_or(Value::Null);
    (response.status().as_u16(), json, session)
}

fn call(id: u32, name: &str, arguments: Value) -> String {
    let params = json!({"name": name, "arguments": arguments});
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}).to_string()
}

fn initialize(id: u32) -> String {
    let params = json!({"protocolVersion": VERSION, "capabilities": {},
                        "clientInfo": {"name": "e2e", "version": "1"}});
    json!({"jsonrpc": "2.0", "id": id, "method": "initialize", "params": params}).to_string()
}

/// The JSON-RPC error of `answer`: its code and message.
fn error(answer: &Value) -> (i64, String) {
    let error = &answer["error"];
    let code = error["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error: {answer}"));
    (code, error["message"].as_str().unwrap().to_owned())
}

#[actix_web::test]
async fn bad_requests_over_http_get_json_rpc_errors_and_break_nothing() {
    let app = TestPipeline::start(&[]).await;
    let query = call(1, "search_documents", json!({"query": "What is a span?"}));

    // Refused before any session or handler: still JSON-RPC errors.
    let (status, answer, _) = rpc(&app, &query, &[]).await;
    assert_eq!((status, error(&answer).0), (400, -32600), "{answer}");
    assert!(
        error(&answer).1.contains("Session ID is required"),
        "{answer}"
    );
    let (status, answer, _) = rpc(&app, "garbage{", &[]).await;
    assert_eq!((status, error(&answer).0), (400, -32700), "{answer}");
    let oversized = call(1, "search_documents", json!({"query": "a".repeat(300_000)}));
    let (status, answer, _) = rpc(&app, &oversized, &[]).await;
    assert_eq!((status, error(&answer).0), (413, -32600), "{answer}");
    let (status, answer, _) = rpc(&app, "{}", &[]).await;
    assert_eq!((status, error(&answer).0), (400, -32600), "{answer}");
    let (status, answer, _) = rpc(&app, &initialize(0), &[("host", "evil.example")]).await;
    assert_eq!((status, error(&answer).0), (403, -32600), "{answer}");

    let (status, answer, session) = rpc(&app, &initialize(0), &[]).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["result"]["serverInfo"]["name"], "retrieval");
    let session = session.expect("a session id");
    let in_session = [
        ("mcp-session-id", session.as_str()),
        ("mcp-protocol-version", VERSION),
    ];
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, _, _) = rpc(&app, &initialized.to_string(), &in_session).await;
    assert_eq!(status, 202);

    // Arguments the tool cannot start with: invalid params (-32602).
    let bad_calls = [
        (
            call(2, "no_such_tool", json!({})),
            "unknown tool: no_such_tool",
        ),
        (
            call(3, "search_documents", json!({})),
            "missing field `query`",
        ),
        (
            call(4, "search_documents", json!({"query": 5})),
            "`query`: invalid type: integer",
        ),
        (
            call(
                5,
                "search_documents",
                json!({"query": "x", "top_k": "secret-3"}),
            ),
            "`top_k`: invalid type: string, expected u32",
        ),
        (
            call(6, "search_documents", json!({"query": "x", "top_k": 99})),
            "between 1 and 20",
        ),
        (
            call(7, "search_documents", json!({"query": "x", "k": 1})),
            "unknown field `k`",
        ),
        (call(8, "search_documents", json!({"query": "  "})), "query"),
    ];
    for (request, expected) in &bad_calls {
        let (status, answer, _) = rpc(&app, request, &in_session).await;
        assert_eq!(
            (status, error(&answer).0),
            (200, -32602),
            "{request}: {answer}"
        );
        assert!(error(&answer).1.contains(expected), "{request}: {answer}");
        // An argument is content: the error names it, never quotes it.
        assert!(!error(&answer).1.contains("secret"), "{answer}");
    }

    // The failed call is an error span in the caller's trace.
    let (trace_id, parent_id) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let traced = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
        "name": "no_such_tool", "arguments": {},
        "_meta": {"traceparent": format!("00-{trace_id}-{parent_id}-01")}}});
    let (_, answer, _) = rpc(&app, &traced.to_string(), &in_session).await;
    assert_eq!(error(&answer).0, -32602);
    let spans = app.trace(trace_id, 1).await;
    // A tool the server does not have names no span: the name is the
    // client's to choose, and span names must stay few.
    let failed = span(&spans, "retrieval", "tools/call");
    assert_eq!(failed.attr_str("gen_ai.tool.name"), Some("no_such_tool"));
    assert_eq!(failed.parent_span_id.as_deref(), Some(parent_id));
    assert_eq!(failed.status.code, StatusCode::Error);
    assert_eq!(failed.attr_str("error.type"), Some("-32602"));
    assert_eq!(failed.attr_str("rpc.response.status_code"), Some("-32602"));

    // Nothing broke: the session still answers, tools and resources.
    let (_, answer, _) = rpc(&app, &query, &in_session).await;
    let contexts = answer["result"]["structuredContent"]["contexts"].as_array();
    assert_eq!(
        contexts.map(Vec::len),
        Some(4),
        "the default top_k: {answer}"
    );
    let tools = json!({"jsonrpc": "2.0", "id": 13, "method": "tools/list"}).to_string();
    let (_, answer, _) = rpc(&app, &tools, &in_session).await;
    let tool = &answer["result"]["tools"][0];
    assert_eq!(tool["name"], "search_documents", "{answer}");
    assert_eq!(
        tool["inputSchema"]["required"],
        json!(["query"]),
        "{answer}"
    );
    assert_eq!(
        tool["outputSchema"]["required"],
        json!(["contexts"]),
        "{answer}"
    );
    let list = json!({"jsonrpc": "2.0", "id": 10, "method": "resources/list"}).to_string();
    let (_, answer, _) = rpc(&app, &list, &in_session).await;
    let uri = "corpus:///w3c-traceparent-header.md";
    let resources = answer["result"]["resources"].as_array().unwrap();
    assert!(resources.iter().any(|r| r["uri"] == uri), "{answer}");
    let read = |id: u32, uri: &str| {
        json!({"jsonrpc": "2.0", "id": id, "method": "resources/read", "params": {"uri": uri}})
            .to_string()
    };
    let (_, answer, _) = rpc(&app, &read(11, uri), &in_session).await;
    let text = answer["result"]["contents"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(text.contains("traceparent"), "{answer}");
    let (_, answer, _) = rpc(&app, &read(12, "corpus:///nope.md"), &in_session).await;
    assert_eq!(error(&answer).0, -32002, "{answer}");
    // A resource's URI is an attribute, not part of the span name.
    let traced_read = json!({"jsonrpc": "2.0", "id": 14, "method": "resources/read", "params": {
        "uri": uri, "_meta": {"traceparent": format!("00-{trace_id}-{parent_id}-01")}}});
    rpc(&app, &traced_read.to_string(), &in_session).await;
    let spans = app.trace(trace_id, 2).await;
    let read_span = span(&spans, "retrieval", "resources/read");
    assert_eq!(read_span.attr_str("mcp.resource.uri"), Some(uri));
    app.assert_no_panics();
}

#[actix_web::test]
async fn a_failed_search_is_a_tool_error_on_both_ends_of_the_hop() {
    let mut qdrant = FakeQdrant::start();
    let url = qdrant.url();
    let app = TestPipeline::start(&[
        ("QDRANT_URL", &url),
        ("RETRIEVAL_PROTOCOL", "mcp"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "200"),
    ])
    .await;
    qdrant.stop();

    let (status, body) = app.chat(json!({"query": "What is a span?"}), &[]).await;
    // The tool's error code is relayed like an HTTP hop's, with its status.
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "vector_store_unavailable", "{body}");
    let spans = app.trace(body["trace_id"].as_str().unwrap(), 12).await;
    let client = span(&spans, "query-processor", "tools/call search_documents");
    let server = span(&spans, "retrieval", "tools/call search_documents");
    assert_parent(server, client);
    for end in [client, server] {
        assert_eq!(end.status.code, StatusCode::Error, "{end:#?}");
        assert_eq!(end.attr_str("error.type"), Some("tool_error"), "{end:#?}");
    }
    let search = span(&spans, "retrieval", "search ragtrace");
    assert_eq!(
        search.attr_str("error.type"),
        Some("vector_store_unavailable")
    );
    // And in both ends' duration metrics.
    let failed = [
        ("error.type", json!("tool_error")),
        ("mcp.method.name", json!("tools/call")),
    ];
    let counted = |points: &[MetricPoint], service: &str, name: &str| {
        points
            .iter()
            .any(|p| p.service_name == service && p.name == name && p.has_attributes(&failed))
    };
    app.receiver
        .metrics
        .wait_until(Duration::from_secs(20), |points| {
            counted(points, "query-processor", "mcp.client.operation.duration")
                && counted(points, "retrieval", "mcp.server.operation.duration")
        })
        .await
        .unwrap_or_else(|points| panic!("no failed MCP durations: {points:#?}"));
    app.assert_no_panics();
}

/// Send `line` to the server's stdin and read one line of its stdout.
async fn exchange(
    stdin: &mut tokio::process::ChildStdin,
    stdout: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    line: &str,
) -> Value {
    stdin
        .write_all(format!("{line}\n").as_bytes())
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
        .await
        .expect("an answer within 20 s")
        .unwrap()
        .expect("a line");
    serde_json::from_str(&answer).unwrap_or_else(|_| panic!("not JSON: {answer}"))
}

#[actix_web::test]
async fn garbage_on_stdio_gets_a_parse_error_and_the_session_goes_on() {
    let mut server = support::command("ragtrace")
        .arg("mcp")
        .env("OTEL_SDK_DISABLED", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start ragtrace mcp");
    let mut stdin = server.stdin.take().unwrap();
    let mut stdout = BufReader::new(server.stdout.take().unwrap()).lines();

    // A notification before any request would end rmcp's session: dropped.
    let early = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    stdin
        .write_all(format!("{early}\n").as_bytes())
        .await
        .unwrap();
    let answer = exchange(&mut stdin, &mut stdout, "this is not json").await;
    assert_eq!(
        (error(&answer).0, &answer["id"]),
        (-32700, &Value::Null),
        "{answer}"
    );
    let oversized = call(1, "search_documents", json!({"query": "a".repeat(300_000)}));
    let answer = exchange(&mut stdin, &mut stdout, &oversized).await;
    assert_eq!(error(&answer).0, -32600, "{answer}");
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}).to_string();
    let answer = exchange(&mut stdin, &mut stdout, &list).await;
    assert_eq!(
        (error(&answer).0, &answer["id"]),
        (-32602, &json!(2)),
        "before initialize: {answer}"
    );

    let answer = exchange(&mut stdin, &mut stdout, &initialize(3)).await;
    assert_eq!(answer["result"]["protocolVersion"], VERSION, "{answer}");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    stdin
        .write_all(format!("{initialized}\n").as_bytes())
        .await
        .unwrap();
    let answer = exchange(&mut stdin, &mut stdout, r#"{"not": "json-rpc"}"#).await;
    assert_eq!(error(&answer).0, -32600, "{answer}");
    let answer = exchange(&mut stdin, &mut stdout, &call(4, "nope", json!({}))).await;
    assert_eq!(
        (error(&answer).0, &answer["id"]),
        (-32602, &json!(4)),
        "{answer}"
    );
    let query = call(
        5,
        "search_documents",
        json!({"query": "What is a span?", "top_k": 1}),
    );
    let answer = exchange(&mut stdin, &mut stdout, &query).await;
    let contexts = answer["result"]["structuredContent"]["contexts"].as_array();
    assert_eq!(contexts.map(Vec::len), Some(1), "{answer}");

    drop(stdin);
    let status = tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .expect("exits when stdin closes")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// retrieval again, on the address the pipeline gave it; ready on return.
async fn restart_retrieval(app: &TestPipeline) -> tokio::process::Child {
    let topology = app.pipeline.topology();
    let child = support::command("retrieval")
        .envs(topology.env_for(Service::Retrieval))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", app.receiver.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("restart retrieval");
    let ready = format!("{}/readyz", app.url(Service::Retrieval));
    for _ in 0..200 {
        if let Ok(response) = app.client.get(&ready).send().await
            && response.status().is_success()
        {
            return child;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("retrieval not ready again within 10 s");
}

async fn stop_retrieval(app: &mut TestPipeline, restarted: Option<tokio::process::Child>) {
    match restarted {
        Some(mut child) => {
            child.kill().await.unwrap();
        }
        None => {
            app.pipeline
                .stop(Service::Retrieval, Duration::from_secs(5))
                .await
                .expect("retrieval stops within 5 s, open MCP sessions and all");
        }
    }
}

/// retrieval restarts under an open MCP session: the next request opens a
/// new session and succeeds. retrieval dead: a clean 503
/// `service_unavailable` and an error span, never a hang.
#[actix_web::test]
async fn a_restarted_mcp_hop_gets_a_new_session_and_a_dead_one_is_a_503() {
    let mut app = TestPipeline::start(&[("RETRIEVAL_PROTOCOL", "mcp")]).await;
    let question = json!({"query": "What is a span?"});
    let (status, body) = app.chat(question.clone(), &[]).await;
    assert_eq!(status, 200, "{body}");

    stop_retrieval(&mut app, None).await;
    let restarted = restart_retrieval(&app).await;
    let (status, body) = app.chat(question.clone(), &[]).await;
    assert_eq!(status, 200, "the first request after a restart: {body}");
    // The new retrieval answers the old session id with 404; the session
    // is opened again inside the call, and the tree shows it there.
    // 16, and the three evaluation spans.
    let spans = app.trace(body["trace_id"].as_str().unwrap(), 19).await;
    let call = span(&spans, "query-processor", "tools/call search_documents");
    assert_parent(span(&spans, "retrieval", "initialize"), call);
    assert_parent(
        span(&spans, "retrieval", "tools/call search_documents"),
        call,
    );
    let tree = ragtrace::tree::health(&spans);
    assert_eq!(
        (tree.roots, tree.orphans),
        (1, 0),
        "{}",
        ragtrace::tree::render(&spans)
    );

    stop_retrieval(&mut app, Some(restarted)).await;
    let started = std::time::Instant::now();
    let (status, body) = app.chat(question.clone(), &[]).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "service_unavailable", "{body}");
    let spans = app.trace(body["trace_id"].as_str().unwrap(), 6).await;
    let failed: Vec<_> = spans
        .iter()
        .filter(|s| s.service_name == "query-processor" && s.attr_str("mcp.method.name").is_some())
        .collect();
    assert!(!failed.is_empty(), "{}", ragtrace::tree::render(&spans));
    for call in failed {
        assert_eq!(call.status.code, StatusCode::Error, "{call:#?}");
        assert_eq!(
            call.attr_str("error.type"),
            Some("service_unavailable"),
            "{call:#?}"
        );
    }

    let _restarted = restart_retrieval(&app).await;
    let (status, body) = app.chat(question, &[]).await;
    assert_eq!(status, 200, "{body}");
}
