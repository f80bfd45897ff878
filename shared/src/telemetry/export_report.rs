//! What a service says about its span exports, and when: one log line per
//! interval in which spans were lost, one when exports recover, the totals
//! at shutdown.
//!
//! # When the collector is down or slow
//!
//! Requests never wait for the collector, and a dead collector costs bounded
//! memory and a bounded number of log lines:
//!
//! - **Memory** is bounded by the batch processor's queue,
//!   `OTEL_BSP_MAX_QUEUE_SIZE` spans (default 2048, the batch being exported
//!   included). Spans that do not fit are dropped, never buffered elsewhere.
//!   `OTEL_BSP_SCHEDULE_DELAY` (default 5000 ms) is how often the queue is
//!   exported, and `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` (default 512, at most the
//!   queue size) how many spans go per request; a full batch is exported at
//!   once. A hung export is bounded by the exporter's
//!   `OTEL_EXPORTER_OTLP_TIMEOUT` (default 10000 ms): the SDK's thread-based
//!   processor does not apply `OTEL_BSP_EXPORT_TIMEOUT`. Exports are not
//!   retried; a failed batch is lost (and counted). A collector that refuses
//!   connections empties the queue as fast as a healthy one (each export
//!   fails at once), so its spans are lost as failed exports; drops come from
//!   a slow collector (exports hanging until the timeout) or from bursts.
//!   The final flush at shutdown is bounded too (the SDK's 5 s shutdown
//!   timeout); what is still queued then is counted as unexported at exit.
//! - **Counting** ([`ExportStats`], from
//!   [`TelemetryGuard::export_stats`](crate::telemetry::TelemetryGuard::export_stats)
//!   or [`export_stats()`](crate::telemetry::export_stats())): every ended span
//!   is counted once as `exported` (in an export the collector accepted),
//!   `failed_export` (in an export that failed), `dropped` (the queue was
//!   full) or, until its export returns, `queued`. The SDK keeps its own drop
//!   count private, so a processor in front of it admits spans into a queue
//!   of the same size and counts the drops itself; see
//!   [`mod@super::export_stats`] for why that count is exact.
//! - **Logging**: one `WARN` line per interval
//!   (`RAGTRACE_EXPORT_REPORT_INTERVAL_MS`, default 10000), and only for an
//!   interval in which spans were lost:
//!
//!   ```text
//!   telemetry: 1234 spans not exported in the last 10s (1200 in 40 failed exports, 34 dropped, queue full at 2048 (OTEL_BSP_MAX_QUEUE_SIZE); collector unreachable at http://localhost:4318/v1/traces: Operation failed: HTTP export failed: network error); 56789 exported so far
//!   ```
//!
//!   then one `INFO` line once an export succeeds again, without a restart:
//!
//!   ```text
//!   telemetry: export recovered (1344 spans were not exported during the outage); 56839 exported so far
//!   ```
//!
//!   and at shutdown the totals (`WARN` if anything was lost, else `INFO`):
//!
//!   ```text
//!   telemetry: totals at shutdown: 58183 spans ended, 56839 exported, 1310 in failed exports, 34 dropped (queue full), 0 unexported at exit
//!   ```
//!
//!   A collector that is down for an hour therefore costs one line per
//!   interval, however many batches failed. The SDK itself logs an `ERROR`
//!   event, `BatchSpanProcessor.ExportError`, for *every* failed batch (20
//!   lines a second with a 50 ms schedule delay), and
//!   `opentelemetry_sdk=warn` lets it through. That one event is filtered
//!   out by name (`quiet_sdk_export_errors`), whatever `RUST_LOG` says (the
//!   line above carries its error text); every other OpenTelemetry warning
//!   or error still shows. The HTTP exporters log their connection errors at
//!   `debug` only, and the SDK's own "spans dropped" warnings never fire,
//!   since its queue never overflows.
//! - **Metrics** need none of this: they are aggregated in memory (one
//!   histogram per series, whatever the request rate), and each export
//!   carries the cumulative totals, so a failed export loses nothing the
//!   next successful one does not carry. A failing export is logged once,
//!   at `WARN` with the endpoint and why, and its recovery once at `INFO`
//!   (see [`super::metrics_export`]).

use std::fmt;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use tracing_subscriber::filter::FilterFn;

use super::export_stats::{ExportCounts, ExportStats};
use crate::config::ConfigError;

/// The report interval, in milliseconds.
pub const REPORT_INTERVAL_ENV: &str = "RAGTRACE_EXPORT_REPORT_INTERVAL_MS";
/// Default report interval.
const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// `RAGTRACE_EXPORT_REPORT_INTERVAL_MS`: how often export losses are logged.
pub(crate) fn interval_from_env() -> Result<Duration, ConfigError> {
    let default_ms = DEFAULT_REPORT_INTERVAL.as_millis() as u64;
    let interval = crate::config::env_millis(REPORT_INTERVAL_ENV, default_ms)?;
    if interval.is_zero() {
        return Err(ConfigError {
            name: REPORT_INTERVAL_ENV,
            value: "0".into(),
            reason: "must be at least 1 ms".into(),
        });
    }
    Ok(interval)
}

/// The SDK event logged once per failed batch; the interval report replaces
/// it (see the module docs).
const SDK_EXPORT_ERROR_EVENT: &str = "BatchSpanProcessor.ExportError";

/// A filter that lets every event through but the SDK's per-batch export
/// error.
pub(crate) fn quiet_sdk_export_errors() -> FilterFn<fn(&tracing::Metadata<'_>) -> bool> {
    fn keep(metadata: &tracing::Metadata<'_>) -> bool {
        !(metadata.target() == "opentelemetry_sdk" && metadata.name() == SDK_EXPORT_ERROR_EVENT)
    }
    tracing_subscriber::filter::filter_fn(keep as fn(&tracing::Metadata<'_>) -> bool)
}

/// The report of one tracer provider's exports: a thread that logs a
/// [`Report`] once per interval, then the totals line at shutdown.
#[derive(Debug)]
pub(crate) struct ExportReport {
    stats: Arc<ExportStats>,
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl ExportReport {
    /// Reports on `stats` every `interval`, for spans exported to `endpoint`
    /// (as shown in log lines) through a queue of `queue_size` spans.
    pub(crate) fn start(
        stats: Arc<ExportStats>,
        interval: Duration,
        queue_size: usize,
        endpoint: String,
    ) -> std::io::Result<Self> {
        let mut state = ReportState::new(interval, queue_size, endpoint);
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = thread::Builder::new()
            .name("telemetry-report".into())
            .spawn({
                let stats = stats.clone();
                move || {
                    while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval)
                    {
                        let reports = state.tick(
                            stats.snapshot(),
                            stats.last_export_succeeded(),
                            stats.last_error(),
                        );
                        reports.iter().for_each(log);
                    }
                }
            })?;
        Ok(Self {
            stats,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub(crate) fn stats(&self) -> Arc<ExportStats> {
        self.stats.clone()
    }

    /// Stops the thread and logs the totals. Called after the final flush,
    /// when what never made it is final.
    pub(crate) fn finish(mut self) {
        self.stop();
        log_totals(self.stats.snapshot());
    }

    /// Wakes the thread at once and waits for it.
    fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ExportReport {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A line the reporter logs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Report {
    /// Spans were lost during the interval.
    NotExported {
        interval: Duration,
        failed_export: u64,
        failed_batches: u64,
        dropped: u64,
        capacity: u64,
        /// Why exports failed (the last error), when some did.
        reason: Option<String>,
        endpoint: String,
        exported_total: u64,
    },
    /// Exports succeed again after failures.
    Recovered {
        lost_during_outage: u64,
        exported_total: u64,
    },
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::NotExported {
                interval,
                failed_export,
                failed_batches,
                dropped,
                capacity,
                reason,
                endpoint,
                exported_total,
            } => {
                write!(
                    f,
                    "telemetry: {} spans not exported in the last {} (",
                    failed_export + dropped,
                    human_duration(*interval)
                )?;
                let mut parts = Vec::new();
                if *failed_export > 0 {
                    let s = if *failed_batches == 1 { "" } else { "s" };
                    parts.push(format!(
                        "{failed_export} in {failed_batches} failed export{s}"
                    ));
                }
                if *dropped > 0 {
                    parts.push(format!(
                        "{dropped} dropped, queue full at {capacity} (OTEL_BSP_MAX_QUEUE_SIZE)"
                    ));
                }
                write!(f, "{}; ", parts.join(", "))?;
                match reason {
                    Some(reason) if is_unreachable(reason) => {
                        write!(f, "collector unreachable at {endpoint}: {reason}")?
                    }
                    Some(reason) => write!(f, "export to {endpoint} failed: {reason}")?,
                    None => write!(f, "spans end faster than {endpoint} takes them")?,
                }
                write!(f, "); {exported_total} exported so far")
            }
            Report::Recovered {
                lost_during_outage,
                exported_total,
            } => write!(
                f,
                "telemetry: export recovered ({lost_during_outage} spans were not exported \
                 during the outage); {exported_total} exported so far"
            ),
        }
    }
}

/// Whether an export error says the collector could not be reached. A
/// collector that answered with an HTTP status was reached, whatever the
/// status says (`503 Service Unavailable`, `504 Gateway Timeout`): that is
/// an export that failed, not an unreachable collector.
fn is_unreachable(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    if reason.contains("status code") {
        return false;
    }
    [
        "network error",
        "transport error",
        "unavailable",
        "connect",
        "timed out",
        "timeout",
    ]
    .iter()
    .any(|needle| reason.contains(needle))
}

/// `10s`, `500ms`, `1.5s`.
fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms >= 1000 && d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if ms > 1000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}

/// The reporter's memory between two ticks: what it already reported.
#[derive(Debug, Clone)]
struct ReportState {
    interval: Duration,
    capacity: u64,
    endpoint: String,
    last: ExportCounts,
    /// Exports failed and no success has been reported since.
    failing: bool,
    lost_since_failing: u64,
}

impl ReportState {
    fn new(interval: Duration, capacity: usize, endpoint: String) -> Self {
        Self {
            interval,
            capacity: capacity as u64,
            endpoint,
            last: ExportCounts::default(),
            failing: false,
            lost_since_failing: 0,
        }
    }

    /// The lines for the interval that ends with `now`. `last_export_ok`
    /// says whether the most recent export succeeded, `last_error` is the
    /// most recent export error.
    fn tick(
        &mut self,
        now: ExportCounts,
        last_export_ok: bool,
        last_error: Option<String>,
    ) -> Vec<Report> {
        let failed = now.failed_export.saturating_sub(self.last.failed_export);
        let batches = now.failed_batches.saturating_sub(self.last.failed_batches);
        let dropped = now.dropped.saturating_sub(self.last.dropped);
        self.last = now;
        let mut reports = Vec::new();
        if failed + dropped > 0 {
            reports.push(Report::NotExported {
                interval: self.interval,
                failed_export: failed,
                failed_batches: batches,
                dropped,
                capacity: self.capacity,
                reason: if failed > 0 { last_error } else { None },
                endpoint: self.endpoint.clone(),
                exported_total: now.exported,
            });
        }
        if self.failing {
            self.lost_since_failing += failed + dropped;
        }
        if failed > 0 && !self.failing {
            self.failing = true;
            self.lost_since_failing = failed + dropped;
        }
        if self.failing && last_export_ok {
            reports.push(Report::Recovered {
                lost_during_outage: self.lost_since_failing,
                exported_total: now.exported,
            });
            self.failing = false;
            self.lost_since_failing = 0;
        }
        reports
    }
}

fn log(report: &Report) {
    match report {
        Report::NotExported {
            failed_export,
            dropped,
            exported_total,
            ..
        } => tracing::warn!(
            spans_failed_export = failed_export,
            spans_dropped = dropped,
            spans_exported_total = exported_total,
            "{report}"
        ),
        Report::Recovered { exported_total, .. } => {
            tracing::info!(spans_exported_total = exported_total, "{report}")
        }
    }
}

/// The totals line logged at shutdown (`WARN` when anything was lost).
fn log_totals(counts: ExportCounts) {
    let line = format!(
        "telemetry: totals at shutdown: {} spans ended, {} exported, {} in failed exports, \
         {} dropped (queue full), {} unexported at exit",
        counts.ended, counts.exported, counts.failed_export, counts.dropped, counts.queued
    );
    if counts.not_exported() + counts.queued > 0 {
        tracing::warn!("{line}");
    } else {
        tracing::info!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    fn counts(exported: u64, failed: u64, batches: u64, dropped: u64) -> ExportCounts {
        ExportCounts {
            ended: exported + failed + dropped,
            exported,
            failed_export: failed,
            dropped,
            queued: 0,
            failed_batches: batches,
        }
    }

    #[test]
    fn the_report_is_one_line_per_interval_and_one_on_recovery() {
        let mut state = ReportState::new(
            Duration::from_secs(10),
            2048,
            "http://localhost:4318/v1/traces".into(),
        );
        // Healthy: nothing to say.
        assert!(state.tick(counts(100, 0, 0, 0), true, None).is_empty());
        // The collector goes away: however many batches failed, one line.
        let error = Some("Operation failed: HTTP export failed: network error".to_owned());
        let reports = state.tick(counts(100, 1200, 40, 34), false, error.clone());
        assert_eq!(reports.len(), 1);
        assert_eq!(
            reports[0].to_string(),
            "telemetry: 1234 spans not exported in the last 10s (1200 in 40 failed exports, \
             34 dropped, queue full at 2048 (OTEL_BSP_MAX_QUEUE_SIZE); collector unreachable \
             at http://localhost:4318/v1/traces: Operation failed: HTTP export failed: network \
             error); 100 exported so far"
        );
        // Still down, no traffic: nothing new was lost, nothing to say.
        assert!(
            state
                .tick(counts(100, 1200, 40, 34), false, error.clone())
                .is_empty()
        );
        let reports = state.tick(counts(100, 1300, 41, 34), false, error.clone());
        assert_eq!(reports.len(), 1);
        // Back: failures earlier in the interval, then a success.
        let reports = state.tick(counts(150, 1310, 42, 34), true, error.clone());
        assert_eq!(reports.len(), 2, "{reports:?}");
        assert_eq!(
            reports[1].to_string(),
            "telemetry: export recovered (1344 spans were not exported during the outage); \
             150 exported so far"
        );
        assert!(
            state
                .tick(counts(200, 1310, 42, 34), true, error)
                .is_empty()
        );
    }

    #[test]
    fn an_http_status_answer_is_reported_as_a_failed_export_not_as_unreachable() {
        let report = |reason: &str| {
            let mut state = ReportState::new(
                Duration::from_secs(10),
                2048,
                "http://phoenix:6006/v1/traces".into(),
            );
            state.tick(counts(0, 5, 1, 0), false, Some(reason.to_owned()))[0].to_string()
        };
        for status in [
            "404 Not Found",
            "405 Method Not Allowed",
            "503 Service Unavailable",
            "504 Gateway Timeout",
        ] {
            let line = report(&format!(
                "Operation failed: HTTP export failed with status code: {status}"
            ));
            assert!(
                line.contains(&format!(
                    "export to http://phoenix:6006/v1/traces failed: Operation failed: HTTP \
                     export failed with status code: {status})"
                )),
                "{line}"
            );
            assert!(!line.contains("unreachable"), "{line}");
        }
        // No answer at all: unreachable (HTTP, and gRPC's Unavailable).
        for reason in [
            "Operation failed: HTTP export failed: network error (cannot connect)",
            "Operation failed: TonicTracesClient export failed with gRPC code: Unavailable",
        ] {
            assert!(
                report(reason).contains("collector unreachable at"),
                "{reason}"
            );
        }
    }

    #[test]
    fn drops_alone_are_reported_without_claiming_an_outage() {
        let mut state = ReportState::new(Duration::from_millis(500), 64, "http://c:4318".into());
        let reports = state.tick(counts(500, 0, 0, 7), true, None);
        assert_eq!(
            reports,
            vec![Report::NotExported {
                interval: Duration::from_millis(500),
                failed_export: 0,
                failed_batches: 0,
                dropped: 7,
                capacity: 64,
                reason: None,
                endpoint: "http://c:4318".into(),
                exported_total: 500,
            }]
        );
        assert!(reports[0].to_string().starts_with(
            "telemetry: 7 spans not exported in the last 500ms (7 dropped, queue full at 64"
        ));
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human_duration(Duration::from_secs(10)), "10s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
    }

    struct CountEvents(Arc<AtomicUsize>);

    impl<S: tracing::Subscriber> Layer<S> for CountEvents {
        fn on_event(
            &self,
            _event: &tracing::Event<'_>,
            _cx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn only_the_sdks_per_batch_export_error_is_filtered_out() {
        let seen = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(quiet_sdk_export_errors())
            .with(CountEvents(seen.clone()));
        tracing::subscriber::with_default(subscriber, || {
            // What `otel_error!` in opentelemetry_sdk expands to.
            tracing::error!(name: "BatchSpanProcessor.ExportError", target: "opentelemetry_sdk", error = "network error");
            tracing::error!(name: "BatchSpanProcessor.Shutdown.Timeout", target: "opentelemetry_sdk", name = "BatchSpanProcessor.Shutdown.Timeout");
            tracing::warn!(name: "BatchSpanProcessor.ExportError", target: "my_crate", "same name, other crate");
            tracing::warn!("telemetry: 12 spans not exported");
        });
        assert_eq!(seen.load(Ordering::SeqCst), 3);
    }
}
