//! The quick start, as a user runs it: `ragtrace up` in one terminal,
//! `ragtrace chat` in another, the trace tree printed by `up`, then SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn free_port() -> String {
    ragtrace::launcher::free_loopback_addr()
        .unwrap()
        .to_string()
}

fn ragtrace() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ragtrace"));
    for (name, _) in std::env::vars() {
        if name.starts_with("OTEL_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}

/// Lines of `stream`, delivered through a channel (so reads can time out).
fn lines(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Read lines until one satisfies `pred`; every line read is appended to `seen`.
fn read_until(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                seen.push(line.clone());
                if pred(&line) {
                    return line;
                }
            }
            Err(_) => panic!("timed out; output so far:\n{}", seen.join("\n")),
        }
    }
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

#[test]
fn up_serves_chat_prints_the_trace_tree_and_stops_cleanly_on_sigterm() {
    let gateway = free_port();
    let mut up = KillOnDrop(
        ragtrace()
            .args(["up", "--gateway", &gateway])
            .args(["--query-processor", &free_port()])
            .args(["--retrieval", &free_port()])
            .args(["--llm-service", &free_port()])
            .args(["--otlp", &free_port()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start ragtrace up"),
    );
    let stdout = lines(up.0.stdout.take().unwrap());
    let stderr = lines(up.0.stderr.take().unwrap());
    let mut log = Vec::new();
    let banner = read_until(&stderr, &mut log, Duration::from_secs(60), |l| {
        l.starts_with("ragtrace is up in")
    });
    let ready_ms: u64 = banner.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert!(ready_ms < 30_000, "{banner}");

    let chat = ragtrace()
        .args([
            "chat",
            "--url",
            &format!("http://{gateway}"),
            "--user-id",
            "alice",
        ])
        .arg("What does the traceparent header contain?")
        .output()
        .expect("run ragtrace chat");
    let answer = String::from_utf8_lossy(&chat.stdout);
    assert!(
        chat.status.success(),
        "{answer}\n{}",
        String::from_utf8_lossy(&chat.stderr)
    );
    assert!(
        answer.contains("Sources: [1] w3c-traceparent-header.md"),
        "{answer}"
    );
    let trace_id = answer
        .lines()
        .find_map(|l| l.strip_prefix("trace "))
        .expect("chat prints the trace id")
        .to_owned();
    assert_eq!(trace_id.len(), 32);

    // The console view prints the tree, then its health line.
    let mut tree = Vec::new();
    let health = read_until(&stdout, &mut tree, Duration::from_secs(20), |l| {
        l.contains(&format!("trace {}", &trace_id[..8])) && l.contains("spans,")
    });
    assert!(
        health.contains("16 spans, 4 services (gateway, llm-service, query-processor, retrieval)")
            && health.contains("0 orphans, 0 errors"),
        "{health}"
    );
    let tree = tree.join("\n");
    assert!(tree.contains(&format!("trace {trace_id}")), "{tree}");
    assert!(
        tree.contains("[llm-service] INTERNAL chat ragtrace-extractive-v1"),
        "{tree}"
    );
    assert!(
        tree.contains("[retrieval] INTERNAL search ragtrace"),
        "{tree}"
    );

    // `chat --stream` prints the same answer, streamed, with its own trace.
    let streamed = ragtrace()
        .args(["chat", "--stream", "--url", &format!("http://{gateway}")])
        .arg("What does the traceparent header contain?")
        .output()
        .expect("run ragtrace chat --stream");
    let streamed_text = String::from_utf8_lossy(&streamed.stdout);
    assert!(streamed.status.success(), "{streamed_text}");
    let answer_part = |text: &str| text.split("\n\nRetrieved:").next().unwrap().to_owned();
    assert_eq!(answer_part(&streamed_text), answer_part(&answer));
    let stream_trace = streamed_text
        .lines()
        .find_map(|l| l.strip_prefix("trace "))
        .expect("chat --stream prints the trace id");
    assert_eq!(stream_trace.len(), 32);
    assert_ne!(stream_trace, trace_id);

    // A chat with a bad query is a clean error from the CLI too.
    let bad = ragtrace()
        .args(["chat", "--url", &format!("http://{gateway}"), "  "])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("invalid_query"));

    // SIGTERM: every service drains, flushes and exits; `up` exits 0.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(up.0.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = up.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "ragtrace up did not exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    while let Ok(line) = stderr.recv_timeout(Duration::from_millis(200)) {
        log.push(line);
    }
    assert!(status.success(), "{status}\n{}", log.join("\n"));
    assert!(
        std::net::TcpStream::connect(&gateway).is_err(),
        "the gateway is still listening after up exited"
    );
}
