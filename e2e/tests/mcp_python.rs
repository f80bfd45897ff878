//! A foreign MCP host joins the trace: `examples/mcp_host.py`, on the
//! official Python SDK (`mcp` from PyPI) and the OpenTelemetry Python SDK,
//! starts `ragtrace mcp` over stdio and sends its CLIENT span's context in
//! `params._meta`. retrieval's MCP SERVER span must be that span's child.
//!
//! The test builds its own virtualenv under `target/python-mcp` on first
//! run (pinned versions; it needs `python3` with `venv`, and PyPI).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use ragtrace::receiver::{Receiver, SpanKind};
use serde_json::Value;
use support::{assert_parent, span};

const PACKAGES: [&str; 3] = [
    "mcp==2.3.0",
    "opentelemetry-sdk==1.45.2",
    "opentelemetry-exporter-otlp-proto-http==1.45.2",
];

/// The virtualenv's python, with [`PACKAGES`] installed.
fn python() -> PathBuf {
    let target = support::bin_dir()
        .parent()
        .expect("target dir")
        .to_path_buf();
    let venv = target.join("python-mcp");
    let python = venv.join("bin").join("python");
    let installed = venv.join(format!("installed-{}", PACKAGES.join("+")));
    if !installed.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
        run(Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .args(PACKAGES));
        std::fs::write(&installed, "").expect("mark the venv complete");
    }
    python
}

fn run(command: &mut Command) {
    let status = command
        .status()
        .unwrap_or_else(|err| panic!("{command:?}: {err}"));
    assert!(status.success(), "{command:?}: {status}");
}

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/mcp_host.py")
}

#[actix_web::test]
async fn a_python_mcp_host_is_the_parent_of_retrievals_mcp_span() {
    let python = python();
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // Asynchronously: the receiver runs on this test's runtime.
    let mut host = tokio::process::Command::new(python);
    // The host passes its environment on to `ragtrace mcp`: the test's
    // telemetry settings only, as for every binary the tests start.
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("OTEL_")) {
        host.env_remove(name);
    }
    let host = host
        .arg(example())
        .arg("What does the traceparent header contain?")
        .env("RAGTRACE", support::bin_dir().join("ragtrace"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .output()
        .await
        .expect("run examples/mcp_host.py");
    let stdout = String::from_utf8_lossy(&host.stdout);
    assert!(
        host.status.success(),
        "{}\n{stdout}\n{}",
        host.status,
        String::from_utf8_lossy(&host.stderr)
    );
    let found: Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert_eq!(found["is_error"], false, "{found}");
    assert_eq!(found["passages"][0], "w3c-traceparent-header.md", "{found}");

    let trace_id = found["trace_id"].as_str().unwrap();
    let spans = receiver
        .store
        .wait_for_trace(trace_id, 5, Duration::from_secs(15))
        .await
        .unwrap_or_else(|partial| panic!("{}", ragtrace::tree::render(&partial)));
    let host_span = span(&spans, "mcp-host", "tools/call search_documents");
    assert_eq!(host_span.kind, SpanKind::Client);
    assert_eq!(host_span.span_id, found["span_id"].as_str().unwrap());
    let server = span(&spans, "retrieval", "tools/call search_documents");
    assert_eq!(server.kind, SpanKind::Server);
    assert_parent(server, host_span);
    assert_eq!(server.attr_str("network.transport"), Some("pipe"));
    assert_parent(span(&spans, "retrieval", "retrieval ragtrace"), server);
}
