//! The figures as printed: one block per configuration as it finishes
//! ([`render_config`]) and the summary table at the end ([`render`]).

use std::fmt::Write as _;

use super::{ConfigReport, PhaseReport, Report};

fn kib(k: u64) -> String {
    format!("{:.1} MiB", k as f64 / 1024.0)
}

fn phase_line(out: &mut String, p: &PhaseReport) {
    let rate = match p.target_rps {
        Some(r) => format!(" at {r:.0} req/s offered"),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "  {:<6}{rate}: {} requests in {:.1} s = {:.0} req/s, {} errors{}",
        p.mode,
        p.requests,
        p.elapsed_s,
        p.throughput_rps,
        p.errors,
        if p.mode != "closed" {
            format!(", {} late, {} not sent", p.late, p.not_sent)
        } else {
            String::new()
        }
    );
    let l = &p.latency_ms;
    let _ = writeln!(
        out,
        "          latency p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        l.p50, l.p90, l.p99, l.max
    );
    let _ = writeln!(
        out,
        "          CPU per request: pipeline {:.0} us, bench (load + receiver) {:.0} us",
        p.pipeline_cpu_s_per_request * 1e6,
        p.bench_cpu_s_per_request * 1e6
    );
    if let Some(err) = &p.first_error {
        let _ = writeln!(out, "          first error: {err}");
    }
}

/// One configuration, as printed when it finishes.
pub fn render_config(c: &ConfigReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "== {} (round {}): {}",
        c.config, c.round, c.description
    );
    let ready: Vec<String> = c
        .services
        .iter()
        .map(|s| format!("{} {:.0} ms", s.service, s.ready_ms))
        .collect();
    let _ = writeln!(
        out,
        "  ready in {:.0} ms ({})",
        c.pipeline_ready_ms,
        ready.join(", ")
    );
    phase_line(&mut out, &c.closed);
    for open in c.open.iter().chain(&c.open_own) {
        phase_line(&mut out, open);
    }
    let s = &c.spans;
    let _ = writeln!(
        out,
        "  spans: expected {} ({} traced requests x {}), received {} (+{} of other traces), dropped {}, failed exports {}, unexported at exit {} ({} of 4 exporters reported); traces {} ({} complete)",
        s.expected,
        s.traced_requests,
        crate::bench::SPANS_PER_REQUEST,
        s.received,
        s.other_spans,
        s.dropped,
        s.failed_export,
        s.unexported_at_exit,
        s.exporters_reporting,
        s.traces_received,
        s.traces_complete
    );
    for svc in &c.services {
        let checkpoint = svc
            .rss_checkpoint_kib
            .map(|k| format!(", after 1/10 {}", kib(k)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<16} RSS start {}{checkpoint}, end {}; CPU {:.2} s; spans received {}{}",
            svc.service,
            kib(svc.rss_start_kib),
            kib(svc.rss_end_kib),
            svc.cpu_s,
            svc.spans_received,
            if svc.exit == "ok" {
                String::new()
            } else {
                format!("; exit: {}", svc.exit)
            }
        );
    }
    out
}

/// The summary printed at the end of a run.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.settings;
    let _ = writeln!(
        out,
        "\nragtrace bench ({} build, {} cores): closed loop {} connections {}; open loop {} connections for {:.1} s at {}",
        s.build_profile,
        s.cores,
        s.concurrency,
        match s.requests {
            Some(n) => format!("for {n} requests"),
            None => format!("for {:.1} s", s.duration_s),
        },
        s.connections,
        s.open_duration_s,
        s.open_rate_rps
            .map_or("-".to_owned(), |r| format!("{r:.0} req/s"))
    );
    let _ = writeln!(
        out,
        "\n{:<10} {:>7} {:>8} {:>8} {:>8} {:>8} | {:>8} {:>8} {:>8} | {:>9} {:>9} {:>7} | {:>8}",
        "config",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "open p50",
        "open p99",
        "late",
        "spans exp",
        "received",
        "dropped",
        "CPU/req"
    );
    for c in &report.configs {
        let (op50, op99, late) = match &c.open {
            Some(o) => (
                format!("{:.3}", o.latency_ms.p50),
                format!("{:.3}", o.latency_ms.p99),
                o.late.to_string(),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let l = &c.closed.latency_ms;
        let label = label(&c.config, c.round, s.rounds);
        let _ = writeln!(
            out,
            "{:<10} {:>7.0} {:>8.3} {:>8.3} {:>8.3} {:>8.3} | {:>8} {:>8} {:>8} | {:>9} {:>9} {:>7} | {:>6.0}us",
            label,
            c.closed.throughput_rps,
            l.p50,
            l.p90,
            l.p99,
            l.max,
            op50,
            op99,
            late,
            c.spans.expected,
            c.spans.received,
            c.spans.dropped,
            c.closed.pipeline_cpu_s_per_request * 1e6
        );
    }
    // Configurations at their own half maximum, where that is a phase.
    for c in &report.configs {
        if let Some(own) = &c.open_own {
            let _ = writeln!(
                out,
                "{:<10} open loop at {:.0} req/s (its own maximum x {}): p50 {:.3} ms, p99 {:.3} ms, {} late",
                label(&c.config, c.round, s.rounds),
                own.target_rps.unwrap_or(0.0),
                s.rate_fraction.unwrap_or(0.0),
                own.latency_ms.p50,
                own.latency_ms.p99,
                own.late
            );
        }
    }
    if !report.overhead.is_empty() {
        let _ = writeln!(out, "\noverhead against tracing off (same round):");
        let x = |r: Option<f64>| r.map_or("-".into(), |r| format!("x{r:.3}"));
        for o in &report.overhead {
            let _ = writeln!(
                out,
                "  {:<10} throughput x{:.3} ({:+.1}%), p99 closed x{:.3}, p99 open {}, p50 open {}, CPU/request x{:.3} ({:+.0} us)",
                label(&o.config, o.round, s.rounds),
                o.throughput_ratio,
                (o.throughput_ratio - 1.0) * 100.0,
                o.p99_closed_ratio,
                x(o.p99_open_ratio),
                x(o.p50_open_ratio),
                o.cpu_per_request_ratio,
                o.cpu_per_request_delta_us
            );
        }
        if s.rounds > 1 {
            let _ = writeln!(out, "  median over {} rounds:", s.rounds);
            for o in &report.overhead_median {
                let _ = writeln!(
                    out,
                    "  {:<10} throughput x{:.3} ({:+.1}%; rounds x{:.3} to x{:.3}), p99 closed x{:.3}, p99 open {}, p50 open {}, CPU/request x{:.3} ({:+.0} us)",
                    o.config,
                    o.throughput_ratio.median,
                    (o.throughput_ratio.median - 1.0) * 100.0,
                    o.throughput_ratio.min,
                    o.throughput_ratio.max,
                    o.p99_closed_ratio.median,
                    x(o.p99_open_ratio.map(|r| r.median)),
                    x(o.p50_open_ratio.map(|r| r.median)),
                    o.cpu_per_request_ratio.median,
                    o.cpu_per_request_delta_us.median
                );
            }
        }
    }
    let _ = writeln!(out, "\ntargets:");
    for t in &report.targets {
        let _ = writeln!(
            out,
            "  [{}] {}: {}",
            if t.met { "met" } else { "NOT met" },
            t.target,
            t.value
        );
    }
    out
}

/// A configuration's name, with its round when there are several.
fn label(config: &str, round: u32, rounds: u32) -> String {
    if rounds > 1 {
        format!("{config}#{round}")
    } else {
        config.to_owned()
    }
}
