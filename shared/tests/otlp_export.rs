//! Telemetry init through its real interfaces, for each span exporter
//! `RAGTRACE_SPAN_EXPORTER` chooses: a child process (this test binary run
//! again, with only [`child`] selected) calls `shared::telemetry::init` in
//! the environment under test, ends a span and shuts telemetry down, and an
//! OTLP/HTTP collector double on a loopback socket records what arrives.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;

/// Set in the child's environment: [`child`] does nothing without it.
const CHILD: &str = "OTLP_EXPORT_TEST_CHILD";
/// Set in the child's environment: wait for a failed export, and for the
/// report line about it, before shutting down.
const WAIT_FOR_FAILURE: &str = "OTLP_EXPORT_TEST_WAIT_FOR_FAILURE";
const SERVICE: &str = "otlp-export-test";
const SPAN: &str = "exported span";

/// One request the collector double got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(key, _)| key == name);
        found.map(|(_, value)| value.as_str())
    }
}

/// An OTLP/HTTP collector double: each connection on a thread of its own
/// (the span and metric exporters each keep one open), HTTP/1.1 kept alive,
/// every request answered with `status(path)` and recorded.
struct Collector {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Collector {
    fn start(status: fn(&str) -> u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let kept = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || serve(stream, status, &kept));
            }
        });
        Self { url, received }
    }

    fn received(&self, path: &str) -> Vec<Received> {
        let received = self.received.lock().unwrap();
        received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }
}

fn serve(stream: TcpStream, status: fn(&str) -> u16, kept: &Mutex<Vec<Received>>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return; // the client closed the connection
        }
        let path = line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let mut headers = Vec::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let Some((name, value)) = line.trim_end().split_once(':') else {
                break; // the blank line after the headers
            };
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        let length = headers
            .iter()
            .find(|(name, _)| name == "content-length")
            .map_or(0, |(_, value)| value.parse().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let code = status(&path);
        kept.lock().unwrap().push(Received {
            path,
            headers,
            body,
        });
        write!(writer, "HTTP/1.1 {code} X\r\ncontent-length: 0\r\n\r\n").unwrap();
    }
}

/// Runs [`child`] with `env` (and nothing else of this process's
/// environment) and returns its output once it exited.
fn run_child(env: &[(&str, &str)]) -> (Output, String) {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["child", "--exact", "--ignored", "--nocapture"])
        .env_clear()
        .env(CHILD, "1")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

/// The child: init, one metric, one span, shutdown.
#[test]
#[ignore = "run in a child process by the other tests"]
fn child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let telemetry = match shared::telemetry::init(SERVICE) {
        Ok(telemetry) => telemetry,
        Err(err) => {
            eprintln!("init failed: {err}");
            std::process::exit(2);
        }
    };
    let meter = opentelemetry::global::meter(SERVICE);
    meter.u64_counter("test.spans").build().add(1, &[]);
    tracing::info_span!(SPAN).in_scope(|| tracing::info!("inside"));
    if std::env::var_os(WAIT_FOR_FAILURE).is_some() {
        let stats = telemetry.export_stats().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while stats.failed_export() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // A few report intervals: the line about the failure.
        std::thread::sleep(Duration::from_millis(300));
    }
    telemetry.shutdown();
}

/// The names of the spans in `requests`, with their `service.name`.
fn spans(requests: &[Received]) -> Vec<(String, String)> {
    let mut spans = Vec::new();
    for request in requests {
        let decoded = ExportTraceServiceRequest::decode(request.body.as_slice()).unwrap();
        for resource_spans in decoded.resource_spans {
            let resource = resource_spans.resource.unwrap_or_default();
            let service = resource.attributes.iter().find_map(|kv| {
                match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(name) if kv.key == "service.name" => Some(name.clone()),
                    _ => None,
                }
            });
            for scope_spans in resource_spans.scope_spans {
                for span in scope_spans.spans {
                    spans.push((span.name, service.clone().unwrap_or_default()));
                }
            }
        }
    }
    spans
}

#[test]
fn each_span_exporter_delivers_the_span_through_init() {
    // The user agent tells the exporters apart.
    for (setting, user_agent) in [
        (None, "ragtrace/"),
        (Some("fast"), "ragtrace/"),
        (Some("otlp"), "OTel-OTLP-Exporter-Rust/"),
    ] {
        let collector = Collector::start(|_| 200);
        let mut env = vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.url.as_str()),
            ("OTEL_METRICS_EXPORTER", "none"),
        ];
        env.extend(setting.map(|value| ("RAGTRACE_SPAN_EXPORTER", value)));
        let (output, stderr) = run_child(&env);
        assert!(output.status.success(), "{setting:?}: {stderr}");

        let requests = collector.received("/v1/traces");
        assert_eq!(
            spans(&requests),
            [(SPAN.to_owned(), SERVICE.to_owned())],
            "{setting:?}"
        );
        for request in &requests {
            let agent = request.header("user-agent").unwrap_or_default();
            assert!(agent.starts_with(user_agent), "{setting:?}: {agent}");
            assert_eq!(
                request.header("content-type"),
                Some("application/x-protobuf")
            );
        }
        assert!(
            stderr.contains(
                "totals at shutdown: 1 spans ended, 1 exported, 0 in failed exports, \
                 0 dropped (queue full), 0 unexported at exit"
            ),
            "{setting:?}: {stderr}"
        );
    }
}

#[test]
fn a_refusal_is_reported_by_its_status_with_either_span_exporter() {
    for setting in ["fast", "otlp"] {
        // Traces refused; metrics refused as Phoenix refuses them.
        let collector = Collector::start(|path| if path == "/v1/traces" { 503 } else { 405 });
        let (output, stderr) = run_child(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.url),
            ("RAGTRACE_SPAN_EXPORTER", setting),
            ("OTEL_BSP_SCHEDULE_DELAY", "10"),
            ("RAGTRACE_EXPORT_REPORT_INTERVAL_MS", "50"),
            (WAIT_FOR_FAILURE, "1"),
        ]);
        assert!(output.status.success(), "{setting}: {stderr}");
        let traces = format!("{}/v1/traces", collector.url);
        assert!(
            stderr.contains(&format!(
                "(1 in 1 failed export; export to {traces} failed: Operation failed: HTTP \
                 export failed with status code: 503"
            )),
            "{setting}: {stderr}"
        );
        assert!(
            stderr.contains("totals at shutdown: 1 spans ended, 0 exported, 1 in failed exports"),
            "{setting}: {stderr}"
        );
        let metrics = format!("{}/v1/metrics", collector.url);
        assert!(
            stderr.contains(&format!(
                "metrics export to {metrics} failed: Operation failed: HTTP export failed \
                 with status code: 405 Method Not Allowed"
            )),
            "{setting}: {stderr}"
        );
    }
}

#[test]
fn an_unknown_span_exporter_stops_init_naming_the_variable() {
    let (output, stderr) = run_child(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ("RAGTRACE_SPAN_EXPORTER", "fastest"),
    ]);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("init failed: environment variable RAGTRACE_SPAN_EXPORTER=\"fastest\""),
        "{stderr}"
    );
}

/// Polls `future` to completion on this thread.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

/// Why telemetry hands `opentelemetry-otlp`'s HTTP exporters a client of its
/// own: with the stock one, an answer is a "network error", whatever its
/// status. Should a later `opentelemetry-otlp` report the status itself,
/// this fails, and `StatusPassingClient` can go.
#[test]
fn the_stock_http_client_reports_a_refusal_as_a_network_error() {
    use opentelemetry_otlp::{MetricExporter, WithExportConfig};
    use opentelemetry_sdk::metrics::data::ResourceMetrics;
    use opentelemetry_sdk::metrics::exporter::PushMetricExporter;

    let collector = Collector::start(|_| 405);
    let stock = MetricExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/v1/metrics", collector.url))
        .build()
        .unwrap();
    let result = block_on(stock.export(&ResourceMetrics::default()));
    assert_eq!(
        result.map_err(|err| err.to_string()),
        Err("Operation failed: HTTP export failed: network error".to_owned())
    );
    assert_eq!(
        collector.received("/v1/metrics").len(),
        1,
        "it was answered"
    );
}
