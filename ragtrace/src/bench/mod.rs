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
//! totals when it shuts down (see `shared::export`), and the bench reads those
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

pub mod load;
pub mod procfs;
pub mod report;
pub mod sink;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use opentelemetry::trace::{SpanKind, TraceId};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, ShouldSample};

use crate::launcher::{Output, Pipeline, Service, Topology};
use load::{Classifier, Mode, Outcome, Stop, Target};
use report::{
    ConfigReport, ExportTotals, PhaseReport, Report, ServiceReport, Settings, SpanReport,
};

/// Spans one `/chat` produces when it is traced: gateway 3, query-processor
/// 4, retrieval 4, llm-service 2 (asserted span by span in `tests/e2e.rs`).
pub const SPANS_PER_REQUEST: u64 = 13;

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
}

impl Tracing {
    pub const ALL: [Tracing; 3] = [Tracing::Off, Tracing::All, Tracing::Ratio10];

    pub fn name(self) -> &'static str {
        match self {
            Tracing::Off => "off",
            Tracing::All => "all",
            Tracing::Ratio10 => "ratio10",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Tracing::Off => "tracing off (OTEL_SDK_DISABLED=true)",
            Tracing::All => "tracing on, every request sampled",
            Tracing::Ratio10 => "tracing on, 10% parent-based ratio sampling",
        }
    }

    /// The variables that select this configuration.
    fn env(self) -> Vec<(String, String)> {
        let pairs: &[(&str, &str)] = match self {
            Tracing::Off => &[("OTEL_SDK_DISABLED", "true")],
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
            Tracing::Off => return false,
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
    let report = Report::new(
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
    println!("{}", report::render(&report));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("ragtrace bench: figures written to {}", path.display());
    }
    Ok(report)
}

/// What each service's process looked like at one moment.
type Snapshot = BTreeMap<&'static str, (u64, Duration)>;

fn snapshot(pids: &[(Service, u32)]) -> anyhow::Result<Snapshot> {
    pids.iter()
        .map(|&(service, pid)| {
            Ok((
                service.name(),
                (procfs::rss_kib(pid)?, procfs::cpu_time(pid)?),
            ))
        })
        .collect()
}

fn cpu_between(before: &Snapshot, after: &Snapshot) -> Duration {
    after
        .iter()
        .map(|(name, (_, cpu))| {
            cpu.saturating_sub(before.get(name).map_or(Duration::ZERO, |b| b.1))
        })
        .sum()
}

async fn run_config(
    exe: &std::path::Path,
    args: &BenchArgs,
    tracing: Tracing,
    round: u32,
    rate: &mut Option<f64>,
) -> anyhow::Result<ConfigReport> {
    let sink =
        sink::Sink::start("127.0.0.1:0".parse()?).context("cannot start the OTLP receiver")?;
    let mut env = tracing.env();
    env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".into(), sink.endpoint()));
    env.push(("OTEL_EXPORTER_OTLP_PROTOCOL".into(), "http/protobuf".into()));
    // The bench reads each service's export totals from its JSON log lines.
    env.push(("LOG_FORMAT".into(), "json".into()));

    let logs = Arc::new(Mutex::new(Vec::new()));
    let topology = Topology::free_loopback_ports()?;
    let mut pipeline = Pipeline::start(
        topology,
        |service| {
            let mut command = tokio::process::Command::new(exe);
            command.arg("serve").arg(service.name());
            // The configuration decides tracing, not the caller's shell;
            // the batch processor's OTEL_BSP_* settings are passed through
            // on purpose (that is how they are tuned).
            for (name, _) in std::env::vars() {
                let ours = name.starts_with("OTEL_") && !name.starts_with("OTEL_BSP_");
                if ours || name == "RUST_LOG" {
                    command.env_remove(name);
                }
            }
            command
        },
        &env,
        &Output::Capture(logs.clone()),
    )?;
    let readiness = match wait_ready(&mut pipeline).await {
        Ok(readiness) => readiness,
        Err(err) => {
            let logs = logs.lock().map(|l| l.join("\n")).unwrap_or_default();
            return Err(err.context(format!("service logs:\n{logs}")));
        }
    };
    let pids: Vec<(Service, u32)> = Service::ALL
        .iter()
        .map(|&s| Ok((s, pipeline.pid(s).context("a service has no pid")?)))
        .collect::<anyhow::Result<_>>()?;
    let at_start = snapshot(&pids)?;

    let target = Arc::new(Target {
        addr: topology.addr(Service::Gateway),
        path: "/chat",
        bodies: QUESTIONS
            .iter()
            .map(|q| Bytes::from(serde_json::json!({ "query": q }).to_string()))
            .collect(),
        timeout: Duration::from_secs(10),
    });
    let classify = tracing.classifier();

    // Warm-up.
    let warmup = load::run(
        target.clone(),
        Mode::Closed {
            concurrency: args.concurrency,
            stop: Stop::After(args.warmup),
        },
        classify.clone(),
        Arc::default(),
    )
    .await?;

    // Closed loop, with the leak check's baseline after its first tenth.
    let stop = match args.requests {
        Some(n) => Stop::Requests(n),
        None => Stop::After(args.duration),
    };
    let progress = Arc::new(AtomicU64::new(0));
    let before_closed = snapshot(&pids)?;
    let own_before_closed = procfs::own_cpu_time()?;
    let (closed, checkpoint) = closed_with_checkpoint(
        target.clone(),
        args.concurrency,
        stop,
        classify.clone(),
        progress,
        &pids,
    )
    .await?;
    let after_closed = snapshot(&pids)?;
    let own_after_closed = procfs::own_cpu_time()?;
    let closed_report = PhaseReport::new(
        "closed",
        &closed,
        None,
        cpu_between(&before_closed, &after_closed),
        own_after_closed.saturating_sub(own_before_closed),
    );

    // Open loop at the run's rate, the same for every configuration: the
    // latency ratios compare configurations under the same offered load.
    let open_duration = args.open_duration();
    let mut open_phases = Vec::new();
    let mut open_traced = Vec::new();
    let mut before = (after_closed, own_after_closed);
    if !open_duration.is_zero() {
        let common = *rate.get_or_insert(args.rate_fraction * closed.throughput());
        // And, for the latency target ("at half of maximum throughput"), at
        // the same fraction of this configuration's *own* maximum, unless
        // that is the same load (the configuration that set the rate).
        let own = args.rate_fraction * closed.throughput();
        let mut rates = vec![("open", common)];
        if args.rate.is_none() && (own - common).abs() > 0.01 * common {
            rates.push(("open-own", own));
        }
        for (mode, offered) in rates {
            let open = load::run(
                target.clone(),
                Mode::Open {
                    rate: offered,
                    connections: args.connections,
                    duration: open_duration,
                },
                classify.clone(),
                Arc::default(),
            )
            .await?;
            let after = (snapshot(&pids)?, procfs::own_cpu_time()?);
            open_phases.push(PhaseReport::new(
                mode,
                &open,
                Some(offered),
                cpu_between(&before.0, &after.0),
                after.1.saturating_sub(before.1),
            ));
            open_traced.extend(open.traced);
            before = after;
        }
    }
    let mut open_phases = open_phases.into_iter();
    let open_report = open_phases.next();
    let open_own_report = open_phases.next();
    let at_end = snapshot(&pids)?;

    // Stop: every service flushes its spans and logs its totals.
    let statuses = pipeline.stop_all(Duration::from_secs(15)).await;
    let totals = wait_for_totals(&logs, tracing != Tracing::Off).await;
    let counts = sink.counts();
    sink.stop().await;

    let mut services = Vec::new();
    for (service, status) in statuses {
        let name = service.name();
        let exit = match status {
            Ok(status) if status.success() => "ok".to_owned(),
            Ok(status) => status.to_string(),
            Err(err) => format!("{err:#}"),
        };
        services.push(ServiceReport {
            service: name.into(),
            ready_ms: readiness[&service].as_secs_f64() * 1e3,
            rss_start_kib: at_start[name].0,
            rss_checkpoint_kib: checkpoint.as_ref().map(|c| c[name].0),
            rss_end_kib: at_end[name].0,
            cpu_s: (at_end[name].1.saturating_sub(at_start[name].1)).as_secs_f64(),
            export: totals.get(name).copied(),
            spans_received: counts.spans_by_service.get(name).copied().unwrap_or(0),
            exit,
        });
    }
    services.sort_by_key(|s| {
        Service::parse(&s.service).map(|s| Service::ALL.iter().position(|x| *x == s))
    });

    // Each traced request's trace id (from its response): its spans are the
    // ones expected. Anything else that arrived (retrieval indexes the corpus
    // at startup, in a trace of its own) is counted apart.
    let traced_ids: Vec<u128> = [&warmup.traced, &closed.traced, &open_traced]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    let traced = traced_ids.len() as u64;
    let (received, complete) = counts.spans_of(&traced_ids, SPANS_PER_REQUEST as u32);
    let sum = |f: fn(&ExportTotals) -> u64| {
        services
            .iter()
            .filter_map(|s| s.export.as_ref())
            .map(f)
            .sum()
    };
    let spans = SpanReport {
        traced_requests: traced,
        expected: traced * SPANS_PER_REQUEST,
        received,
        other_spans: counts.spans - received,
        ended: sum(|t| t.ended),
        exported: sum(|t| t.exported),
        dropped: sum(|t| t.dropped),
        failed_export: sum(|t| t.failed_export),
        unexported_at_exit: sum(|t| t.unexported_at_exit),
        exporters_reporting: services.iter().filter(|s| s.export.is_some()).count(),
        traces_received: counts.traces(),
        traces_complete: complete,
        root_spans: counts.root_spans,
        export_requests: counts.export_requests,
        rejected_export_requests: counts.rejected_requests,
    };
    let pipeline_ready_ms = readiness
        .values()
        .map(|d| d.as_secs_f64() * 1e3)
        .fold(0.0, f64::max);
    Ok(ConfigReport {
        config: tracing.name().into(),
        description: tracing.description().into(),
        round,
        pipeline_ready_ms,
        warmup_requests: warmup.ok + warmup.errors,
        warmup_errors: warmup.errors,
        closed: closed_report,
        open: open_report,
        open_own: open_own_report,
        spans,
        services,
    })
}

/// Time from each service's spawn to its first `/readyz` 200. All four are
/// probed every 2 ms, concurrently with their startup.
async fn wait_ready(pipeline: &mut Pipeline) -> anyhow::Result<HashMap<Service, Duration>> {
    const TIMEOUT: Duration = Duration::from_secs(30);
    let topology = *pipeline.topology();
    let mut ready = HashMap::new();
    let started = Instant::now();
    while ready.len() < Service::ALL.len() {
        for service in Service::ALL {
            if ready.contains_key(&service) {
                continue;
            }
            if let Some(status) = pipeline.try_exit_status(service)? {
                anyhow::bail!("{} exited during startup ({status})", service.name());
            }
            let probe = load::get_status(
                topology.addr(service),
                "/readyz",
                Duration::from_millis(500),
            );
            if probe.await.is_ok_and(|status| status == 200) {
                ready.insert(service, pipeline.spawned_at(service).elapsed());
            }
        }
        anyhow::ensure!(
            started.elapsed() < TIMEOUT,
            "not ready after {TIMEOUT:?}: {:?}",
            Service::ALL
                .iter()
                .filter(|s| !ready.contains_key(s))
                .map(|s| s.name())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(ready)
}

/// The closed-loop phase, sampling every service's RSS once a tenth of it is
/// done (of the requests with `--requests`, else of the time). Prints
/// progress every 10 s, for long runs.
async fn closed_with_checkpoint(
    target: Arc<Target>,
    concurrency: usize,
    stop: Stop,
    classify: Classifier,
    progress: Arc<AtomicU64>,
    pids: &[(Service, u32)],
) -> anyhow::Result<(Outcome, Option<Snapshot>)> {
    let started = Instant::now();
    let load = load::run(
        target,
        Mode::Closed { concurrency, stop },
        classify,
        progress.clone(),
    );
    tokio::pin!(load);
    let mut checkpoint = None;
    let mut last_print = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            outcome = &mut load => return Ok((outcome?, checkpoint)),
            _ = tick.tick() => {
                let done = progress.load(Ordering::Relaxed);
                let reached = match stop {
                    Stop::Requests(n) => done >= n / 10,
                    Stop::After(d) => started.elapsed() >= d / 10,
                };
                if reached && checkpoint.is_none() {
                    checkpoint = Some(snapshot(pids)?);
                }
                if last_print.elapsed() >= Duration::from_secs(10) {
                    last_print = Instant::now();
                    eprintln!("ragtrace bench:   closed loop: {done} requests in {:.0} s", started.elapsed().as_secs_f64());
                }
            }
        }
    }
}

/// Each service's `telemetry: totals at shutdown: ...` line, parsed. Waits
/// briefly for the lines to be read from the exited processes' stderr.
async fn wait_for_totals(
    logs: &Mutex<Vec<String>>,
    expected: bool,
) -> BTreeMap<&'static str, ExportTotals> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let totals: BTreeMap<&'static str, ExportTotals> = logs
            .lock()
            .map(|lines| lines.iter().filter_map(|l| parse_totals_line(l)).collect())
            .unwrap_or_default();
        if !expected || totals.len() == Service::ALL.len() || Instant::now() > deadline {
            return totals;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `[gateway        ] {"message":"telemetry: totals at shutdown: 5 spans
/// ended, 5 exported, 0 in failed exports, 0 dropped (queue full), 0
/// unexported at exit", ...}` as captured by the launcher.
fn parse_totals_line(line: &str) -> Option<(&'static str, ExportTotals)> {
    let (name, json) = line.strip_prefix('[')?.split_once(']')?;
    let service = Service::parse(name.trim())?;
    let json: serde_json::Value = serde_json::from_str(json.trim()).ok()?;
    let message = json.get("message")?.as_str()?;
    let numbers: Vec<u64> = message
        .split_once("totals at shutdown:")?
        .1
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    let [ended, exported, failed_export, dropped, unexported_at_exit] = numbers.try_into().ok()?;
    Some((
        service.name(),
        ExportTotals {
            ended,
            exported,
            failed_export,
            dropped,
            unexported_at_exit,
        },
    ))
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
    fn totals_lines_are_read_from_json_log_lines() {
        let line = r#"[query-processor] {"timestamp":"2026-11-22T05:30:00Z","level":"INFO","message":"telemetry: totals at shutdown: 52 spans ended, 50 exported, 0 in failed exports, 2 dropped (queue full), 0 unexported at exit"}"#;
        let (service, totals) = parse_totals_line(line).unwrap();
        assert_eq!(service, "query-processor");
        assert_eq!(
            totals,
            ExportTotals {
                ended: 52,
                exported: 50,
                failed_export: 0,
                dropped: 2,
                unexported_at_exit: 0
            }
        );
        assert!(parse_totals_line(r#"[gateway] {"message":"gateway listening"}"#).is_none());
    }

    #[test]
    fn durations_parse_with_or_without_units() {
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse_duration("soon").is_err());
    }
}
