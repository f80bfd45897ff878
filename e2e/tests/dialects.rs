//! The full attribute set of every span, per dialect, pinned.
//!
//! For each `RAGTRACE_SPAN_DIALECTS` setting (with content capture off and
//! on), one `/chat`, one `/chat/stream` and one rejected `/chat` run through
//! the real services, and every span that arrives is written out — kind,
//! status, every attribute key with its value — and compared with
//! `tests/snapshots/dialect-<name>.txt`. A key that appears, disappears or
//! changes value on any span fails the test with the difference. Values that
//! differ from run to run (ports, thread ids, source lines, timings) are
//! replaced by their type.
//!
//! After a deliberate change, regenerate the files and review the diff:
//!
//! ```text
//! RAGTRACE_BLESS=1 cargo test -p e2e --test dialects
//! ```
//!
//! With capture off, the question, the answer and the retrieved text must
//! appear nowhere in the trace: not in any attribute, not in any event.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use ragtrace::receiver::SpanRecord;
use serde_json::{Value, json};
use support::{SPANS_PER_CHAT, TestPipeline};

const QUESTION: &str = "What does the traceparent header contain?";

/// Keys whose values change between runs: recorded by type only.
const VOLATILE: &[&str] = &[
    "server.address",
    "server.port",
    "url.full",
    "client.address",
    "user_agent.original",
    "code.line.number",
    "thread.id",
    "thread.name",
    "busy_ns",
    "idle_ns",
    "gen_ai.response.time_to_first_chunk",
    "mcp.session.id",
    "jsonrpc.request.id",
];

/// Keys the conventions define as strings, whose values may be digits:
/// `jsonrpc.request.id` ("5"), and a JSON-RPC error code ("-32602") is
/// not all digits anyway.
const STRING_BY_CONVENTION: &[&str] = &["jsonrpc.request.id"];

/// Longest value written out; longer content is cut (it is deterministic,
/// but a snapshot full of passages would be unreadable).
const MAX_VALUE_CHARS: usize = 96;

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Bool(_) => "<bool>",
        Value::Number(n) if n.is_i64() || n.is_u64() => "<int>",
        Value::Number(_) => "<double>",
        Value::String(_) => "<string>",
        Value::Array(_) => "<array>",
        _ => "<other>",
    }
}

fn show(key: &str, value: &Value) -> String {
    if VOLATILE.contains(&key) {
        return type_of(value).to_owned();
    }
    let text = value.to_string();
    if text.chars().count() > MAX_VALUE_CHARS {
        let cut: String = text.chars().take(MAX_VALUE_CHARS).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// Depth-first from the root, children in start order: the order a trace
/// viewer shows (siblings here never overlap, so the order is stable).
fn tree_order(spans: &[SpanRecord]) -> Vec<(usize, &SpanRecord)> {
    let mut children: BTreeMap<Option<&str>, Vec<&SpanRecord>> = BTreeMap::new();
    for span in spans {
        children
            .entry(span.parent_span_id.as_deref())
            .or_default()
            .push(span);
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| s.start_unix_nanos);
    }
    let mut out = Vec::new();
    let roots = support::entry_spans(spans);
    let mut stack: Vec<(usize, &SpanRecord)> = roots.into_iter().rev().map(|s| (0, s)).collect();
    while let Some((depth, span)) = stack.pop() {
        out.push((depth, span));
        if let Some(kids) = children.get(&Some(span.span_id.as_str())) {
            stack.extend(kids.iter().rev().map(|s| (depth + 1, *s)));
        }
    }
    out
}

fn render(title: &str, spans: &[SpanRecord]) -> String {
    let mut out = format!("## {title}\n");
    for (depth, span) in tree_order(spans) {
        let indent = "  ".repeat(depth);
        let _ = writeln!(
            out,
            "{indent}[{}] {} {:?} status={}",
            span.service_name,
            span.kind,
            span.name,
            span.status.code.as_str()
        );
        for (key, value) in &span.attributes {
            // tracing-opentelemetry exports unsigned span fields as their
            // Debug text; every integer must arrive as an int, except the
            // JSON-RPC ids and codes the conventions define as strings.
            assert!(
                STRING_BY_CONVENTION.contains(&key.as_str())
                    || !value
                        .as_str()
                        .is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())),
                "{key} on {} is a string of digits ({value}), not an int",
                span.name
            );
            let _ = writeln!(out, "{indent}    {key} = {}", show(key, value));
        }
        for event in &span.events {
            let keys: Vec<&str> = event.attributes.keys().map(String::as_str).collect();
            let _ = writeln!(out, "{indent}    event {:?} {keys:?}", event.name);
        }
    }
    out.push('\n');
    out
}

async fn check(name: &str, dialects: &str, capture: bool) {
    check_with(name, dialects, capture, &[("RETRIEVAL_PROTOCOL", "http")]).await;
}

/// [`check`], with more settings: `RETRIEVAL_PROTOCOL` (`http` or `mcp`,
/// how query-processor calls retrieval) and any other.
async fn check_with(name: &str, dialects: &str, capture: bool, settings: &[(&str, &str)]) {
    let capture_value = if capture { "SPAN_ONLY" } else { "NO_CONTENT" };
    let mut env = vec![
        ("RAGTRACE_SPAN_DIALECTS", dialects),
        (
            "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
            capture_value,
        ),
    ];
    env.extend_from_slice(settings);
    let app = TestPipeline::start(&env).await;
    let request = json!({
        "query": QUESTION, "user_id": "u-1", "session_id": "s-1", "tags": ["docs", "beta"],
    });

    let (status, body) = app.chat(request.clone(), &[]).await;
    assert_eq!(status, 200, "{body}");
    let chat = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT)
        .await;
    let streamed_answer = app.stream_chat(request).await;
    assert_eq!(streamed_answer.status, 200);
    let stream_id = streamed_answer.done().trace_id.clone().expect("a trace id");
    let streamed = app.trace(&stream_id, SPANS_PER_CHAT).await;
    let (status, bad) = app.chat(json!({"query": ""}), &[]).await;
    assert_eq!(status, 422, "{bad}");
    let rejected = app.trace(bad["trace_id"].as_str().unwrap(), 1).await;

    let mut snapshot = format!(
        "# RAGTRACE_SPAN_DIALECTS={dialects} OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT={capture_value}\n\n"
    );
    for (key, value) in settings.iter().rev() {
        if (*key, *value) != ("RETRIEVAL_PROTOCOL", "http") {
            snapshot = format!("# {key}={value}\n{snapshot}");
        }
    }
    snapshot.push_str(&render("POST /chat", &chat));
    snapshot.push_str(&render("POST /chat/stream", &streamed));
    snapshot.push_str(&render("POST /chat with an empty query (422)", &rejected));

    if !capture {
        // No content anywhere: attributes or events, any span.
        let exported = serde_json::to_string(&[&chat, &streamed, &rejected]).unwrap();
        let mut content = vec![
            QUESTION.to_owned(),
            body["answer"].as_str().unwrap().to_owned(),
        ];
        for context in body["contexts"].as_array().unwrap() {
            content.push(context["text"].as_str().unwrap().to_owned());
        }
        for text in &content {
            assert!(
                !exported.contains(text.as_str()),
                "content was recorded with capture off: {text:?}"
            );
        }
        // A sentence of the answer is content too, even cut short.
        let first_words: String = body["answer"].as_str().unwrap().chars().take(40).collect();
        assert!(!exported.contains(&first_words), "{first_words:?}");
    }

    compare(name, &snapshot);
    app.assert_no_panics();
}

fn compare(name: &str, actual: &str) {
    let path: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "snapshots",
        &format!("dialect-{name}.txt"),
    ]
    .iter()
    .collect();
    if std::env::var_os("RAGTRACE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|err| {
        panic!(
            "{}: {err}; run with RAGTRACE_BLESS=1 to create it",
            path.display()
        )
    });
    if expected == actual {
        return;
    }
    let new_path = path.with_extension("txt.new");
    std::fs::write(&new_path, actual).unwrap();
    let expected_lines: Vec<&str> = expected.lines().collect();
    let actual_lines: Vec<&str> = actual.lines().collect();
    let mut diff = String::new();
    for line in &expected_lines {
        if !actual_lines.contains(line) {
            let _ = writeln!(diff, "- {line}");
        }
    }
    for line in &actual_lines {
        if !expected_lines.contains(line) {
            let _ = writeln!(diff, "+ {line}");
        }
    }
    if diff.is_empty() {
        diff.push_str("(same lines, different order or count)\n");
    }
    panic!(
        "the spans' attributes differ from {}:\n{diff}\nthe new set is in {}; if the change is \
         intended, run RAGTRACE_BLESS=1 cargo test -p e2e --test dialects",
        path.display(),
        new_path.display()
    );
}

#[actix_web::test]
async fn genai_only() {
    check("genai", "genai", false).await;
}

#[actix_web::test]
async fn genai_and_confident_the_default() {
    check("genai-confident", "genai,confident", false).await;
}

#[actix_web::test]
async fn genai_and_openinference_with_content() {
    check("genai-openinference-content", "genai,openinference", true).await;
}

#[actix_web::test]
async fn every_dialect_with_content() {
    check(
        "all-content",
        "genai,confident,openinference,futureagi",
        true,
    )
    .await;
}

/// What a user who sends the traces to FutureAGI and Confident AI sets:
/// `fi.span.kind` on every span, EVALUATOR on the evaluations, the agent
/// graph node, and Confident's metric collection and evaluation metadata.
#[actix_web::test]
async fn genai_futureagi_and_confident_with_a_metric_collection() {
    check_with(
        "genai-futureagi-confident",
        "genai,futureagi,confident",
        false,
        &[
            ("RETRIEVAL_PROTOCOL", "http"),
            ("CONFIDENT_METRIC_COLLECTION", "ragtrace-answers"),
        ],
    )
    .await;
}

/// The MCP hop (`tools/call search_documents` in place of `POST /retrieve`,
/// and the `initialize` that opens the session on the first request): its
/// spans in every dialect, tool arguments and result as content.
#[actix_web::test]
async fn mcp_every_dialect_with_content() {
    check_with(
        "mcp-all-content",
        "genai,confident,openinference,futureagi",
        true,
        &[("RETRIEVAL_PROTOCOL", "mcp")],
    )
    .await;
}

/// The MCP hop with the default dialects and capture off: no tool
/// arguments or results anywhere.
#[actix_web::test]
async fn mcp_genai_and_confident() {
    check_with(
        "mcp-genai-confident",
        "genai,confident",
        false,
        &[("RETRIEVAL_PROTOCOL", "mcp")],
    )
    .await;
}
