//! The targets, checked against a run's figures ([`TargetCheck`]).

use std::collections::BTreeMap;

use super::{
    ConfigReport, OverheadSummary, PhaseReport, SpanReport, Spread, TargetCheck, distinct, ratio,
};

/// A ratio as a change (`-28.8%`), plus the rounds' range when there were
/// several.
fn ratio_text(spread: &Spread, rounds: usize) -> String {
    let pct = |r: f64| (r - 1.0) * 100.0;
    if rounds > 1 {
        format!(
            "{:+.1}% (median of {rounds} rounds; {:+.1}% to {:+.1}%)",
            pct(spread.median),
            pct(spread.min),
            pct(spread.max)
        )
    } else {
        format!("{:+.1}%", pct(spread.median))
    }
}

/// A CPU difference in µs, plus the rounds' range when there were several.
fn delta_text(spread: &Spread, rounds: usize) -> String {
    if rounds > 1 {
        format!(
            "{:+.0} us (median of {rounds} rounds; {:+.0} to {:+.0} us)",
            spread.median, spread.min, spread.max
        )
    } else {
        format!("{:+.0} us", spread.median)
    }
}

/// The targets, as far as this run's figures speak to them. Ratios
/// are the medians over the rounds; the per-configuration checks hold for
/// every round of a configuration (latency: its median over the rounds).
pub(super) fn targets(configs: &[ConfigReport], overhead: &[OverheadSummary]) -> Vec<TargetCheck> {
    let mut checks = Vec::new();
    let mut check =
        |target: String, value: String, met: bool| checks.push(TargetCheck { target, value, met });
    if let Some(all) = overhead.iter().find(|o| o.config == "all") {
        check(
            "tracing CPU per /chat (traced minus untraced) <= 40 us".into(),
            delta_text(&all.cpu_per_request_delta_us, all.rounds),
            all.cpu_per_request_delta_us.median <= 40.0,
        );
        check(
            "tracing every request costs <= 10% of throughput".into(),
            ratio_text(&all.throughput_ratio, all.rounds),
            all.throughput_ratio.median >= 0.90,
        );
        let (p99, phase) = match &all.p99_open_ratio {
            Some(open) => (open, "open loop, same offered rate"),
            None => (&all.p99_closed_ratio, "closed loop"),
        };
        check(
            format!("tracing every request costs <= 20% of p99 ({phase})"),
            ratio_text(p99, all.rounds),
            p99.median <= 1.20,
        );
    }
    if let Some(ratio10) = overhead.iter().find(|o| o.config == "ratio10") {
        check(
            "tracing 10% of requests costs <= 3% of throughput".into(),
            ratio_text(&ratio10.throughput_ratio, ratio10.rounds),
            ratio10.throughput_ratio.median >= 0.97,
        );
    }
    if let Some(no_eval) = overhead.iter().find(|o| o.config == "no-eval") {
        // `no-eval` against `off`: a request without its evaluation. The
        // share is of an evaluated request's CPU (`off`).
        let share = 1.0 - no_eval.cpu_per_request_ratio.median;
        check(
            "evaluating every answer costs <= 10% of a request's pipeline CPU".into(),
            format!(
                "{:.0} us per request, {:.1}% (no-eval against off: {})",
                -no_eval.cpu_per_request_delta_us.median,
                share * 100.0,
                delta_text(&no_eval.cpu_per_request_delta_us, no_eval.rounds)
            ),
            share <= 0.10,
        );
    }
    for name in distinct(configs.iter().map(|c| c.config.as_str())) {
        let runs: Vec<&ConfigReport> = configs.iter().filter(|c| c.config == name).collect();
        let sum = |f: fn(&SpanReport) -> u64| runs.iter().map(|c| f(&c.spans)).sum::<u64>();
        check(
            format!("{name}: every span of every served request arrives, none dropped"),
            format!(
                "expected {}, received {}, dropped {}",
                sum(|s| s.expected),
                sum(|s| s.received),
                sum(|s| s.dropped)
            ),
            runs.iter().all(|c| {
                let s = &c.spans;
                s.received == s.expected && s.dropped == 0 && s.failed_export == 0
            }),
        );
        // The latency target is about half of the pipeline's maximum: this
        // configuration's own, where it has a phase at that rate.
        let phases: Vec<&PhaseReport> = runs
            .iter()
            .filter_map(|c| c.open_own.as_ref().or(c.open.as_ref()))
            .collect();
        if let (Some(p50), Some(p99)) = (
            Spread::of(phases.iter().map(|p| p.latency_ms.p50).collect()),
            Spread::of(phases.iter().map(|p| p.latency_ms.p99).collect()),
        ) {
            let rates: Vec<String> = phases
                .iter()
                .map(|p| format!("{:.0}", p.target_rps.unwrap_or(0.0)))
                .collect();
            let median = if phases.len() > 1 { "median " } else { "" };
            check(
                format!("{name}: p50 < 2 ms and p99 < 10 ms in the open loop"),
                format!(
                    "{median}p50 {:.2} ms, {median}p99 {:.2} ms at {} req/s",
                    p50.median,
                    p99.median,
                    rates.join(", ")
                ),
                p50.median < 2.0 && p99.median < 10.0,
            );
        }
        let mut growth: BTreeMap<&str, f64> = BTreeMap::new();
        for s in runs.iter().flat_map(|c| &c.services) {
            if let Some(base) = s.rss_checkpoint_kib {
                let g = ratio(s.rss_end_kib as f64, base as f64) - 1.0;
                let worst = growth.entry(s.service.as_str()).or_insert(g);
                *worst = worst.max(g);
            }
        }
        if !growth.is_empty() {
            check(
                format!("{name}: RSS at the end within 10% of RSS after the first tenth"),
                growth
                    .iter()
                    .map(|(service, g)| format!("{service} {:+.1}%", g * 100.0))
                    .collect::<Vec<_>>()
                    .join(", "),
                growth.values().all(|g| *g <= 0.10),
            );
        }
        let slowest = runs
            .iter()
            .flat_map(|c| &c.services)
            .map(|s| s.ready_ms)
            .fold(0.0, f64::max);
        check(
            format!("{name}: each service ready within 200 ms of spawn"),
            format!("slowest {slowest:.0} ms"),
            slowest <= 200.0,
        );
    }
    checks
}
