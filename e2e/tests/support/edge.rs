//! What `edge_errors.rs` checks on every cause: the gateway's public answer,
//! and the spans and log lines that keep the whole cause.

use std::time::Duration;

use ragtrace::launcher::Service;
use ragtrace::receiver::{SpanKind, SpanRecord, StatusCode};
use serde_json::{Value, json};
use shared::http::error_codes;

use super::{TestPipeline, is_trace_id};

/// One request to the gateway: status, `Retry-After`, body.
pub async fn chat(app: &TestPipeline) -> (u16, Option<String>, Value) {
    let mut response = app
        .client
        .post(format!("{}/chat", app.url(Service::Gateway)))
        .insert_header(("content-type", "application/json"))
        .send_body(json!({"query": "What does the traceparent header contain?"}).to_string())
        .await
        .expect("send");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.json().limit(1 << 20).await.expect("JSON body");
    (response.status().as_u16(), retry_after, body)
}

/// The gateway's answer is exactly the table's for `code`, and clean: no
/// address, URL, library error, port of the topology or of `ports`, service
/// name, or any of `secrets`.
pub fn assert_public(
    app: &TestPipeline,
    ports: &[u16],
    secrets: &[&str],
    (status, body): (u16, &Value),
    code: &str,
) {
    let entry = error_codes::relayed(code).unwrap_or_else(|| panic!("{code} in the table"));
    assert_eq!(status, entry.status.as_u16(), "{body}");
    assert_eq!(body["error"], code, "{body}");
    assert_eq!(body["message"], entry.message, "{body}");
    assert!(is_trace_id(&body["trace_id"]), "{body}");
    assert_eq!(body.as_object().unwrap().len(), 3, "{body}");

    // Nothing internal, whatever the cause: the body without its trace id
    // (whose hex digits could spell a port by chance).
    let text = json!([body["error"], body["message"]]).to_string();
    let internal = ["127.0.0.1", "http://", "tonic", "Os {", "sk-"];
    for detail in internal.iter().chain(secrets) {
        assert!(!text.contains(detail), "{detail:?} in {body}");
    }
    let topology = app.pipeline.topology();
    let services = Service::ALL.iter().map(|s| topology.addr(*s).port());
    for port in services.chain(ports.iter().copied()) {
        assert!(!text.contains(&port.to_string()), "port {port} in {body}");
    }
    // The client knows the gateway; the services behind it are internal.
    let internal = Service::ALL.into_iter().filter(|s| *s != Service::Gateway);
    for service in internal {
        assert!(
            !text.contains(service.name()),
            "{} in {body}",
            service.name()
        );
    }
}

/// The spans of `trace_id` once every `(service, name)` arrived, and the
/// rest of the trace a moment later.
pub async fn trace(app: &TestPipeline, trace_id: &str, wanted: &[(&str, &str)]) -> Vec<SpanRecord> {
    let found = |spans: &[SpanRecord]| {
        wanted.iter().all(|(service, name)| {
            spans
                .iter()
                .any(|s| s.trace_id == trace_id && s.service_name == *service && s.name == *name)
        })
    };
    app.receiver
        .store
        .wait_until(Duration::from_secs(15), found)
        .await
        .unwrap_or_else(|_| panic!("trace {trace_id}: {wanted:?} did not arrive"));
    // A grace period for the other services' spans of the same trace.
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.receiver
        .store
        .all()
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .collect()
}

pub fn one<'a>(spans: &'a [SpanRecord], service: &str, name: &str) -> &'a SpanRecord {
    spans
        .iter()
        .find(|s| s.service_name == service && s.name == name)
        .unwrap_or_else(|| panic!("no {service} span {name:?}"))
}

/// The failing span holds the whole cause: ERROR, its message containing
/// every `needle`, `error.type`, and an `exception` event with the same.
pub fn assert_cause(span: &SpanRecord, code: &str, needles: &[&str]) {
    let what = format!("{}/{}", span.service_name, span.name);
    assert_eq!(span.status.code, StatusCode::Error, "{what}");
    for needle in needles {
        assert!(
            span.status.message.contains(needle),
            "{what}: {needle:?} not in {:?}",
            span.status.message
        );
    }
    assert_eq!(span.attr_str("error.type"), Some(code), "{what}");
    let exception = span
        .events
        .iter()
        .find(|e| e.name == "exception")
        .unwrap_or_else(|| panic!("{what}: no exception event"));
    assert_eq!(exception.attributes["exception.type"], code, "{what}");
    assert_eq!(
        exception.attributes["exception.message"], span.status.message,
        "{what}"
    );
}

/// Every CLIENT span between services, up from `below`, records the code
/// the callee answered as `error.type`.
pub fn assert_clients(spans: &[SpanRecord], code: &str, calls: &[(&str, &str)]) {
    for (service, name) in [("gateway", "POST /process")].iter().chain(calls) {
        let call = one(spans, service, name);
        assert_eq!(call.kind, SpanKind::Client, "{service} {name}");
        assert_eq!(call.status.code, StatusCode::Error, "{service} {name}");
        assert_eq!(call.attr_str("error.type"), Some(code), "{service} {name}");
    }
}

/// `service` logged an ERROR line with `code`, carrying the trace id.
pub fn assert_error_logged(app: &TestPipeline, service: Service, trace_id: &str, code: &str) {
    let logs = app.logs.lock().unwrap().clone();
    let logged = logs
        .iter()
        .filter_map(|line| line.split_once("] "))
        .filter(|(prefix, _)| prefix.trim_start_matches('[').trim() == service.name())
        .filter_map(|(_, json)| serde_json::from_str::<Value>(json).ok())
        .any(|l| {
            l["level"] == "ERROR" && l["trace_id"] == trace_id && l["fields"]["error"] == code
        });
    assert!(
        logged,
        "{}: no ERROR line for {code} in trace {trace_id}",
        service.name()
    );
}

/// A query-processor stand-in that answers every request 503 `rate_limited`
/// with `Retry-After: 7` and a message full of internal detail.
pub fn rate_limiting_callee() -> (actix_web::dev::ServerHandle, String) {
    use actix_web::{App, HttpResponse, HttpServer, web};
    let server = HttpServer::new(|| {
        App::new().default_service(web::to(|| async {
            HttpResponse::ServiceUnavailable()
                .insert_header(("retry-after", "7"))
                .json(json!({
                    "error": "rate_limited",
                    "message": "llm-service answered 503: openai is rate limiting us at http://127.0.0.1:9/v1",
                    "trace_id": "0af7651916cd43dd8448eb211c80319c",
                }))
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (handle, url)
}
