//! Test harness: the four real service binaries on free loopback ports,
//! exporting real OTLP to a receiver inside the test.

#![allow(dead_code)]

pub mod edge;
pub mod evaluation;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use ragtrace::launcher::{Output, Pipeline, Service, Topology};
use ragtrace::receiver::{Receiver, SpanKind, SpanRecord};
use serde_json::{Value, json};

/// The directory holding the service binaries (`target/debug` for a debug
/// test build), built on first use: `cargo test` builds the test harness of
/// each crate, not the service binaries themselves.
pub fn bin_dir() -> PathBuf {
    static BUILD: Once = Once::new();
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps")
        .to_path_buf();
    BUILD.call_once(|| {
        let profile = dir.file_name().and_then(|p| p.to_str()).unwrap_or("debug");
        let profile = if profile == "debug" { "dev" } else { profile };
        let target_dir = dir.parent().expect("target dir");
        let mut cargo = std::process::Command::new(env!("CARGO"));
        cargo
            .args(["build", "--quiet", "--profile", profile, "--bins"])
            .args(Service::ALL.iter().flat_map(|s| ["-p", s.name()]))
            .arg("-p")
            .arg("ragtrace")
            .env("CARGO_TARGET_DIR", target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        let status = cargo.status().expect("run cargo build");
        assert!(status.success(), "building the service binaries failed");
    });
    dir
}

/// A command for a binary in [`bin_dir`], with the caller's `OTEL_*`
/// environment removed so the test controls telemetry completely.
pub fn command(binary: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(bin_dir().join(binary));
    for (name, _) in std::env::vars() {
        if name.starts_with("OTEL_") || name == "RUST_LOG" || name == "LOG_FORMAT" {
            command.env_remove(name);
        }
    }
    command
}

pub struct TestPipeline {
    pub receiver: Receiver,
    pub pipeline: Pipeline,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub client: awc::Client,
}

impl TestPipeline {
    /// Start the receiver and the four services with `env` on top of the
    /// test defaults; wait until all are ready.
    pub async fn start(env: &[(&str, &str)]) -> Self {
        Self::start_with(env, true).await
    }

    /// Like [`TestPipeline::start`]; with `ready == false`, wait only until
    /// every service is alive (for tests that break a downstream on purpose).
    pub async fn start_with(env: &[(&str, &str)], ready: bool) -> Self {
        Self::start_custom(env, &[], ready).await
    }

    /// Like [`TestPipeline::start_with`], plus variables for one service only.
    pub async fn start_custom(
        env: &[(&str, &str)],
        per_service: &[(Service, &str, &str)],
        ready: bool,
    ) -> Self {
        let receiver = Receiver::start("127.0.0.1:0".parse().unwrap())
            .await
            .expect("start OTLP receiver");
        let mut vars: Vec<(String, String)> = vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT".into(), receiver.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY".into(), "50".into()),
        ];
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut pipeline = Pipeline::start(
            Topology::free_loopback_ports().expect("free ports"),
            |service| {
                let mut command = command(service.name());
                for (_, name, value) in per_service.iter().filter(|(s, _, _)| *s == service) {
                    command.env(name, value);
                }
                command
            },
            &vars,
            &Output::Capture(logs.clone()),
        )
        .expect("start services");
        let waited = if ready {
            pipeline.wait_ready(Duration::from_secs(30)).await
        } else {
            pipeline.wait_alive(Duration::from_secs(30)).await
        };
        if let Err(err) = waited {
            panic!(
                "pipeline not ready: {err:#}\n{}",
                logs.lock().unwrap().join("\n")
            );
        }
        Self {
            receiver,
            pipeline,
            logs,
            client: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish(),
        }
    }

    pub fn url(&self, service: Service) -> String {
        self.pipeline.topology().url(service)
    }

    /// POST a JSON body (given as text, so tests can send anything).
    pub async fn post(
        &self,
        service: Service,
        path: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.url(service)))
            .insert_header(("content-type", "application/json"));
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let mut response = request
            .send_body(body.to_owned())
            .await
            .expect("send request");
        let status = response.status().as_u16();
        let bytes = response.body().limit(8 << 20).await.expect("read body");
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "non-JSON body ({status}): {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        (status, json)
    }

    pub async fn chat(&self, body: Value, headers: &[(&str, &str)]) -> (u16, Value) {
        self.post(Service::Gateway, "/chat", &body.to_string(), headers)
            .await
    }

    /// The spans of `trace_id`, once at least `count` arrived; then a short
    /// grace period so any unexpected extra span is caught too.
    pub async fn trace(&self, trace_id: &str, count: usize) -> Vec<SpanRecord> {
        match self
            .receiver
            .store
            .wait_for_trace(trace_id, count, Duration::from_secs(15))
            .await
        {
            Ok(_) => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                self.receiver.store.trace(trace_id)
            }
            Err(partial) => panic!(
                "trace {trace_id}: {} of {count} spans arrived:\n{}",
                partial.len(),
                ragtrace::tree::render(&partial)
            ),
        }
    }

    /// The message of every captured log line, with the service it came
    /// from. Services log JSON lines by default (`message` is taken from
    /// them); text lines are returned whole.
    pub fn log_messages(&self) -> Vec<(Service, String)> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| parse_log_line(line))
            .collect()
    }

    /// The log messages of `service` containing `needle`.
    pub fn logged(&self, service: Service, needle: &str) -> Vec<String> {
        self.log_messages()
            .into_iter()
            .filter(|(s, m)| *s == service && m.contains(needle))
            .map(|(_, m)| m)
            .collect()
    }

    /// Wait until every service in `services` logged a line containing
    /// `needle`; panics (with the logs) after `timeout`.
    pub async fn wait_for_log(&self, services: &[Service], needle: &str, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let missing: Vec<&str> = services
                .iter()
                .filter(|s| self.logged(**s, needle).is_empty())
                .map(|s| s.name())
                .collect();
            if missing.is_empty() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} logged by {missing:?} within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn assert_no_panics(&self) {
        let logs = self.logs.lock().unwrap();
        let panics: Vec<&String> = logs.iter().filter(|l| l.contains("panicked")).collect();
        assert!(panics.is_empty(), "a service panicked:\n{panics:#?}");
    }
}

impl Drop for TestPipeline {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A failed assertion may have poisoned the lock: print anyway.
            let logs = self.logs.lock().unwrap_or_else(|err| err.into_inner());
            eprintln!("--- service logs ---\n{}", logs.join("\n"));
        }
    }
}

/// The one span of `service` named `name`.
pub fn span<'a>(spans: &'a [SpanRecord], service: &str, name: &str) -> &'a SpanRecord {
    let found: Vec<&SpanRecord> = spans
        .iter()
        .filter(|s| s.service_name == service && s.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {service} span {name:?}, found {}:\n{}",
        found.len(),
        ragtrace::tree::render(spans)
    );
    found[0]
}

/// Whether `child`'s parent is `parent`.
pub fn assert_parent(child: &SpanRecord, parent: &SpanRecord) {
    assert_eq!(
        child.parent_span_id.as_deref(),
        Some(parent.span_id.as_str()),
        "{}/{} should be a child of {}/{}",
        child.service_name,
        child.name,
        parent.service_name,
        parent.name
    );
}

pub fn is_trace_id(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 32
            && s.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            && s != "0".repeat(32)
    })
}

/// `[service        ] line` as captured by the launcher, split into the
/// service and the line's message.
pub fn parse_log_line(line: &str) -> Option<(Service, String)> {
    let rest = line.strip_prefix('[')?;
    let (name, text) = rest.split_once(']')?;
    let service = Service::parse(name.trim())?;
    let text = text.trim_start();
    let message = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|json| {
            json.get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| text.to_owned());
    Some((service, message))
}

/// Resident memory of a process, in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|err| panic!("read /proc/{pid}/status: {err}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// The numbers in a `telemetry: totals at shutdown: ...` line, in order:
/// ended, exported, in failed exports, dropped, unexported at exit.
pub fn parse_totals(message: &str) -> Option<[u64; 5]> {
    let rest = message.split_once("totals at shutdown:")?.1;
    let numbers: Vec<u64> = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .filter_map(|w| w.parse().ok())
        .collect();
    numbers.try_into().ok()
}

/// What a backend configuration makes the spans say.
pub struct Backend {
    pub embedder: &'static str,
    pub embed_provider: &'static str,
    pub remote_embedder: bool,
    pub model: &'static str,
    pub response_model: &'static str,
    pub chat_provider: &'static str,
    pub remote_chat: bool,
    pub db_system: &'static str,
    pub remote_db: bool,
}

impl Backend {
    /// The embedded defaults: everything in-process.
    pub const EMBEDDED: Backend = Backend {
        embedder: "ragtrace-hashing-384",
        embed_provider: "ragtrace",
        remote_embedder: false,
        model: "ragtrace-extractive-v1",
        response_model: "ragtrace-extractive-v1",
        chat_provider: "ragtrace",
        remote_chat: false,
        db_system: "ragtrace.in_memory",
        remote_db: false,
    };
}

/// gateway 3 + query-processor 7 (4, and one per evaluator) + retrieval 4
/// + llm-service 2, with the embedded defaults.
pub const SPANS_PER_CHAT: usize = 16;

/// A `/chat` that reached the model but has no answer to evaluate (the model
/// failed, or the client left mid-stream): no evaluation spans.
pub const SPANS_UNEVALUATED: usize = SPANS_PER_CHAT - evaluation::EVALUATORS.len();

impl Backend {
    /// [`SPANS_PER_CHAT`] for this backend: a remote embedder adds the
    /// groundedness evaluator's `POST /embed` hop.
    pub fn spans_per_chat(&self) -> usize {
        SPANS_PER_CHAT - evaluation::evaluation_spans(false)
            + evaluation::evaluation_spans(self.remote_embedder)
    }
}

/// The spans whose parent is not in the trace: the entry points.
pub fn entry_spans(spans: &[SpanRecord]) -> Vec<&SpanRecord> {
    let ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    spans
        .iter()
        .filter(|s| s.parent_span_id.as_deref().is_none_or(|p| !ids.contains(p)))
        .collect()
}

/// The tree shape every `/chat` must have, with the attributes each span
/// carries. Returns the spans by role for further checks.
pub struct ChatTree<'a> {
    pub gateway_server: &'a SpanRecord,
    pub agent: &'a SpanRecord,
    pub retrieval_server: &'a SpanRecord,
    pub retrieval: &'a SpanRecord,
    pub llm_server: &'a SpanRecord,
    pub chat: &'a SpanRecord,
}

pub fn assert_chat_tree_with<'a>(
    spans: &'a [SpanRecord],
    response: &Value,
    b: &Backend,
) -> ChatTree<'a> {
    assert_eq!(
        spans.len(),
        b.spans_per_chat(),
        "{}",
        ragtrace::tree::render(spans)
    );
    let trace_id = response["trace_id"].as_str().unwrap();
    assert!(spans.iter().all(|s| s.trace_id == trace_id));
    let services: BTreeSet<&str> = spans.iter().map(|s| s.service_name.as_str()).collect();
    assert_eq!(
        services,
        BTreeSet::from(["gateway", "llm-service", "query-processor", "retrieval"])
    );

    let gateway_server = span(spans, "gateway", "POST /chat");
    let agent = span(spans, "gateway", "invoke_agent ragtrace");
    let gateway_client = span(spans, "gateway", "POST /process");
    let qp_server = span(spans, "query-processor", "POST /process");
    let tool = span(spans, "query-processor", "execute_tool process_query");
    let qp_to_retrieval = span(spans, "query-processor", "POST /retrieve");
    let retrieval_server = span(spans, "retrieval", "POST /retrieve");
    let retrieval = span(spans, "retrieval", "retrieval ragtrace");
    // The query's embeddings (a remote embedder also embeds for the
    // groundedness evaluator, under `POST /embed`).
    let embeddings = spans
        .iter()
        .find(|s| {
            s.name == format!("embeddings {}", b.embedder)
                && s.parent_span_id.as_deref() == Some(&retrieval.span_id)
        })
        .unwrap_or_else(|| {
            panic!(
                "no embeddings span under retrieval:\n{}",
                ragtrace::tree::render(spans)
            )
        });
    let search = span(spans, "retrieval", "search ragtrace");
    let qp_to_llm = span(spans, "query-processor", "POST /generate");
    let llm_server = span(spans, "llm-service", "POST /generate");
    let chat = span(spans, "llm-service", &format!("chat {}", b.model));

    // Exactly one entry point, and no orphans: every other span's parent is
    // in the trace.
    let entries = entry_spans(spans);
    assert_eq!(entries.len(), 1, "{}", ragtrace::tree::render(spans));
    assert_eq!(entries[0].span_id, gateway_server.span_id);

    // The shape, hop by hop: each CLIENT span parents the next SERVER span.
    assert_parent(agent, gateway_server);
    assert_parent(gateway_client, agent);
    assert_parent(qp_server, gateway_client);
    assert_parent(tool, qp_server);
    assert_parent(qp_to_retrieval, tool);
    assert_parent(retrieval_server, qp_to_retrieval);
    assert_parent(retrieval, retrieval_server);
    assert_parent(embeddings, retrieval);
    assert_parent(search, retrieval);
    assert_parent(qp_to_llm, tool);
    assert_parent(llm_server, qp_to_llm);
    assert_parent(chat, llm_server);

    for server in [gateway_server, qp_server, retrieval_server, llm_server] {
        assert_eq!(server.kind, SpanKind::Server);
        assert_eq!(server.attr_i64("http.response.status_code"), Some(200));
        assert_eq!(server.attr_str("http.request.method"), Some("POST"));
        assert!(!server.is_error());
    }
    for client in [gateway_client, qp_to_retrieval, qp_to_llm] {
        assert_eq!(client.kind, SpanKind::Client);
        assert_eq!(client.attr_i64("http.response.status_code"), Some(200));
        assert_eq!(client.attr_str("server.address"), Some("127.0.0.1"));
        assert!(
            client
                .attr_str("url.full")
                .unwrap()
                .starts_with("http://127.0.0.1:")
        );
    }
    assert_eq!(
        gateway_client.attr_str("ragtrace.peer.service"),
        Some("query-processor")
    );
    assert_eq!(
        qp_to_retrieval.attr_str("ragtrace.peer.service"),
        Some("retrieval")
    );
    assert_eq!(
        qp_to_llm.attr_str("ragtrace.peer.service"),
        Some("llm-service")
    );
    for internal in [agent, tool, retrieval] {
        assert_eq!(internal.kind, SpanKind::Internal, "{}", internal.name);
    }
    // In-process models and stores are INTERNAL; remote ones are CLIENT.
    let kind = |remote: bool| {
        if remote {
            SpanKind::Client
        } else {
            SpanKind::Internal
        }
    };
    assert_eq!(embeddings.kind, kind(b.remote_embedder));
    assert_eq!(search.kind, kind(b.remote_db));
    assert_eq!(chat.kind, kind(b.remote_chat));

    // Agent (gateway) and tool (query-processor).
    assert_eq!(
        agent.attr_str("gen_ai.operation.name"),
        Some("invoke_agent")
    );
    assert_eq!(agent.attr_str("gen_ai.agent.name"), Some("ragtrace"));
    assert_eq!(agent.attr_str("confident.span.type"), Some("agent"));
    assert_eq!(
        agent.attr_str("confident.trace.name"),
        Some("ragtrace chat")
    );
    assert_eq!(tool.attr_str("gen_ai.operation.name"), Some("execute_tool"));
    assert_eq!(tool.attr_str("confident.span.type"), Some("tool"));
    assert_eq!(tool.attr_str("confident.tool.name"), Some("process_query"));
    evaluation::assert_evaluations(spans, tool, &response["evaluations"], b.remote_embedder);

    // Retrieval, embeddings and vector search.
    let contexts = response["contexts"].as_array().unwrap();
    assert_eq!(
        retrieval.attr_str("gen_ai.operation.name"),
        Some("retrieval")
    );
    assert_eq!(
        retrieval.attr_str("gen_ai.data_source.id"),
        Some("ragtrace")
    );
    assert_eq!(retrieval.attr_i64("gen_ai.request.top_k"), Some(4));
    assert_eq!(retrieval.attr_str("confident.span.type"), Some("retriever"));
    assert_eq!(
        retrieval.attr_str("confident.retriever.embedder"),
        Some(b.embedder)
    );
    assert_eq!(retrieval.attr_i64("confident.retriever.top_k"), Some(4));
    assert_eq!(
        retrieval.attr_i64("confident.retriever.chunk_size"),
        Some(120)
    );
    assert_eq!(
        embeddings.attr_str("gen_ai.operation.name"),
        Some("embeddings")
    );
    assert_eq!(
        embeddings.attr_str("gen_ai.provider.name"),
        Some(b.embed_provider)
    );
    assert_eq!(
        embeddings.attr_str("gen_ai.request.model"),
        Some(b.embedder)
    );
    assert_eq!(
        embeddings.attr_i64("gen_ai.embeddings.dimension.count"),
        Some(384)
    );
    assert!(embeddings.attr_i64("gen_ai.usage.input_tokens").unwrap() > 0);
    assert_eq!(search.attr_str("db.system.name"), Some(b.db_system));
    assert_eq!(search.attr_str("db.operation.name"), Some("search"));
    assert_eq!(search.attr_str("db.collection.name"), Some("ragtrace"));
    assert_eq!(
        search.attr_i64("db.response.returned_rows"),
        Some(contexts.len() as i64)
    );

    // The inference span, with usage exactly as the response reports it.
    let input = response["usage"]["input_tokens"].as_i64().unwrap();
    let output = response["usage"]["output_tokens"].as_i64().unwrap();
    assert!(input > 0 && output > 0);
    assert_eq!(chat.attr_str("gen_ai.operation.name"), Some("chat"));
    assert_eq!(chat.attr_str("gen_ai.provider.name"), Some(b.chat_provider));
    assert_eq!(chat.attr_str("gen_ai.request.model"), Some(b.model));
    assert_eq!(
        chat.attr_str("gen_ai.response.model"),
        Some(b.response_model)
    );
    assert_eq!(chat.attr_i64("gen_ai.usage.input_tokens"), Some(input));
    assert_eq!(chat.attr_i64("gen_ai.usage.output_tokens"), Some(output));
    assert_eq!(
        chat.attributes["gen_ai.response.finish_reasons"],
        json!(["stop"])
    );
    assert_eq!(chat.attr_str("confident.span.type"), Some("llm"));
    assert_eq!(chat.attr_str("confident.llm.model"), Some(b.model));
    assert_eq!(
        chat.attr_i64("confident.llm.input_token_count"),
        Some(input)
    );
    assert_eq!(
        chat.attr_i64("confident.llm.output_token_count"),
        Some(output)
    );
    assert!(
        spans
            .iter()
            .all(|s| !s.attributes.contains_key("gen_ai.system")),
        "the deprecated gen_ai.system must not be emitted"
    );

    ChatTree {
        gateway_server,
        agent,
        retrieval_server,
        retrieval,
        llm_server,
        chat,
    }
}

/// What a streaming response carried.
pub struct Streamed {
    pub status: u16,
    pub content_type: String,
    pub events: Vec<shared::wire::StreamEvent>,
}

impl Streamed {
    pub fn text(&self) -> String {
        self.events
            .iter()
            .filter_map(|e| match e {
                shared::wire::StreamEvent::Delta(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    pub fn done(&self) -> &shared::wire::StreamDone {
        match self.events.last() {
            Some(shared::wire::StreamEvent::Done(done)) => done,
            other => panic!("stream did not end with done: {other:?}"),
        }
    }
}

impl TestPipeline {
    /// POST `body` to the gateway's `/chat/stream` and read every event (or,
    /// for a non-stream answer, return its JSON as an error event).
    pub async fn stream_chat(&self, body: Value) -> Streamed {
        let mut response = self
            .client
            .post(format!("{}/chat/stream", self.url(Service::Gateway)))
            .insert_header(("content-type", "application/json"))
            .send_body(body.to_string())
            .await
            .expect("send");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut decoder = shared::sse::Decoder::new();
        let mut events = Vec::new();
        if !content_type.starts_with("text/event-stream") {
            let bytes = response.body().await.expect("body");
            let body: shared::error::ErrorBody =
                serde_json::from_slice(&bytes).expect("a JSON error body");
            events.push(shared::wire::StreamEvent::Error(body));
            return Streamed {
                status,
                content_type,
                events,
            };
        }
        while let Some(chunk) = futures_util::StreamExt::next(&mut response).await {
            decoder.push(&chunk.expect("chunk"));
            while let Some(raw) = decoder.next_event().expect("valid SSE") {
                events.push(
                    shared::wire::StreamEvent::parse(&raw.event, &raw.data).expect("known event"),
                );
            }
        }
        Streamed {
            status,
            content_type,
            events,
        }
    }
}
