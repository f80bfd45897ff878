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
    command
        .args(["bench", "--smoke", "--rounds", "2", "--json"])
        .arg(&json_path);
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

    assert_eq!(count(&report, "/schema_version"), 3);
    assert_eq!(count(&report, "/settings/rounds"), 2);
    assert_eq!(
        count(&report, "/settings/spans_per_request"),
        support::SPANS_PER_CHAT as u64,
        "the bench and the end-to-end tests disagree on spans per /chat"
    );
    let common_rate = number(&report, "/settings/open_rate_rps");
    assert!(common_rate > 0.0);
    let fraction = number(&report, "/settings/rate_fraction");

    let configs = report["configs"].as_array().unwrap();
    let names: Vec<&str> = configs
        .iter()
        .map(|c| c["config"].as_str().unwrap())
        .collect();
    // Interleaved: every configuration once per round.
    assert_eq!(
        names,
        [
            "off", "all", "ratio10", "no-eval", "off", "all", "ratio10", "no-eval"
        ]
    );
    let rounds: Vec<u64> = configs.iter().map(|c| count(c, "/round")).collect();
    assert_eq!(rounds, [1, 1, 1, 1, 2, 2, 2, 2]);
    // The first configuration set the common rate, at its own fraction:
    // no second open phase for it.
    assert_eq!(
        number(&configs[0], "/open/target_rps"),
        common_rate,
        "the first configuration sets the rate"
    );
    assert!(configs[0]["open_own"].is_null(), "{}", configs[0]);
    for c in configs {
        let name = c["config"].as_str().unwrap();
        assert_phase(name, &c["closed"]);
        assert_phase(name, &c["open"]);
        assert_eq!(
            number(c, "/open/target_rps"),
            common_rate,
            "one common rate"
        );
        count(c, "/open/late");
        count(c, "/open/not_sent");
        // Where a configuration's own maximum differs from the one that set
        // the rate, it also ran at the same fraction of its own maximum.
        let mut own_requests = 0;
        if !c["open_own"].is_null() {
            assert_phase(name, &c["open_own"]);
            assert_eq!(c["open_own"]["mode"], "open-own");
            let own = fraction * number(c, "/closed/throughput_rps");
            let offered = number(c, "/open_own/target_rps");
            assert!((offered - own).abs() < 1e-6 * own, "{offered} vs {own}");
            own_requests = count(c, "/open_own/requests");
        }
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
            + count(c, "/open/requests")
            + own_requests;
        let spans = &c["spans"];
        let traced = count(spans, "/traced_requests");
        let expected = count(spans, "/expected");
        let received = count(spans, "/received");
        assert_eq!(expected, traced * support::SPANS_PER_CHAT as u64);
        assert_eq!(received, expected, "{name}: {spans}");
        assert_eq!(count(spans, "/rejected_export_requests"), 0);
        match name {
            "off" | "no-eval" => {
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

    // Each traced configuration against `off` of its own round, then the
    // median over the rounds.
    let overhead = report["overhead"].as_array().unwrap();
    let per_round: Vec<(&str, u64)> = overhead
        .iter()
        .map(|o| (o["config"].as_str().unwrap(), count(o, "/round")))
        .collect();
    assert_eq!(
        per_round,
        [
            ("all", 1),
            ("ratio10", 1),
            ("no-eval", 1),
            ("all", 2),
            ("ratio10", 2),
            ("no-eval", 2)
        ]
    );
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
        // On minus off: negative when a short round is noisy.
        let delta = o["cpu_per_request_delta_us"].as_f64();
        assert!(delta.is_some_and(f64::is_finite), "{o}");
    }
    let medians = report["overhead_median"].as_array().unwrap();
    assert_eq!(medians.len(), 3);
    for m in medians {
        assert_eq!(count(m, "/rounds"), 2);
        let name = m["config"].as_str().unwrap();
        let ratios: Vec<f64> = overhead
            .iter()
            .filter(|o| o["config"] == name)
            .map(|o| number(o, "/throughput_ratio"))
            .collect();
        // The median of two rounds is their mean; min and max are theirs.
        let t = &m["throughput_ratio"];
        assert!((number(t, "/median") - (ratios[0] + ratios[1]) / 2.0).abs() < 1e-9);
        assert_eq!(number(t, "/min"), ratios[0].min(ratios[1]));
        assert_eq!(number(t, "/max"), ratios[0].max(ratios[1]));
        for field in [
            "/p99_closed_ratio",
            "/p99_open_ratio",
            "/cpu_per_request_ratio",
        ] {
            assert!(number(m, &format!("{field}/median")) > 0.0, "{m}");
        }
        assert!(m["cpu_per_request_delta_us"]["median"].is_f64(), "{m}");
    }
    let targets = report["targets"].as_array().unwrap();
    let target_names: Vec<&str> = targets
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    for expected in [
        "tracing CPU per /chat (traced minus untraced) <= 40 us",
        "tracing every request costs <= 10% of throughput",
        "tracing every request costs <= 20% of p99 (open loop, same offered rate)",
        "tracing 10% of requests costs <= 3% of throughput",
        "all: every span of every served request arrives, none dropped",
        "ratio10: each service ready within 200 ms of spawn",
        "evaluating every answer costs <= 10% of a request's pipeline CPU",
    ] {
        assert!(target_names.contains(&expected), "{target_names:?}");
    }
    // One check per configuration, not per round.
    assert_eq!(
        target_names
            .iter()
            .filter(|t| t.starts_with("off: "))
            .count(),
        4,
        "{target_names:?}"
    );
    // CPU per span, part by part, in this process: every part measured.
    let parts = &report["span_costs"];
    assert!(count(parts, "/requests") > 0, "{parts}");
    for part in [
        "/tracing",
        "/recording",
        "/recording_unsampled",
        "/translate",
        "/encoding",
        "/sending",
        "/otel_api",
        "/otel_api_unsampled",
    ] {
        assert!(number(parts, part) > 0.0, "{part}: {parts}");
    }
    number(parts, "/processor");

    // The human summary is printed too.
    assert!(stdout.contains("overhead against tracing off"), "{stdout}");
    assert!(stdout.contains("CPU per span, part by part"), "{stdout}");
    assert!(stdout.contains("median over 2 rounds"), "{stdout}");
}
