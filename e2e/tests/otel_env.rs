//! The standard `OTEL_*` environment, honoured by a real service binary:
//! each protocol really exports (gRPC to an OTLP/gRPC collector, JSON and
//! protobuf over HTTP), resource variables name the service, and the sampler
//! and `OTEL_SDK_DISABLED` switch export off.

mod support;

use std::time::Duration;

use ragtrace::receiver::{Receiver, SpanRecord};
use testkit::fake_otlp_grpc::FakeOtlpGrpc;

/// Run llm-service with `env`, answer one `/generate`, SIGTERM it (which
/// flushes its spans) and return once it exited cleanly.
async fn one_generate(env: &[(&str, &str)]) {
    let addr = ragtrace::launcher::free_loopback_addr().unwrap();
    let mut command = support::command("llm-service");
    command
        .env("LISTEN_ADDR", addr.to_string())
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let mut child = command.spawn().unwrap();
    let client = awc::Client::default();
    let url = format!("http://{addr}");
    let mut ready = false;
    for _ in 0..200 {
        if client.get(format!("{url}/healthz")).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ready, "llm-service did not start");
    let response = client
        .post(format!("{url}/generate"))
        .send_json(&serde_json::json!({"query": "What is a span?", "contexts": []}))
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id().unwrap() as libc::pid_t, libc::SIGTERM) };
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

fn names(spans: &[SpanRecord]) -> Vec<&str> {
    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    names
}

#[actix_web::test]
async fn grpc_protocol_exports_to_an_otlp_grpc_collector() {
    let collector = FakeOtlpGrpc::start();
    one_generate(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
    ])
    .await;
    let spans: Vec<SpanRecord> = collector
        .requests()
        .into_iter()
        .flat_map(ragtrace::receiver::spans_from_request)
        .collect();
    assert_eq!(
        names(&spans),
        ["POST /generate", "chat ragtrace-extractive-v1"]
    );
    assert!(spans.iter().all(|s| s.service_name == "llm-service"));
    // Metrics take the same protocol (the final export, at SIGTERM).
    let metrics: Vec<_> = collector
        .metric_requests()
        .into_iter()
        .flat_map(ragtrace::receiver::metrics::points_from_request)
        .collect();
    let generate = metrics
        .iter()
        .find(|p| {
            p.name == "http.server.request.duration"
                && p.attr_str("http.route") == Some("/generate")
        })
        .unwrap_or_else(|| panic!("no /generate duration over gRPC: {metrics:#?}"));
    assert_eq!(generate.service_name, "llm-service");
    assert_eq!(generate.histogram().map(|h| h.count), Some(1));
    assert!(
        metrics
            .iter()
            .any(|p| p.name == "gen_ai.client.operation.duration")
    );
}

#[actix_web::test]
async fn http_json_protocol_and_resource_variables() {
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    one_generate(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ("OTEL_SERVICE_NAME", "generator-eu"),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=test,team=ml",
        ),
    ])
    .await;
    let spans = receiver
        .store
        .wait_until(Duration::from_secs(10), |s| s.len() >= 2)
        .await
        .expect("spans over OTLP/HTTP JSON");
    assert_eq!(
        names(&spans),
        ["POST /generate", "chat ragtrace-extractive-v1"]
    );
    for span in &spans {
        assert_eq!(span.service_name, "generator-eu", "OTEL_SERVICE_NAME wins");
        assert_eq!(span.resource["deployment.environment.name"], "test");
        assert_eq!(span.resource["team"], "ml");
        assert_eq!(span.resource["service.version"], env!("CARGO_PKG_VERSION"));
    }
}

#[actix_web::test]
async fn the_sampler_and_sdk_disabled_switch_export_off() {
    for env in [
        [
            ("OTEL_TRACES_SAMPLER", "always_off"),
            ("OTEL_SDK_DISABLED", "false"),
        ],
        [
            ("OTEL_TRACES_SAMPLER", "always_on"),
            ("OTEL_SDK_DISABLED", "true"),
        ],
    ] {
        let receiver = Receiver::start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let endpoint = receiver.endpoint();
        let mut vars = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())];
        vars.extend(env);
        one_generate(&vars).await;
        // The service has exited (and flushed): nothing was exported.
        assert_eq!(receiver.store.len(), 0, "{env:?}");
    }
    // And the control: the same receiver setup does receive spans normally.
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    one_generate(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint())]).await;
    assert!(
        receiver
            .store
            .wait_until(Duration::from_secs(10), |s| s.len() >= 2)
            .await
            .is_ok()
    );
}

#[actix_web::test]
async fn sdk_disabled_switches_metrics_off_too() {
    let receiver = Receiver::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let endpoint = receiver.endpoint();
    one_generate(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_SDK_DISABLED", "true"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "100"),
    ])
    .await;
    assert_eq!(receiver.metrics.export_requests(), 0);
}

#[actix_web::test]
async fn metrics_follow_their_own_endpoint_and_protocol_variables() {
    // Traces to one receiver as protobuf, metrics to another as JSON, by
    // the metrics-specific variables alone.
    let traces = Receiver::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let metrics = Receiver::start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let metrics_url = format!("{}/v1/metrics", metrics.endpoint());
    one_generate(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &traces.endpoint()),
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &metrics_url),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "http/json"),
    ])
    .await;
    assert!(traces.metrics.is_empty(), "{:?}", traces.metrics.all());
    assert_eq!(metrics.metrics.export_requests(), 1, "the final export");
    assert_eq!(metrics.metrics.json_export_requests(), 1, "as OTLP/JSON");
    assert!(
        metrics
            .metrics
            .series("llm-service", "gen_ai.client.operation.duration")
            .iter()
            .any(|p| p.histogram().is_some_and(|h| h.count == 1))
    );
    assert_eq!(metrics.store.len(), 0, "no spans on the metrics endpoint");
    assert!(
        traces
            .store
            .wait_until(Duration::from_secs(10), |s| s.len() >= 2)
            .await
            .is_ok()
    );
}

/// What one OTLP/HTTP export request looked like on the wire.
#[derive(Debug, Clone)]
struct Captured {
    path: String,
    headers: Vec<(String, String)>,
    spans: Vec<SpanRecord>,
}

/// An OTLP/HTTP collector double that keeps each request's path and headers
/// and decodes its protobuf body, at any path.
fn capturing_collector() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<Captured>>>,
    actix_web::dev::ServerHandle,
) {
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Captured>::new()));
    let kept = seen.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = HttpServer::new(move || {
        let kept = kept.clone();
        App::new().default_service(web::to(move |req: HttpRequest, body: web::Bytes| {
            let kept = kept.clone();
            async move {
                let spans = ragtrace::receiver::decode_protobuf(&body).unwrap_or_default();
                kept.lock().unwrap().push(Captured {
                    path: req.path().to_owned(),
                    headers: req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
                        .collect(),
                    spans,
                });
                HttpResponse::Ok()
                    .content_type("application/x-protobuf")
                    .finish()
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (format!("http://{addr}"), seen, handle)
}

#[actix_web::test]
async fn http_protobuf_export_uses_the_traces_endpoint_as_is_and_sends_the_headers() {
    let (base, seen, server) = capturing_collector();
    let traces_url = format!("{base}/tenant/7/otlp-traces");
    one_generate(&[
        // The signal variable is used as is; the generic one is ignored.
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &traces_url),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9"),
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", &format!("{base}/m")),
        // URL-encoded values are decoded; the signal's headers win.
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=generic"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
            "x-api-key=s%3Dcr%2Ct , x-tenant=acme,user-agent=probe/1",
        ),
    ])
    .await;
    let requests: Vec<Captured> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.path != "/m")
        .cloned()
        .collect();
    server.stop(false).await;
    assert!(!requests.is_empty(), "no span export arrived");
    let header = |c: &Captured, name: &str| {
        c.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    for request in &requests {
        assert_eq!(request.path, "/tenant/7/otlp-traces");
        assert_eq!(header(request, "x-api-key").as_deref(), Some("s=cr,t"));
        assert_eq!(header(request, "x-tenant").as_deref(), Some("acme"));
        // A header set by the user replaces the exporter's own, once.
        let agents: Vec<&str> = request
            .headers
            .iter()
            .filter(|(k, _)| k == "user-agent")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(agents, ["probe/1"]);
        assert_eq!(
            header(request, "content-type").as_deref(),
            Some("application/x-protobuf")
        );
    }
    let spans: Vec<SpanRecord> = requests.into_iter().flat_map(|c| c.spans).collect();
    assert_eq!(
        names(&spans),
        ["POST /generate", "chat ragtrace-extractive-v1"]
    );
}

#[actix_web::test]
async fn a_malformed_exporter_variable_stops_the_service_at_startup_naming_it() {
    for (name, value) in [
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "gzip"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "not a url"),
    ] {
        let output = support::command("llm-service")
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env(name, value)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(20), output)
            .await
            .expect("exits at once")
            .unwrap();
        assert!(!output.status.success(), "{name}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
}
