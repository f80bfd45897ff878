//! `ragtrace bench`: what tracing costs, measured.
//!
//! People choose a tracing setup by its price, so the price has to be a
//! number: this command starts the real pipeline (the four services as
//! separate processes, exactly as `ragtrace up` does) once per tracing
//! configuration, drives `POST /chat` with a load generator, and reports for
//! each configuration what the pipeline served, how fast, at what CPU and
//! memory cost, and whether every span it should have exported arrived.
//!
//! # Why ratios, why one run, and why rounds
//!
//! On a small shared machine absolute times move with whatever else runs; two
//! configurations measured minutes apart can differ by more than tracing
//! costs. Configurations are therefore measured back to back in one run, with
//! the same load, and compared as ratios (tracing on / tracing off). Counts
//! (spans expected, received, dropped) do not depend on timing at all and are
//! exact.
//!
//! Back to back is not always enough: here, `off` measured 7,060 and then
//! 8,080 req/s in two rounds of one run, a minute apart. `--rounds N` runs
//! the configurations interleaved (off, all, ratio10, off, all, ...), takes
//! each ratio within its round, and reports the median over the rounds with
//! their range; the targets are checked against the medians.
//!
//! # The configurations
//!
//! | name | environment | spans expected per served request |
//! |---|---|---|
//! | `off` | `OTEL_SDK_DISABLED=true` | 0 (and none may arrive) |
//! | `all` | the embedded default sampler, `parentbased_always_on` | 13 |
//! | `ratio10` | `OTEL_TRACES_SAMPLER=parentbased_traceidratio`, `_ARG=0.1` | 13 if its trace was sampled, else 0 |
//!
//! Which requests a ratio sampler kept is decided from the *responses*, not
//! from what arrived: every `/chat` response carries its trace id, and the
//! bench asks the SDK's own `TraceIdRatioBased` sampler (the code the gateway
//! runs) about it. Spans expected are then independent of the receiver, so a
//! trace lost entirely, root span included, still counts as missing. (The
//! alternative, counting the roots that arrived, cannot see such a trace.)
//!
//! Spans received are counted per trace id: the spans of the traced
//! requests' traces. Spans of other traces (retrieval indexes the corpus at
//! startup, in a trace of its own when it is sampled) are reported apart.
//!
//! Spans dropped are the services' own figures: each service logs its export
//! totals when it shuts down (see `shared::telemetry::export_report`), and the bench reads those
//! lines. Nothing is estimated.
//!
//! # The phases, per configuration
//!
//! 1. Start a counting OTLP receiver ([`sink`]) and the four services;
//!    time each one from spawn to its first `/readyz` 200.
//! 2. Warm up: closed loop for `--warmup`.
//! 3. Closed loop at `--concurrency` for `--duration` (or `--requests`): the
//!    maximum throughput. Each service's RSS is also sampled after the first
//!    tenth of this phase, the baseline of the leak check.
//! 4. Open loop at a fixed rate for `--open-duration`: latency at a given
//!    load. The rate is `--rate`, or `--rate-fraction` of the closed-loop
//!    throughput of the first configuration of the run, so every
//!    configuration gets the same offered load (the latency ratios).
//! 5. With `--rate-fraction`, open loop once more at that fraction of the
//!    configuration's *own* closed-loop throughput (`open-own`), unless that
//!    is the same rate: "half of the pipeline's maximum" for a traced
//!    pipeline is half of *its* maximum, which is where the latency target
//!    is checked (and, with `--open-duration 60`, the 60 s zero-drop run).
//! 6. SIGTERM every service (each flushes its spans and logs its totals),
//!    then compare spans expected, received and dropped.
//!
//! Every request of every phase, warm-up included, is counted in the span
//! figures: they account for the whole life of the services' exporters.
//!
//! 7. Last, in this process and without the pipeline: CPU per span, part by
//!    part ([`spans`]): what the pipeline's figures are made of.
//!    `--spans-only` runs this part alone.

pub mod load;
mod measure;
pub mod procfs;
pub mod report;
pub mod sink;
pub mod spans;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::{SpanKind, TraceId};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample};

use load::Classifier;
use measure::run_config;
use report::{Report, Settings};

/// Spans one `/chat` produces when it is traced: gateway 3, query-processor
/// 7 (4, and one per evaluator), retrieval 4, llm-service 2 (asserted span by
/// span in `e2e/tests/e2e.rs`).
pub const SPANS_PER_REQUEST: u64 = 16;

/// The ratio of the `ratio10` configuration.
const RATIO: f64 = 0.1;

/// The questions sent, in turn: all answerable from the shipped corpus.
const QUESTIONS: [&str; 4] = [
    "What does the traceparent header contain?",
    "How does the batch span processor export spans?",
    "What is parent-based sampling?",
    "Why normalise embeddings before cosine similarity?",
];

/// A tracing configuration of the services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Tracing {
    /// `OTEL_SDK_DISABLED=true`.
    Off,
    /// Every request sampled (the embedded default).
    All,
    /// 10 % parent-based trace-id ratio sampling.
    Ratio10,
    /// Tracing off and no online evaluation (`RAGTRACE_EVALUATIONS=off`):
    /// against `off`, what evaluating every answer costs.
    NoEval,
}

impl Tracing {
    pub const ALL: [Tracing; 4] = [
        Tracing::Off,
        Tracing::All,
        Tracing::Ratio10,
        Tracing::NoEval,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tracing::Off => "off",
            Tracing::All => "all",
            Tracing::Ratio10 => "ratio10",
            Tracing::NoEval => "no-eval",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Tracing::Off => "tracing off (OTEL_SDK_DISABLED=true)",
            Tracing::All => "tracing on, every request sampled",
            Tracing::Ratio10 => "tracing on, 10% parent-based ratio sampling",
            Tracing::NoEval => "tracing off, answers not evaluated (RAGTRACE_EVALUATIONS=off)",
        }
    }

    /// The variables that select this configuration.
    fn env(self) -> Vec<(String, String)> {
        let pairs: &[(&str, &str)] = match self {
            Tracing::Off => &[("OTEL_SDK_DISABLED", "true")],
            Tracing::NoEval => &[
                ("OTEL_SDK_DISABLED", "true"),
                ("RAGTRACE_EVALUATIONS", "off"),
            ],
            Tracing::All => &[],
            Tracing::Ratio10 => &[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.1"),
            ],
        };
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Whether a request whose response carries `trace_id` was sampled. The
    /// gateway starts every trace here (the bench sends no `traceparent`), so
    /// the parent-based sampler defers to its root sampler.
    fn sampled(self, trace_id: TraceId) -> bool {
        let root = match self {
            Tracing::Off | Tracing::NoEval => return false,
            Tracing::All => Sampler::AlwaysOn,
            Tracing::Ratio10 => Sampler::TraceIdRatioBased(RATIO),
        };
        let sampler = Sampler::ParentBased(Box::new(root));
        let result =
            sampler.should_sample(None, trace_id, "POST /chat", &SpanKind::Server, &[], &[]);
        result.decision == SamplingDecision::RecordAndSample
    }

    fn classifier(self) -> Classifier {
        Arc::new(move |body: &[u8]| {
            let id = response_trace_id(body)?;
            (id != TraceId::INVALID && self.sampled(id)).then(|| u128::from_be_bytes(id.to_bytes()))
        })
    }
}

/// The `trace_id` of a `/chat` response body, found without parsing the
/// whole JSON (the generator does this for every response).
fn response_trace_id(body: &[u8]) -> Option<TraceId> {
    const KEY: &[u8] = br#""trace_id":""#;
    let at = body.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let hex = std::str::from_utf8(body.get(at..at + 32)?).ok()?;
    TraceId::from_hex(hex).ok()
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 10, 10s, 500ms)"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|err| format!("{text:?}: {err}"))
}

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Configurations to run, in this order (comma-separated or repeated).
    #[arg(long = "config", value_enum, value_delimiter = ',', default_values_t = Tracing::ALL)]
    pub configs: Vec<Tracing>,
    /// Closed loop: requests in flight (one keep-alive connection each).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Closed-loop phase length (10, 10s, 500ms).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// End the closed-loop phase after this many requests instead of
    /// after --duration (e.g. 100000 for the leak check).
    #[arg(long)]
    pub requests: Option<u64>,
    /// Warm-up before measuring (closed loop, not measured).
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub warmup: Duration,
    /// Open-loop phase length (default: --duration; 0 skips the phase).
    #[arg(long, value_parser = parse_duration)]
    pub open_duration: Option<Duration>,
    /// Open loop: requests per second.
    #[arg(long, conflicts_with = "rate_fraction")]
    pub rate: Option<f64>,
    /// Open loop: this fraction of the first configuration's closed-loop
    /// throughput (used when --rate is not given).
    #[arg(long, default_value_t = 0.5)]
    pub rate_fraction: f64,
    /// Open loop: connections the schedule is spread over.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Run the configurations this many times, interleaved (off, all,
    /// ratio10, off, all, ...). Ratios are taken within each round and the
    /// median over the rounds is reported: a shared machine's load drifts
    /// over minutes, and a drift between two configurations of one round
    /// then moves one ratio, not the verdict.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Also write the figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Only the in-process part: CPU per span, part by part (`spans.rs`),
    /// without starting the pipeline.
    #[arg(long)]
    pub spans_only: bool,
    /// A few seconds in all (for CI): 0.2 s warm-up, 1 s per phase, 4
    /// connections. Overrides the durations, --requests and the connection
    /// counts; proves every figure is produced, measures nothing.
    #[arg(long)]
    pub smoke: bool,
}

impl BenchArgs {
    fn effective(mut self) -> Self {
        if self.smoke {
            self.warmup = Duration::from_millis(200);
            self.duration = Duration::from_secs(1);
            self.open_duration = Some(Duration::from_secs(1));
            self.requests = None;
            self.concurrency = 4;
            self.connections = 4;
        }
        self
    }

    fn open_duration(&self) -> Duration {
        self.open_duration.unwrap_or(self.duration)
    }
}

/// Run the bench, print the report and write the JSON; returns the report.
pub async fn run(args: BenchArgs) -> anyhow::Result<Report> {
    let args = args.effective();
    if args.spans_only {
        let requests = if args.smoke {
            200
        } else {
            args.requests.unwrap_or(20_000)
        };
        let span_costs = spans::measure_on_own_thread(requests);
        span_costs.print();
        let mut report = Report::new(Settings::default(), Vec::new());
        report.span_costs = Some(span_costs);
        return Ok(report);
    }
    anyhow::ensure!(!args.configs.is_empty(), "no configuration to run");
    anyhow::ensure!(
        args.concurrency > 0 && args.connections > 0,
        "need connections"
    );
    anyhow::ensure!(
        args.rate_fraction > 0.0 && args.rate_fraction.is_finite(),
        "--rate-fraction must be positive"
    );
    let exe = std::env::current_exe().context("cannot locate the ragtrace binary")?;
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    if profile == "debug" && !args.smoke {
        eprintln!(
            "ragtrace bench: this is a debug build; its figures say little about a release \
             build (cargo run --release -p ragtrace -- bench)"
        );
    }
    let mut rate = args.rate;
    let mut configs = Vec::new();
    for round in 1..=args.rounds {
        for &tracing in &args.configs {
            eprintln!(
                "ragtrace bench: round {round} of {}: {} ...",
                args.rounds,
                tracing.description()
            );
            let report = run_config(&exe, &args, tracing, round, &mut rate)
                .await
                .with_context(|| format!("configuration {} (round {round})", tracing.name()))?;
            eprintln!("{}", report::render_config(&report));
            configs.push(report);
        }
    }
    let mut report = Report::new(
        Settings {
            build_profile: profile.into(),
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            spans_per_request: SPANS_PER_REQUEST,
            concurrency: args.concurrency,
            connections: args.connections,
            warmup_s: args.warmup.as_secs_f64(),
            duration_s: args.duration.as_secs_f64(),
            requests: args.requests,
            open_duration_s: args.open_duration().as_secs_f64(),
            open_rate_rps: rate,
            rate_fraction: args.rate.is_none().then_some(args.rate_fraction),
            rounds: args.rounds,
            smoke: args.smoke,
            otel_bsp: std::env::vars()
                .filter(|(k, _)| k.starts_with("OTEL_BSP_"))
                .collect(),
        },
        configs,
    );
    eprintln!("ragtrace bench: CPU per span, part by part ...");
    let span_requests = if args.smoke { 200 } else { 20_000 };
    let span_costs = spans::measure_on_own_thread(span_requests);
    println!("{}", report::render(&report));
    span_costs.print();
    report.span_costs = Some(span_costs);
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("ragtrace bench: figures written to {}", path.display());
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_id_is_found_in_a_response_body() {
        let body = br#"{"answer":"a \"trace_id\" b","contexts":[],"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","model":"m"}"#;
        assert_eq!(
            response_trace_id(body),
            Some(TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap())
        );
        assert_eq!(response_trace_id(br#"{"trace_id":"short"}"#), None);
        assert_eq!(response_trace_id(b"{}"), None);
    }

    #[test]
    fn the_ratio_configuration_samples_about_a_tenth_and_all_samples_every_trace() {
        let ids = (1..=20_000u128)
            .map(|i| TraceId::from(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)));
        let (mut all, mut ratio, mut off) = (0, 0, 0);
        for id in ids {
            all += u32::from(Tracing::All.sampled(id));
            ratio += u32::from(Tracing::Ratio10.sampled(id));
            off += u32::from(Tracing::Off.sampled(id));
        }
        assert_eq!((all, off), (20_000, 0));
        assert!((1_700..2_300).contains(&ratio), "{ratio}");
    }

    #[test]
    fn durations_parse_with_or_without_units() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("soon").is_err());
    }
}
