use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{T, pipeline, sp};
use crate::receiver::{SpanKind, SpanStore};
use crate::tree::{PrinterConfig, render, spawn_printer, spawn_printer_with};

/// What the printer printed, and when.
type Printed = Arc<Mutex<Vec<(std::time::Instant, String)>>>;

fn collector() -> (Printed, impl FnMut(String) + Send + 'static) {
    let got: Printed = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    (got, move |s| {
        sink.lock().unwrap().push((std::time::Instant::now(), s))
    })
}

fn texts(got: &Printed) -> Vec<String> {
    got.lock().unwrap().iter().map(|(_, s)| s.clone()).collect()
}

/// Waits (up to 10 s) until `n` outputs were printed; returns them.
async fn wait_printed(got: &Printed, n: usize) -> Vec<(std::time::Instant, String)> {
    let t0 = std::time::Instant::now();
    while got.lock().unwrap().len() < n && t0.elapsed() < Duration::from_secs(10) {
        sleep_ms(5).await;
    }
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), n, "printed: {:#?}", got);
    got
}

async fn sleep_ms(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

// These tests use real time (tokio's paused clock needs its `test-util`
// feature, which the workspace does not enable). They only assert what
// a slow machine cannot break: nothing is printed before the quiet period
// after the last arrival, and then it is printed once.

#[tokio::test]
async fn printer_waits_for_quiet_then_prints_once() {
    let quiet = Duration::from_millis(300);
    let store = SpanStore::new();
    let (got, out) = collector();
    let printer = spawn_printer(store.clone(), quiet, out);
    let spans = pipeline();
    // Children first, root later (as exporters often deliver).
    store.push(spans[..2].to_vec());
    sleep_ms(100).await;
    store.push(spans[2..5].to_vec());
    sleep_ms(100).await;
    let last_push = std::time::Instant::now();
    store.push(spans[5..].to_vec());
    sleep_ms(100).await;
    assert!(
        got.lock().unwrap().is_empty() || last_push.elapsed() >= quiet,
        "printed before the quiet period"
    );
    let printed = wait_printed(&got, 1).await;
    assert!(printed[0].0 >= last_push + quiet, "printed too early");
    assert_eq!(printed[0].1, render(&store.trace(T)));
    assert!(printed[0].1.contains("8 spans, 4 services"));
    sleep_ms(700).await;
    assert_eq!(got.lock().unwrap().len(), 1, "printed exactly once");

    // Late spans: one note per burst, no re-print.
    let mut late = sp(
        "late1",
        Some("g1"),
        "gateway",
        SpanKind::Internal,
        "late",
        0,
        1,
    );
    store.push(vec![late.clone()]);
    late.span_id = "late2".into();
    store.push(vec![late]);
    wait_printed(&got, 2).await;
    assert_eq!(texts(&got)[1], format!("(+2 late spans for trace {T})"));

    // Another trace is printed on its own.
    let mut other = sp("r", None, "gateway", SpanKind::Server, "GET /health", 0, 1);
    other.trace_id = "0".repeat(31) + "2";
    store.push(vec![other]);
    wait_printed(&got, 3).await;
    assert!(texts(&got)[2].starts_with("trace 00000000000000000000000000000002\n"));
    printer.stop().await;
    assert_eq!(got.lock().unwrap().len(), 3, "nothing left to flush");
}

#[tokio::test]
async fn printer_prints_rootless_trace_after_max_wait() {
    let config = PrinterConfig {
        quiet: Duration::from_millis(100),
        max_wait: Duration::from_millis(1_000),
    };
    let store = SpanStore::new();
    let (got, out) = collector();
    let printer = spawn_printer_with(store.clone(), config, out);
    let mut spans = pipeline();
    spans.retain(|s| !s.span_id.starts_with('g'));
    let pushed = std::time::Instant::now();
    store.push(spans);
    let printed = wait_printed(&got, 1).await;
    assert!(
        printed[0].0 >= pushed + config.max_wait,
        "a rootless trace waits for max_wait, not just the quiet period"
    );
    // Its entry span's parent is elsewhere (a caller's): shown as the
    // root, not flagged as an orphan.
    assert!(
        printed[0]
            .1
            .contains("[query-processor] SERVER POST /query")
    );
    assert!(!printed[0].1.contains("(orphan)"), "{}", printed[0].1);
    assert!(printed[0].1.contains("0 orphans"), "{}", printed[0].1);
    printer.stop().await;
    assert_eq!(got.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn printer_flush_and_preexisting_spans() {
    let store = SpanStore::new();
    store.push(pipeline()[2..3].to_vec()); // before the printer starts
    let (got, out) = collector();
    let printer = spawn_printer(store.clone(), Duration::from_secs(60), out);
    let mut second = sp("r", None, "gateway", SpanKind::Server, "x", 0, 1);
    second.trace_id = "0".repeat(32);
    store.push(vec![second]);
    printer.flush(Duration::ZERO).await; // does not wait for the 60 s quiet period
    let printed = texts(&got);
    assert_eq!(printed.len(), 2);
    assert!(
        printed[0].starts_with(&format!("trace {T}\n")),
        "arrival order"
    );
    assert!(printed[1].starts_with(&format!("trace {}\n", "0".repeat(32))));
    store.push(vec![sp(
        "late",
        Some("g1"),
        "gateway",
        SpanKind::Internal,
        "l",
        0,
        1,
    )]);
    printer.stop().await; // flushes the late note
    assert_eq!(
        texts(&got).last().unwrap(),
        &format!("(+1 late span for trace {T})")
    );
}

#[tokio::test]
async fn printer_flush_grace() {
    // Nothing pending: returns at once.
    let store = SpanStore::new();
    let (got, out) = collector();
    let printer = spawn_printer(store.clone(), Duration::from_millis(100), out);
    let t0 = std::time::Instant::now();
    printer.flush(Duration::from_secs(30)).await;
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(got.lock().unwrap().is_empty());

    // A trace that finishes by itself within the grace period: printed
    // once, after its quiet period, and flush returns without waiting
    // for the whole grace period.
    let pushed = std::time::Instant::now();
    store.push(pipeline());
    printer.flush(Duration::from_secs(30)).await;
    let printed = wait_printed(&got, 1).await;
    assert!(printed[0].0 >= pushed + Duration::from_millis(100));
    assert!(pushed.elapsed() < Duration::from_secs(10));

    // A trace that would not finish in time (60 s quiet period): printed
    // when the grace period ends.
    let (got, out) = collector();
    let store = SpanStore::new();
    let printer = spawn_printer(store.clone(), Duration::from_secs(60), out);
    let pushed = std::time::Instant::now();
    store.push(pipeline());
    printer.flush(Duration::from_millis(200)).await;
    let printed = wait_printed(&got, 1).await;
    assert!(printed[0].0 >= pushed + Duration::from_millis(200));
    printer.stop().await;
    assert_eq!(got.lock().unwrap().len(), 1);
}

#[actix_web::test]
async fn printer_under_actix_runtime() {
    let store = SpanStore::new();
    let (got, out) = collector();
    let printer = spawn_printer(store.clone(), Duration::from_millis(50), out);
    store.push(pipeline());
    wait_printed(&got, 1).await;
    printer.stop().await;
}
