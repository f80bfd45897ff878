//! OTLP metrics, end to end: the four real service binaries export
//! `http.server.request.duration` and the GenAI client metrics over real
//! OTLP/HTTP to the receiver in this test, and every assertion is on what
//! arrived: names, units, attributes, the conventions' bucket boundaries,
//! and counts and sums that must equal what the requests did.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ragtrace::launcher::Service;
use ragtrace::receiver::metrics::{MetricPoint, summary};
use serde_json::{Value, json};
use support::{SPANS_PER_CHAT, TestPipeline};
use testkit::fake_openai::{FakeOpenAi, FakeOpenAiConfig, Fault};

const QUESTION: &str = "What does the traceparent header contain?";
const EMBEDDER: &str = "ragtrace-hashing-384";
const MODEL: &str = "ragtrace-extractive-v1";

const HTTP_DURATION: &str = "http.server.request.duration";
const OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
const TOKEN_USAGE: &str = "gen_ai.client.token.usage";

/// Written out here, not imported from `shared::metrics`: the test checks
/// the conventions, not that the code agrees with itself.
const HTTP_BOUNDS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
const DURATION_BOUNDS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
const TOKEN_BOUNDS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// Export every 200 ms instead of every minute.
const FAST_EXPORT: (&str, &str) = ("OTEL_METRIC_EXPORT_INTERVAL", "200");

/// The points of `name` from `service` whose attributes include `subset`.
fn find<'a>(
    points: &'a [MetricPoint],
    service: &str,
    name: &str,
    subset: &[(&str, Value)],
) -> Vec<&'a MetricPoint> {
    points
        .iter()
        .filter(|p| p.service_name == service && p.name == name && p.has_attributes(subset))
        .collect()
}

/// The count of the one histogram series matching, 0 if there is none.
fn count(points: &[MetricPoint], service: &str, name: &str, subset: &[(&str, Value)]) -> u64 {
    match find(points, service, name, subset)[..] {
        [] => 0,
        [one] => one.histogram().map_or(0, |h| h.count),
        ref many => panic!("{} series of {service} {name} {subset:?}", many.len()),
    }
}

/// The counts of every histogram series matching, added up.
fn total(points: &[MetricPoint], service: &str, name: &str, subset: &[(&str, Value)]) -> u64 {
    find(points, service, name, subset)
        .iter()
        .filter_map(|p| p.histogram())
        .map(|h| h.count)
        .sum()
}

/// The one series matching, with its histogram checked for consistency
/// (bucket counts add up to the count, one more bucket than bounds).
fn series<'a>(
    points: &'a [MetricPoint],
    service: &str,
    name: &str,
    subset: &[(&str, Value)],
) -> &'a MetricPoint {
    let found = find(points, service, name, subset);
    assert_eq!(
        found.len(),
        1,
        "{service} {name} {subset:?}: {found:#?}\nall: {}",
        summary(points)
    );
    let h = found[0].histogram().expect("a histogram");
    assert_eq!(h.bucket_counts.len(), h.bounds.len() + 1);
    assert_eq!(h.bucket_counts.iter().sum::<u64>(), h.count);
    found[0]
}

fn http_route(route: &str, status: u16) -> Vec<(&str, Value)> {
    vec![
        ("http.route", json!(route)),
        ("http.response.status_code", json!(status)),
    ]
}

/// Wait until `pred` holds for the received metrics; panic with them if not.
async fn wait_for_metrics(
    app: &TestPipeline,
    what: &str,
    pred: impl Fn(&[MetricPoint]) -> bool,
) -> Vec<MetricPoint> {
    app.receiver
        .metrics
        .wait_until(Duration::from_secs(20), pred)
        .await
        .unwrap_or_else(|points| panic!("{what}: not within 20 s. Received:\n{points:#?}"))
}

/// The metric names and metric attribute keys listed in the "Metrics"
/// section of docs/attributes.md.
fn documented_metric_keys() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/attributes.md"
    ))
    .unwrap();
    let (_, section) = doc.split_once("\n## Metrics\n").expect("a Metrics section");
    section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`').map(|(key, _)| key.to_owned()))
        .collect()
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

#[actix_web::test]
async fn every_service_exports_request_durations_and_the_gen_ai_metrics() {
    let app = TestPipeline::start(&[FAST_EXPORT]).await;

    // retrieval embedded the corpus at startup (more embeddings operations).
    // Take the count from an export made after the pipeline was ready, so
    // the chats below are exactly what it adds.
    let ready_at = now_nanos();
    let embeddings = vec![
        ("gen_ai.operation.name", json!("embeddings")),
        ("gen_ai.request.model", json!(EMBEDDER)),
    ];
    let points = wait_for_metrics(&app, "retrieval's startup embeddings", |points| {
        find(points, "retrieval", OPERATION_DURATION, &embeddings)
            .iter()
            .any(|p| p.time_unix_nanos > ready_at)
    })
    .await;
    let embeddings_at_startup = count(&points, "retrieval", OPERATION_DURATION, &embeddings);
    assert!(embeddings_at_startup > 0, "the corpus was embedded");

    const CHATS: u64 = 3;
    let (mut input_tokens, mut output_tokens) = (0, 0);
    for _ in 0..CHATS {
        let (status, body) = app.chat(json!({"query": QUESTION}), &[]).await;
        assert_eq!(status, 200, "{body}");
        input_tokens += body["usage"]["input_tokens"].as_u64().unwrap();
        output_tokens += body["usage"]["output_tokens"].as_u64().unwrap();
    }
    // One the gateway rejects itself: a 422, and no downstream call.
    let (status, body) = app.chat(json!({"query": "   "}), &[]).await;
    assert_eq!(status, 422, "{body}");

    let hops = [
        (Service::Gateway, "/chat"),
        (Service::QueryProcessor, "/process"),
        (Service::Retrieval, "/retrieve"),
        (Service::LlmService, "/generate"),
    ];
    let points = wait_for_metrics(&app, "every request of every service", |points| {
        hops.iter().all(|(service, route)| {
            count(
                points,
                service.name(),
                HTTP_DURATION,
                &http_route(route, 200),
            ) == CHATS
        }) && count(points, "gateway", HTTP_DURATION, &http_route("/chat", 422)) == 1
            && count(points, "llm-service", OPERATION_DURATION, &[]) == CHATS
            && count(points, "retrieval", OPERATION_DURATION, &embeddings)
                == embeddings_at_startup + CHATS
    })
    .await;

    // http.server.request.duration: one series per route and status, with
    // the HTTP conventions' attributes and buckets, nothing else.
    for (service, route) in hops {
        let point = series(
            &points,
            service.name(),
            HTTP_DURATION,
            &http_route(route, 200),
        );
        assert_eq!(point.unit, "s");
        assert_eq!(point.scope_name, "ragtrace");
        assert_eq!(point.histogram().unwrap().bounds, HTTP_BOUNDS);
        assert_eq!(
            point.attributes.keys().collect::<Vec<_>>(),
            [
                "http.request.method",
                "http.response.status_code",
                "http.route",
                "network.protocol.version",
                "url.scheme",
            ],
            "no error.type on a 200"
        );
        assert_eq!(point.attr_str("http.request.method"), Some("POST"));
        assert_eq!(point.attr_str("url.scheme"), Some("http"));
        assert_eq!(point.attr_str("network.protocol.version"), Some("1.1"));
        assert_eq!(
            point.resource["service.version"],
            json!(env!("CARGO_PKG_VERSION"))
        );
    }
    let rejected = series(&points, "gateway", HTTP_DURATION, &http_route("/chat", 422));
    assert!(
        !rejected.attributes.contains_key("error.type"),
        "a 4xx is not a server error"
    );
    // Routes are patterns, never raw paths: every route is one we serve.
    for point in points.iter().filter(|p| p.name == HTTP_DURATION) {
        let route = point.attr_str("http.route").unwrap_or("(none)");
        assert!(
            [
                "/chat",
                "/process",
                "/retrieve",
                "/generate",
                "/healthz",
                "/readyz"
            ]
            .contains(&route),
            "{}: unexpected http.route {route:?}",
            point.service_name
        );
    }

    // gen_ai.client.operation.duration of the offline model: the exact
    // buckets of the GenAI conventions, the span's attributes, one
    // measurement per /generate.
    let chat = series(&points, "llm-service", OPERATION_DURATION, &[]);
    assert_eq!(chat.unit, "s");
    assert_eq!(chat.histogram().unwrap().bounds, DURATION_BOUNDS);
    assert_eq!(chat.histogram().unwrap().count, CHATS);
    assert_eq!(
        chat.attributes,
        [
            ("gen_ai.operation.name", json!("chat")),
            ("gen_ai.provider.name", json!("ragtrace")),
            ("gen_ai.request.model", json!(MODEL)),
            ("gen_ai.response.model", json!(MODEL)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
        "an in-process model has no server.address; success has no error.type"
    );

    // gen_ai.client.token.usage: input and output, summing to exactly the
    // usage the /chat responses reported.
    for (token_type, expected) in [("input", input_tokens), ("output", output_tokens)] {
        let usage = series(
            &points,
            "llm-service",
            TOKEN_USAGE,
            &[("gen_ai.token.type", json!(token_type))],
        );
        assert_eq!(usage.unit, "{token}");
        let h = usage.histogram().unwrap();
        assert_eq!(h.bounds, TOKEN_BOUNDS);
        assert_eq!(h.count, CHATS, "{token_type}");
        assert_eq!(h.sum, Some(expected as f64), "{token_type}");
        assert_eq!(usage.attr_str("gen_ai.request.model"), Some(MODEL));
    }

    // retrieval: the embeddings operation, input tokens only.
    let embed = series(&points, "retrieval", OPERATION_DURATION, &embeddings);
    assert_eq!(embed.attr_str("gen_ai.provider.name"), Some("ragtrace"));
    assert_eq!(embed.histogram().unwrap().bounds, DURATION_BOUNDS);
    let embed_tokens = find(&points, "retrieval", TOKEN_USAGE, &embeddings);
    assert_eq!(embed_tokens.len(), 1, "{embed_tokens:#?}");
    assert_eq!(embed_tokens[0].attr_str("gen_ai.token.type"), Some("input"));

    // Everything that arrived is documented, names and attribute keys.
    let documented = documented_metric_keys();
    let undocumented: BTreeSet<&str> = points
        .iter()
        .flat_map(|p| std::iter::once(&p.name).chain(p.attributes.keys()))
        .map(String::as_str)
        .filter(|key| !documented.contains(*key))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in docs/attributes.md (Metrics): {undocumented:#?}"
    );

    // Services without a model record no GenAI metrics.
    for service in ["gateway", "query-processor"] {
        assert!(
            points
                .iter()
                .filter(|p| p.service_name == service)
                .all(|p| p.name == HTTP_DURATION),
            "{service}: {}",
            summary(&points)
        );
    }
    app.assert_no_panics();
}

/// With the SDK's default interval (60 s) nothing is exported while the
/// test runs: whatever arrives was sent by the final export at SIGTERM.
#[actix_web::test]
async fn the_last_metrics_are_exported_when_a_service_is_stopped() {
    let mut app = TestPipeline::start(&[]).await;
    for _ in 0..2 {
        let (status, body) = app.chat(json!({"query": QUESTION}), &[]).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(app.receiver.metrics.export_requests(), 0);

    for (service, status) in app.pipeline.stop_all(Duration::from_secs(30)).await {
        let status = status.unwrap_or_else(|err| panic!("{}: {err:#}", service.name()));
        assert!(status.success(), "{}: {status}", service.name());
    }
    // The services have exited: every export has arrived.
    let points = app.receiver.metrics.all();
    assert_eq!(
        app.receiver.metrics.export_requests(),
        4,
        "one final export per service: {}",
        summary(&points)
    );
    for (service, route) in [
        ("gateway", "/chat"),
        ("query-processor", "/process"),
        ("retrieval", "/retrieve"),
        ("llm-service", "/generate"),
    ] {
        assert_eq!(
            count(&points, service, HTTP_DURATION, &http_route(route, 200)),
            2,
            "{service}"
        );
    }
    assert_eq!(count(&points, "llm-service", OPERATION_DURATION, &[]), 2);
}

#[actix_web::test]
async fn metrics_exporter_none_switches_metrics_off_and_traces_still_flow() {
    let mut app = TestPipeline::start(&[FAST_EXPORT, ("OTEL_METRICS_EXPORTER", "none")]).await;
    let (status, body) = app.chat(json!({"query": QUESTION}), &[]).await;
    assert_eq!(status, 200, "{body}");
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT)
        .await;
    assert_eq!(spans.len(), SPANS_PER_CHAT);
    for (service, status) in app.pipeline.stop_all(Duration::from_secs(30)).await {
        assert!(status.unwrap().success(), "{}", service.name());
    }
    assert_eq!(app.receiver.metrics.export_requests(), 0);
    assert!(app.receiver.metrics.is_empty());
    app.wait_for_log(&Service::ALL, "metrics are off", Duration::from_secs(5))
        .await;
}

#[actix_web::test]
async fn an_unknown_metrics_exporter_is_a_startup_error() {
    let addr = ragtrace::launcher::free_loopback_addr().unwrap();
    let output = support::command("llm-service")
        .env("LISTEN_ADDR", addr.to_string())
        .env("OTEL_METRICS_EXPORTER", "prometheus")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("OTEL_METRICS_EXPORTER") && stderr.contains("prometheus"),
        "{stderr}"
    );
}

/// A model behind an API: the metrics name its server, and a failed call is
/// measured with the span's `error.type` and no token usage.
#[actix_web::test]
async fn remote_model_calls_carry_the_server_and_failures_carry_error_type() {
    let fake = FakeOpenAi::start_with(FakeOpenAiConfig {
        response_model: Some("gpt-4o-mini-2024-07-18".into()),
        ..Default::default()
    });
    let base_url = fake.base_url();
    let port = fake.addr().port();
    let app = TestPipeline::start(&[
        FAST_EXPORT,
        ("LLM_BASE_URL", &base_url),
        ("LLM_MODEL", "gpt-4o-mini"),
        ("LLM_API_KEY", "sk-test"),
        ("LLM_TIMEOUT_MS", "3000"),
    ])
    .await;
    let (status, body) = app.chat(json!({"query": QUESTION}), &[]).await;
    assert_eq!(status, 200, "{body}");
    let reported_input = body["usage"]["input_tokens"].as_u64().unwrap();

    fake.push_fault(Fault::unauthorized());
    let generate = json!({"query": "What is a span?", "contexts": []}).to_string();
    let (status, body) = app
        .post(Service::LlmService, "/generate", &generate, &[])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("model_auth_failed"))
    );

    let server = [
        ("gen_ai.provider.name", json!("openai_compatible")),
        ("gen_ai.request.model", json!("gpt-4o-mini")),
        ("server.address", json!("127.0.0.1")),
        ("server.port", json!(port)),
    ];
    let failed: Vec<(&str, Value)> = server
        .iter()
        .cloned()
        .chain([("error.type", json!("model_auth_failed"))])
        .collect();
    let points = wait_for_metrics(&app, "a success and a failure", |points| {
        count(points, "llm-service", OPERATION_DURATION, &failed) == 1
            && total(points, "llm-service", OPERATION_DURATION, &server) == 2
            && count(
                points,
                "llm-service",
                HTTP_DURATION,
                &http_route("/generate", 502),
            ) == 1
    })
    .await;

    let ok = find(&points, "llm-service", OPERATION_DURATION, &server)
        .into_iter()
        .find(|p| !p.attributes.contains_key("error.type"))
        .expect("the successful call");
    assert_eq!(
        ok.attr_str("gen_ai.response.model"),
        Some("gpt-4o-mini-2024-07-18")
    );
    let failure = series(&points, "llm-service", OPERATION_DURATION, &failed);
    assert!(
        !failure.attributes.contains_key("gen_ai.response.model"),
        "no response, no response model"
    );
    // Usage only from the call that had any: exactly what /chat reported.
    let input = series(
        &points,
        "llm-service",
        TOKEN_USAGE,
        &[("gen_ai.token.type", json!("input"))],
    );
    let h = input.histogram().unwrap();
    assert_eq!(h.count, 1);
    assert_eq!(h.sum, Some(reported_input as f64));
    assert!(!input.attributes.contains_key("error.type"));
    assert_eq!(input.attr_i64("server.port"), Some(i64::from(port)));
    // The failed /generate is a 5xx: error.type is its status code.
    let http = series(
        &points,
        "llm-service",
        HTTP_DURATION,
        &http_route("/generate", 502),
    );
    assert_eq!(http.attr_str("error.type"), Some("502"));
    app.assert_no_panics();
}

/// A metrics endpoint that refuses connections is logged once (not once per
/// export), and naming where the metrics were going.
#[actix_web::test]
async fn a_failing_metrics_endpoint_is_logged_once_per_outage() {
    let dead = ragtrace::launcher::free_loopback_addr().unwrap();
    let addr = ragtrace::launcher::free_loopback_addr().unwrap();
    let child = support::command("llm-service")
        .env("LISTEN_ADDR", addr.to_string())
        .env(
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            format!("http://{dead}/v1/metrics"),
        )
        .env("OTEL_METRIC_EXPORT_INTERVAL", "100")
        .env("OTEL_TRACES_SAMPLER", "always_off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // A measured request, so every interval has something to export.
    let client = awc::Client::default();
    let mut served = false;
    for _ in 0..200 {
        if client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .is_ok()
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(served, "llm-service did not start");
    // Ten intervals or more, each export failing.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id().unwrap() as libc::pid_t, libc::SIGTERM) };
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(output.status.success(), "{}", output.status);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("telemetry: metrics export to"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains(&format!("http://{dead}/v1/metrics")),
        "{}",
        warnings[0]
    );
    // Nothing answered: a network error (a refusal by status is another
    // test).
    assert!(warnings[0].contains("network error"), "{}", warnings[0]);
    assert!(!stderr.contains("metrics export recovered"), "{stderr}");
}

/// A server that takes no OTLP metrics, as Phoenix on its UI port: every
/// request is answered with `status` (Phoenix: 405 on `/v1/metrics`).
/// Returns its base URL, the number of requests it refused, and its handle.
fn refusing_server(
    status: u16,
) -> (
    String,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    actix_web::dev::ServerHandle,
) {
    use actix_web::{App, HttpResponse, HttpServer, http::StatusCode, web};
    let refused = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = refused.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        let counter = counter.clone();
        App::new().default_service(web::to(move |_body: web::Bytes| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { HttpResponse::new(StatusCode::from_u16(status).unwrap()) }
        }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (format!("http://{addr}"), refused, handle)
}

/// Services pointed straight at Phoenix send their metrics to a server that
/// answers `/v1/metrics` with 405. Each service logs that status, once
/// however many exports are refused, and never calls it a network error;
/// the traces (here to the test receiver) are not affected.
#[actix_web::test]
async fn a_metrics_endpoint_answering_405_is_logged_once_with_that_status() {
    let (phoenix, refused, server) = refusing_server(405);
    let metrics_url = format!("{phoenix}/v1/metrics");
    let mut app = TestPipeline::start(&[
        FAST_EXPORT,
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &metrics_url),
        // The documented Phoenix recipe's project choice.
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "openinference.project.name=ragtrace-test",
        ),
    ])
    .await;
    let (status, body) = app.chat(json!({"query": QUESTION}), &[]).await;
    assert_eq!(status, 200, "{body}");
    let spans = app
        .trace(body["trace_id"].as_str().unwrap(), SPANS_PER_CHAT)
        .await;
    assert_eq!(spans.len(), SPANS_PER_CHAT);
    for span in &spans {
        assert_eq!(
            span.resource["openinference.project.name"], "ragtrace-test",
            "{}",
            span.name
        );
    }

    const LINE: &str = "telemetry: metrics export to";
    app.wait_for_log(&Service::ALL, LINE, Duration::from_secs(10))
        .await;
    // Twenty more refused exports (about five 200 ms intervals of each
    // service): still one line per service.
    let seen = refused.load(std::sync::atomic::Ordering::SeqCst);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while refused.load(std::sync::atomic::Ordering::SeqCst) < seen + 5 * Service::ALL.len() {
        assert!(std::time::Instant::now() < deadline, "exports stopped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for service in Service::ALL {
        let lines = app.logged(service, LINE);
        assert_eq!(lines.len(), 1, "{}: {lines:#?}", service.name());
        let line = &lines[0];
        assert!(
            line.contains(&format!(
                "{LINE} {metrics_url} failed: Operation failed: HTTP export failed with \
                 status code: 405 Method Not Allowed;"
            )),
            "{line}"
        );
        assert!(line.contains("OTEL_METRICS_EXPORTER=none"), "{line}");
    }
    assert!(
        app.receiver.metrics.is_empty(),
        "the metrics went to their own endpoint"
    );

    for (service, status) in app.pipeline.stop_all(Duration::from_secs(30)).await {
        let status = status.unwrap_or_else(|err| panic!("{}: {err:#}", service.name()));
        assert!(status.success(), "{}: {status}", service.name());
    }
    server.stop(false).await;
    // Nothing the services logged, the final export at shutdown included,
    // calls the refusal a network error.
    let logs = app.logs.lock().unwrap().clone();
    let network: Vec<&String> = logs
        .iter()
        .filter(|line| line.contains("network error"))
        .collect();
    assert!(network.is_empty(), "{network:#?}");
    app.assert_no_panics();
}
