//! `ragtrace bench --smoke`: the real command, on the real binaries, in a few
//! seconds. Benchmarks are not tests, so nothing here looks at a time: it
//! checks that every figure is produced, and that the counts, which do not
//! depend on timing, are exact (every span of every traced request arrived,
//! none dropped; none at all with tracing off).

mod support;

use std::process::Command;

use serde_json::Value;

fn number(value: &Value, path: &str) -> f64 {
    let n = value
        .pointer(path)
        .unwrap_or_else(|| panic!("{path} missing"))
        .as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number: {}", value.pointer(path).unwrap()));
    assert!(n.is_finite() && n >= 0.0, "{path} = {n}");
    n
}

fn count(value: &Value, path: &str) -> u64 {
    value
        .pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} missing or not a count"))
}

fn assert_phase(config: &str, phase: &Value) {
    let at = |field: &str| number(phase, field);
    assert!(at("/requests") > 0.0, "{config}: {phase}");
    assert_eq!(count(phase, "/errors"), 0, "{config}: {phase}");
    assert!(at("/throughput_rps") > 0.0);
    assert!(at("/elapsed_s") > 0.0);
    let (p50, p90, p99, max) = (
        at("/latency_ms/p50"),
        at("/latency_ms/p90"),
        at("/latency_ms/p99"),
        at("/latency_ms/max"),
    );
    assert!(
        0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max,
        "{phase}"
    );
    assert!(at("/pipeline_cpu_s_per_request") > 0.0, "{config}: {phase}");
    at("/bench_cpu_s_per_request");
}

#[test]
fn smoke_run_produces_every_figure_and_every_span() {
    let json_path =
        std::env::temp_dir().join(format!("ragtrace-bench-{}.json", std::process::id()));
    let mut command = Command::new(support::bin_dir().join("ragtrace"));
    command.args(["bench", "--smoke", "--json"]).arg(&json_path);
    for (name, _) in std::env::vars() {
        if name.starts_with("OTEL_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    let output = command.output().expect("run ragtrace bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json_path);

    assert_eq!(count(&report, "/schema_version"), 1);
    assert_eq!(
        count(&report, "/settings/spans_per_request"),
        support::SPANS_PER_CHAT as u64,
        "the bench and the end-to-end tests disagree on spans per /chat"
    );
    assert!(number(&report, "/settings/open_rate_rps") > 0.0);

    let configs = report["configs"].as_array().unwrap();
    let names: Vec<&str> = configs
        .iter()
        .map(|c| c["config"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["off", "all", "ratio10"]);
    for c in configs {
        let name = c["config"].as_str().unwrap();
        assert_phase(name, &c["closed"]);
        assert_phase(name, &c["open"]);
        assert!(number(c, "/open/target_rps") > 0.0);
        count(c, "/open/late");
        count(c, "/open/not_sent");
        assert!(number(c, "/pipeline_ready_ms") > 0.0);
        let services = c["services"].as_array().unwrap();
        assert_eq!(services.len(), 4);
        for s in services {
            assert_eq!(s["exit"], "ok", "{s}");
            assert!(number(s, "/ready_ms") > 0.0);
            for rss in ["/rss_start_kib", "/rss_checkpoint_kib", "/rss_end_kib"] {
                assert!(count(s, rss) > 0, "{name}: {s}");
            }
            number(s, "/cpu_s");
        }

        // Every request of the run (warm-up included) against the spans.
        let requests = count(c, "/warmup_requests")
            + count(c, "/closed/requests")
            + count(c, "/open/requests");
        let spans = &c["spans"];
        let traced = count(spans, "/traced_requests");
        let expected = count(spans, "/expected");
        let received = count(spans, "/received");
        assert_eq!(expected, traced * support::SPANS_PER_CHAT as u64);
        assert_eq!(received, expected, "{name}: {spans}");
        assert_eq!(count(spans, "/rejected_export_requests"), 0);
        match name {
            "off" => {
                assert_eq!(traced, 0);
                assert_eq!(count(spans, "/exporters_reporting"), 0);
                assert_eq!(count(spans, "/export_requests"), 0);
            }
            _ => {
                if name == "all" {
                    assert_eq!(traced, requests, "{spans}");
                } else {
                    // 10%: some sampled, not all (a few hundred requests).
                    assert!(
                        traced > 0 && traced < requests / 2,
                        "{traced} of {requests}"
                    );
                }
                assert_eq!(count(spans, "/exporters_reporting"), 4, "{stderr}");
                assert_eq!(count(spans, "/dropped"), 0, "{spans}");
                assert_eq!(count(spans, "/failed_export"), 0, "{spans}");
                assert_eq!(count(spans, "/unexported_at_exit"), 0, "{spans}");
                // What the exporters say they sent is what arrived, the
                // startup indexing trace (when sampled) included.
                let all_received = received + count(spans, "/other_spans");
                assert_eq!(count(spans, "/ended"), all_received, "{spans}");
                assert_eq!(count(spans, "/exported"), all_received, "{spans}");
                assert_eq!(count(spans, "/traces_complete"), traced);
            }
        }
    }

    let overhead = report["overhead"].as_array().unwrap();
    assert_eq!(overhead.len(), 2);
    for o in overhead {
        for field in [
            "/throughput_ratio",
            "/p99_closed_ratio",
            "/p99_open_ratio",
            "/p50_open_ratio",
            "/cpu_per_request_ratio",
        ] {
            assert!(number(o, field) > 0.0, "{o}");
        }
    }
    assert!(!report["targets"].as_array().unwrap().is_empty());
    // The human summary is printed too.
    assert!(stdout.contains("overhead against tracing off"), "{stdout}");
}
