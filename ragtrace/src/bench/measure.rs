//! One configuration, measured: phases 1 to 6 of the module docs. Starts the
//! counting receiver and the four services, drives the load phases while
//! sampling each process's CPU and memory, stops the services and accounts
//! for every span.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;

use super::load::{self, Classifier, Mode, Outcome, Stop, Target};
use super::report::{ConfigReport, ExportTotals, PhaseReport, ServiceReport, SpanReport};
use super::{BenchArgs, QUESTIONS, SPANS_PER_REQUEST, Tracing, procfs, sink};
use crate::launcher::{Output, Pipeline, Service, Topology};

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

pub(super) async fn run_config(
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
    let totals = wait_for_totals(&logs, !matches!(tracing, Tracing::Off | Tracing::NoEval)).await;
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
}
