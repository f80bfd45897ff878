//! The bench's figures: what is written as JSON (stable field names, so runs
//! can be compared across commits) and how they are printed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::load::Outcome;

mod targets;
mod text;

use targets::targets;
pub use text::{render, render_config};

/// Bumped when a field changes meaning or disappears.
/// 2: `rounds`, `round`, `open_own`, `overhead` per round and
/// `overhead_median`. 3: `cpu_per_request_delta_us`, `span_costs`.
pub const SCHEMA_VERSION: u32 = 3;

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
    /// CPU per span, part by part, measured in-process (`--spans`).
    pub span_costs: Option<super::spans::SpanCosts>,
}

#[derive(Debug, Clone, Default, Serialize)]
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
    /// Pipeline CPU per request (closed loop), on minus off, in µs: what
    /// tracing costs one `/chat`.
    pub cpu_per_request_delta_us: f64,
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
    pub cpu_per_request_delta_us: Spread,
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
            cpu_per_request_delta_us: (on.closed.pipeline_cpu_s_per_request
                - off.closed.pipeline_cpu_s_per_request)
                * 1e6,
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
                    cpu_per_request_delta_us: spread(|o| o.cpu_per_request_delta_us)?,
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
            span_costs: None,
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
