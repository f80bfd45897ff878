//! The bench's figures: what is written as JSON (stable field names, so runs
//! can be compared across commits) and how they are printed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::load::Outcome;

/// Bumped when a field changes meaning or disappears.
/// 2: `rounds`, `round`, `open_own`, `overhead` per round and
/// `overhead_median`.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub ragtrace_version: &'static str,
    pub settings: Settings,
    pub configs: Vec<ConfigReport>,
    /// Each traced configuration against `off` of the same round, when both
    /// ran.
    pub overhead: Vec<Overhead>,
    /// Per traced configuration: the median of its rounds' ratios (what the
    /// targets are checked against), with their spread.
    pub overhead_median: Vec<OverheadSummary>,
    /// The targets, checked against this run's figures.
    pub targets: Vec<TargetCheck>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    pub build_profile: String,
    pub cores: usize,
    pub spans_per_request: u64,
    pub concurrency: usize,
    pub connections: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub requests: Option<u64>,
    pub open_duration_s: f64,
    /// The open loop's offered rate (the same for every configuration).
    pub open_rate_rps: Option<f64>,
    /// The rate as a fraction of a closed-loop throughput (`None` when
    /// `--rate` gave it).
    pub rate_fraction: Option<f64>,
    pub rounds: u32,
    pub smoke: bool,
    /// The `OTEL_BSP_*` variables passed to the services, if any.
    pub otel_bsp: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigReport {
    pub config: String,
    pub description: String,
    /// 1-based; configurations run interleaved, round after round.
    pub round: u32,
    /// The slowest service's time from spawn to `/readyz` 200.
    pub pipeline_ready_ms: f64,
    pub warmup_requests: u64,
    pub warmup_errors: u64,
    pub closed: PhaseReport,
    /// Open loop at the run's common rate.
    pub open: Option<PhaseReport>,
    /// Open loop at the same fraction of this configuration's own
    /// closed-loop throughput (absent where that is the common rate).
    pub open_own: Option<PhaseReport>,
    pub spans: SpanReport,
    pub services: Vec<ServiceReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// `closed`, `open` or `open-own`.
    pub mode: String,
    /// Open loop: the offered rate.
    pub target_rps: Option<f64>,
    pub requests: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Open loop: sent more than 1 ms after the intended time.
    pub late: u64,
    /// Open loop: scheduled but never sent.
    pub not_sent: u64,
    pub elapsed_s: f64,
    pub throughput_rps: f64,
    pub latency_ms: Latency,
    /// CPU time of the four services during the phase.
    pub pipeline_cpu_s: f64,
    pub pipeline_cpu_s_per_request: f64,
    /// CPU time of the bench itself (load generator + OTLP receiver).
    pub bench_cpu_s_per_request: f64,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl PhaseReport {
    pub fn new(
        mode: &str,
        outcome: &Outcome,
        target_rps: Option<f64>,
        pipeline_cpu: Duration,
        bench_cpu: Duration,
    ) -> Self {
        let requests = outcome.ok + outcome.errors;
        let per_request = |cpu: Duration| {
            if requests == 0 {
                0.0
            } else {
                cpu.as_secs_f64() / requests as f64
            }
        };
        let h = &outcome.latency_us;
        let ms = |us: u64| us as f64 / 1e3;
        Self {
            mode: mode.into(),
            target_rps,
            requests,
            errors: outcome.errors,
            first_error: outcome.first_error.clone(),
            late: outcome.late,
            not_sent: outcome.not_sent,
            elapsed_s: outcome.elapsed.as_secs_f64(),
            throughput_rps: outcome.throughput(),
            latency_ms: Latency {
                p50: ms(h.value_at_quantile(0.50)),
                p90: ms(h.value_at_quantile(0.90)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
            },
            pipeline_cpu_s: pipeline_cpu.as_secs_f64(),
            pipeline_cpu_s_per_request: per_request(pipeline_cpu),
            bench_cpu_s_per_request: per_request(bench_cpu),
        }
    }
}

/// Span accounting over the services' whole life (warm-up included).
#[derive(Debug, Clone, Serialize)]
pub struct SpanReport {
    /// Requests answered 200 whose trace the sampler kept.
    pub traced_requests: u64,
    /// `traced_requests` × spans per request.
    pub expected: u64,
    /// Spans the OTLP receiver decoded that belong to the traced requests'
    /// traces.
    pub received: u64,
    /// Spans of other traces (the retrieval service's startup indexing).
    pub other_spans: u64,
    /// The services' own export totals, summed (see [`ExportTotals`]).
    pub ended: u64,
    pub exported: u64,
    pub dropped: u64,
    pub failed_export: u64,
    pub unexported_at_exit: u64,
    /// Services whose totals line was found (0 with tracing off).
    pub exporters_reporting: usize,
    pub traces_received: u64,
    /// Traces that arrived with exactly the spans of one `/chat`.
    pub traces_complete: u64,
    pub root_spans: u64,
    pub export_requests: u64,
    pub rejected_export_requests: u64,
}

/// One service's `telemetry: totals at shutdown` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExportTotals {
    pub ended: u64,
    pub exported: u64,
    pub failed_export: u64,
    pub dropped: u64,
    pub unexported_at_exit: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    pub service: String,
    /// From spawn to the first `/readyz` 200.
    pub ready_ms: f64,
    /// After it was ready, before any load.
    pub rss_start_kib: u64,
    /// After the first tenth of the closed-loop phase.
    pub rss_checkpoint_kib: Option<u64>,
    /// After the last phase.
    pub rss_end_kib: u64,
    /// CPU time from ready to the end of the last phase.
    pub cpu_s: f64,
    /// `None` with tracing off (no exporter), or if the line was missing.
    pub export: Option<ExportTotals>,
    pub spans_received: u64,
    /// `ok`, or how the process ended.
    pub exit: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Overhead {
    pub config: String,
    pub round: u32,
    /// Closed-loop throughput, on / off (1.0 = free).
    pub throughput_ratio: f64,
    /// Closed-loop p99, on / off.
    pub p99_closed_ratio: f64,
    /// Open-loop p99 at the same offered rate, on / off.
    pub p99_open_ratio: Option<f64>,
    pub p50_open_ratio: Option<f64>,
    /// Pipeline CPU per request (closed loop), on / off.
    pub cpu_per_request_ratio: f64,
}

/// The median of a traced configuration's per-round ratios.
#[derive(Debug, Clone, Serialize)]
pub struct OverheadSummary {
    pub config: String,
    pub rounds: usize,
    pub throughput_ratio: Spread,
    pub p99_closed_ratio: Spread,
    pub p99_open_ratio: Option<Spread>,
    pub p50_open_ratio: Option<Spread>,
    pub cpu_per_request_ratio: Spread,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for no values. The median of an even count is the mean of the
    /// middle two.
    fn of(mut values: Vec<f64>) -> Option<Spread> {
        values.retain(|v| !v.is_nan());
        values.sort_by(f64::total_cmp);
        let n = values.len();
        if n == 0 {
            return None;
        }
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: values[0],
            max: values[n - 1],
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub target: String,
    pub value: String,
    pub met: bool,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

impl Overhead {
    fn between(on: &ConfigReport, off: &ConfigReport) -> Self {
        let open = |f: fn(&Latency) -> f64| {
            on.open
                .as_ref()
                .zip(off.open.as_ref())
                .map(|(a, b)| ratio(f(&a.latency_ms), f(&b.latency_ms)))
        };
        Overhead {
            config: on.config.clone(),
            round: on.round,
            throughput_ratio: ratio(on.closed.throughput_rps, off.closed.throughput_rps),
            p99_closed_ratio: ratio(on.closed.latency_ms.p99, off.closed.latency_ms.p99),
            p99_open_ratio: open(|l| l.p99),
            p50_open_ratio: open(|l| l.p50),
            cpu_per_request_ratio: ratio(
                on.closed.pipeline_cpu_s_per_request,
                off.closed.pipeline_cpu_s_per_request,
            ),
        }
    }
}

impl Report {
    pub fn new(settings: Settings, configs: Vec<ConfigReport>) -> Self {
        // Each traced configuration against `off` of its own round.
        let overhead: Vec<Overhead> = configs
            .iter()
            .filter(|c| c.config != "off")
            .filter_map(|on| {
                let off = configs
                    .iter()
                    .find(|c| c.config == "off" && c.round == on.round)?;
                Some(Overhead::between(on, off))
            })
            .collect();
        let overhead_median = distinct(overhead.iter().map(|o| o.config.as_str()))
            .iter()
            .filter_map(|name| {
                let rounds: Vec<&Overhead> =
                    overhead.iter().filter(|o| o.config == *name).collect();
                let spread =
                    |f: fn(&Overhead) -> f64| Spread::of(rounds.iter().map(|o| f(o)).collect());
                let optional = |f: fn(&Overhead) -> Option<f64>| {
                    Spread::of(rounds.iter().filter_map(|o| f(o)).collect())
                };
                Some(OverheadSummary {
                    config: (*name).to_owned(),
                    rounds: rounds.len(),
                    throughput_ratio: spread(|o| o.throughput_ratio)?,
                    p99_closed_ratio: spread(|o| o.p99_closed_ratio)?,
                    p99_open_ratio: optional(|o| o.p99_open_ratio),
                    p50_open_ratio: optional(|o| o.p50_open_ratio),
                    cpu_per_request_ratio: spread(|o| o.cpu_per_request_ratio)?,
                })
            })
            .collect::<Vec<_>>();
        let targets = targets(&configs, &overhead_median);
        Self {
            schema_version: SCHEMA_VERSION,
            ragtrace_version: env!("CARGO_PKG_VERSION"),
            settings,
            configs,
            overhead,
            overhead_median,
            targets,
        }
    }
}

/// The configuration names among `names`, each once, in order of first
/// appearance (rounds repeat them).
fn distinct<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = Vec::new();
    for name in names {
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    seen
}

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

/// The targets, as far as this run's figures speak to them. Ratios
/// are the medians over the rounds; the per-configuration checks hold for
/// every round of a configuration (latency: its median over the rounds).
fn targets(configs: &[ConfigReport], overhead: &[OverheadSummary]) -> Vec<TargetCheck> {
    let mut checks = Vec::new();
    let mut check =
        |target: String, value: String, met: bool| checks.push(TargetCheck { target, value, met });
    if let Some(all) = overhead.iter().find(|o| o.config == "all") {
        check(
            "tracing every request costs <= 5% of throughput".into(),
            ratio_text(&all.throughput_ratio, all.rounds),
            all.throughput_ratio.median >= 0.95,
        );
        let (p99, phase) = match &all.p99_open_ratio {
            Some(open) => (open, "open loop, same offered rate"),
            None => (&all.p99_closed_ratio, "closed loop"),
        };
        check(
            format!("tracing every request costs <= 10% of p99 ({phase})"),
            ratio_text(p99, all.rounds),
            p99.median <= 1.10,
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
        "  spans: expected {} ({} traced requests x 13), received {} (+{} of other traces), dropped {}, failed exports {}, unexported at exit {} ({} of 4 exporters reported); traces {} ({} complete)",
        s.expected,
        s.traced_requests,
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
        let label = if s.rounds > 1 {
            format!("{}#{}", c.config, c.round)
        } else {
            c.config.clone()
        };
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
                if s.rounds > 1 {
                    format!("{}#{}", c.config, c.round)
                } else {
                    c.config.clone()
                },
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
                "  {:<10} throughput x{:.3} ({:+.1}%), p99 closed x{:.3}, p99 open {}, p50 open {}, CPU/request x{:.3}",
                if s.rounds > 1 {
                    format!("{}#{}", o.config, o.round)
                } else {
                    o.config.clone()
                },
                o.throughput_ratio,
                (o.throughput_ratio - 1.0) * 100.0,
                o.p99_closed_ratio,
                x(o.p99_open_ratio),
                x(o.p50_open_ratio),
                o.cpu_per_request_ratio
            );
        }
        if s.rounds > 1 {
            let _ = writeln!(out, "  median over {} rounds:", s.rounds);
            for o in &report.overhead_median {
                let _ = writeln!(
                    out,
                    "  {:<10} throughput x{:.3} ({:+.1}%; rounds x{:.3} to x{:.3}), p99 closed x{:.3}, p99 open {}, p50 open {}, CPU/request x{:.3}",
                    o.config,
                    o.throughput_ratio.median,
                    (o.throughput_ratio.median - 1.0) * 100.0,
                    o.throughput_ratio.min,
                    o.throughput_ratio.max,
                    o.p99_closed_ratio.median,
                    x(o.p99_open_ratio.map(|r| r.median)),
                    x(o.p50_open_ratio.map(|r| r.median)),
                    o.cpu_per_request_ratio.median
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
