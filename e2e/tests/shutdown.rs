//! SIGTERM under load: every request is answered or cleanly refused, every
//! service exits 0, and every answered request's whole trace is exported.
//!
//! # Why the order of the SIGTERMs is the guarantee
//!
//! The services are stopped callers first, each one waited for before the
//! next is signalled (`Pipeline::stop_all`: gateway, query-processor, then
//! llm-service and retrieval):
//!
//! 1. The gateway stops accepting connections (new requests are refused) and
//!    drains the `/chat` requests it already accepted. Everything those need
//!    downstream is still running, so they complete normally.
//! 2. When the gateway has exited, no request can reach query-processor any
//!    more; it exits at once, and so on down the chain.
//! 3. Every service flushes its span queue at exit, after its server stopped
//!    (`TelemetryGuard` is dropped after `run_until_stopped` returns). A 200
//!    means every hop below already answered, so every span of that request
//!    has ended in its process before the process is even signalled: all of
//!    them are in the final flushes.
//!
//! Stopping callees first (or all at once) would keep guarantee 3 for the
//! requests that still get a 200, but turn in-flight requests into 502s: the
//! gateway would be draining requests whose query-processor is already gone.

mod support;

use std::time::{Duration, Instant};

use awc::error::SendRequestError;
use ragtrace::launcher::Service;
use serde_json::{Value, json};
use support::{SPANS_PER_CHAT, TestPipeline, parse_totals};

const QUESTION: &str = "What does the traceparent header contain?";
const REQUESTS: u64 = 60;
/// How far apart the requests start: they span 600 ms. The SIGTERM comes
/// once a third of them are past retrieval (their spans arrived), so those
/// are in flight (waiting for llm-service) and the later ones come after it.
const STAGGER: Duration = Duration::from_millis(10);
const PAST_RETRIEVAL_AT_SIGTERM: usize = 20;
/// llm-service answers this much later, so requests stay in flight across
/// the SIGTERM whatever the machine's speed.
const LLM_DELAY_MS: &str = "1000";
/// Per service: actix drains for up to 10 s, then the final flush.
const GRACE: Duration = Duration::from_secs(30);
const EXPECTED_SPANS: [(&str, usize); 4] = [
    ("gateway", 3),
    ("query-processor", 7),
    ("retrieval", 4),
    ("llm-service", 2),
];

enum Outcome {
    /// 200, with the trace id.
    Served(String),
    /// No response: the connection was refused or reset before the request
    /// was accepted.
    Refused(String),
    /// A 502/503 with the shared error body.
    Rejected(u16, String),
    /// No answer in time: a request hung across the shutdown.
    Hung(String),
    /// Anything else (a broken body, an unexpected status).
    Broken(String),
}

/// One `/chat`, started after `start_after`; the outcome, and when the
/// request started and ended.
async fn chat(
    client: awc::Client,
    url: String,
    start_after: Duration,
) -> (Outcome, Instant, Instant) {
    actix_web::rt::time::sleep(start_after).await;
    let started = Instant::now();
    let answer = async {
        // A connection per request: a pooled keep-alive connection would let a
        // request in after the gateway stopped accepting.
        let sent = client
            .post(&url)
            .insert_header(("content-type", "application/json"))
            .force_close()
            .send_body(json!({"query": QUESTION}).to_string())
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(SendRequestError::Timeout) => return Outcome::Hung("awc timeout".into()),
            Err(err) => return Outcome::Refused(err.to_string()),
        };
        let status = response.status().as_u16();
        let body = match response.body().limit(1 << 20).await {
            Ok(body) => body,
            Err(err) => return Outcome::Broken(format!("{status}, body cut off: {err}")),
        };
        let Ok(json) = serde_json::from_slice::<Value>(&body) else {
            return Outcome::Broken(format!("{status}, not JSON: {body:?}"));
        };
        match (status, json["trace_id"].as_str(), json["error"].as_str()) {
            (200, Some(trace_id), _) => Outcome::Served(trace_id.to_owned()),
            (502 | 503, Some(_), Some(error)) => Outcome::Rejected(status, error.to_owned()),
            _ => Outcome::Broken(format!("{status}: {json}")),
        }
    };
    let outcome = match tokio::time::timeout(Duration::from_secs(60), answer).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::Hung("no answer within 60 s".into()),
    };
    (outcome, started, Instant::now())
}

/// How many `POST /retrieve` SERVER spans the receiver holds.
fn retrievals(spans: &[ragtrace::receiver::SpanRecord]) -> usize {
    spans
        .iter()
        .filter(|s| s.service_name == "retrieval" && s.name == "POST /retrieve")
        .count()
}

#[actix_web::test]
async fn sigterm_under_load_loses_no_span_of_a_served_request() {
    let mut app = TestPipeline::start_custom(
        &[],
        &[(Service::LlmService, "FAULT_DELAY_MS", LLM_DELAY_MS)],
        true,
    )
    .await;
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(45))
        .finish();
    let url = format!("{}/chat", app.url(Service::Gateway));
    let retrievals_before = retrievals(&app.receiver.store.all());
    let requests: Vec<_> = (0..REQUESTS)
        .map(|i| actix_web::rt::spawn(chat(client.clone(), url.clone(), STAGGER * i as u32)))
        .collect();

    app.receiver
        .store
        .wait_until(Duration::from_secs(30), |spans| {
            retrievals(spans) >= retrievals_before + PAST_RETRIEVAL_AT_SIGTERM
        })
        .await
        .expect("requests reached retrieval");
    let stopping = Instant::now();
    for (service, status) in app.pipeline.stop_all(GRACE).await {
        let status = status.unwrap_or_else(|err| panic!("{}: {err:#}", service.name()));
        assert!(status.success(), "{} exited with {status}", service.name());
    }
    eprintln!("all four services stopped in {:?}", stopping.elapsed());

    let mut served = Vec::new();
    let mut in_flight = 0;
    let (mut refused, mut rejected, mut bad) = (Vec::new(), Vec::new(), Vec::new());
    for request in requests {
        let (outcome, started, ended) = request.await.expect("request task");
        if started < stopping && ended > stopping {
            in_flight += 1;
        }
        match outcome {
            Outcome::Served(trace_id) => served.push(trace_id),
            Outcome::Refused(err) => refused.push(err),
            Outcome::Rejected(status, error) => rejected.push(format!("{status} {error}")),
            Outcome::Hung(why) => bad.push(format!("hung: {why}")),
            Outcome::Broken(why) => bad.push(format!("broken: {why}")),
        }
    }
    eprintln!(
        "{REQUESTS} requests: {in_flight} in flight at the SIGTERM; {} served, {} refused, \
         {} rejected (502/503)",
        served.len(),
        refused.len(),
        rejected.len()
    );
    if let Some(example) = refused.first() {
        eprintln!("  e.g. refused: {example}");
    }
    assert!(
        bad.is_empty(),
        "requests neither served nor cleanly failed: {bad:#?}"
    );
    assert!(in_flight > 0, "no request was in flight at the SIGTERM");
    assert!(!served.is_empty(), "no request was served");

    // Every service has exited, so all it flushed has arrived by now; the
    // wait only covers the receiver storing the last request.
    for trace_id in &served {
        let spans = app
            .receiver
            .store
            .wait_for_trace(trace_id, SPANS_PER_CHAT, Duration::from_secs(10))
            .await
            .unwrap_or_else(|partial| {
                panic!(
                    "served trace {trace_id}: {} of {SPANS_PER_CHAT} spans exported:\n{}",
                    partial.len(),
                    ragtrace::tree::render(&partial)
                )
            });
        for (service, expected) in EXPECTED_SPANS {
            let found = spans.iter().filter(|s| s.service_name == service).count();
            assert_eq!(
                found,
                expected,
                "trace {trace_id}: {service} spans\n{}",
                ragtrace::tree::render(&spans)
            );
        }
    }

    // And each service says so itself: nothing lost, nothing left behind.
    app.wait_for_log(&Service::ALL, "totals at shutdown", Duration::from_secs(10))
        .await;
    for service in Service::ALL {
        let line = &app.logged(service, "totals at shutdown")[0];
        let [ended, exported, failed, dropped, unexported] =
            parse_totals(line).unwrap_or_else(|| panic!("{line}"));
        assert_eq!(
            (ended, failed, dropped, unexported),
            (exported, 0, 0, 0),
            "{}: {line}",
            service.name()
        );
    }
    app.assert_no_panics();
}
