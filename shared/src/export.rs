//! Export accounting: how many spans reached the collector, how many did not,
//! and one log line per interval about it.
//!
//! The pieces, wired together by [`crate::telemetry::init`]:
//!
//! ```text
//! span ends -> CountingProcessor -> BatchSpanProcessor (bounded queue, own thread) -> CountingExporter -> OTLP exporter
//!              counts `ended`;                                                       counts `exported` /
//!              drops (and counts)                                                    `failed_export` per
//!              when the queue is full                                                batch
//! ```
//!
//! # Why the processor does the dropping itself
//!
//! The SDK's [`BatchSpanProcessor`](opentelemetry_sdk::trace::BatchSpanProcessor)
//! counts the spans it drops when its queue is full, but keeps the count
//! private: it logs a warning at the first drop and the total at shutdown, and
//! nothing in between. So [`CountingProcessor`] does the admission itself, with
//! the same capacity: it tracks `queued`, the spans handed to the batch
//! processor whose export has not finished yet (the exporter subtracts a batch
//! when its export returns, successful or not). A span arriving while `queued`
//! is at capacity is dropped and counted here. Spans sitting in the SDK's
//! channel are always a subset of `queued`, so the SDK's channel (same
//! capacity) is never full and never drops on its own: every ended span is
//! accounted for exactly once,
//!
//! ```text
//! ended = exported + failed_export + dropped + queued
//! ```
//!
//! The price: a batch being exported still occupies its queue slots, so while
//! an export is in progress fewer new spans fit than the SDK alone would allow
//! (at most `OTEL_BSP_MAX_QUEUE_SIZE` spans are held in total, not that plus a
//! batch). Memory stays bounded by the same setting.
//!
//! # The report
//!
//! [`Reporter`] wakes once per interval and logs at most two lines:
//! a `WARN` when spans were lost in that interval (failed exports, queue
//! drops), and an `INFO` when exports succeed again after failures. A collector
//! that is down for an hour therefore costs one line per interval, however
//! many batches failed.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

/// The report interval, in milliseconds.
pub const REPORT_INTERVAL_ENV: &str = "RAGTRACE_EXPORT_REPORT_INTERVAL_MS";
/// Default report interval.
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(10);

/// The SDK's own default for `OTEL_BSP_MAX_QUEUE_SIZE`.
pub const DEFAULT_MAX_QUEUE_SIZE: usize = 2048;

/// `OTEL_BSP_MAX_QUEUE_SIZE` read exactly as the SDK reads it (an unparsable
/// value falls back to the default), so the admission limit of
/// [`CountingProcessor`] and the capacity of the SDK's queue agree.
pub fn max_queue_size_from_env() -> usize {
    std::env::var("OTEL_BSP_MAX_QUEUE_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_QUEUE_SIZE)
}

// `last_outcome`: 0 until the first export returns.
const OUTCOME_OK: u8 = 1;
const OUTCOME_FAILED: u8 = 2;

/// Span export counters of one tracer provider, since it started. All
/// counts are of spans, except [`ExportCounts::failed_batches`].
#[derive(Debug, Default)]
pub struct ExportStats {
    ended: AtomicU64,
    exported: AtomicU64,
    failed_export: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
    failed_batches: AtomicU64,
    last_outcome: AtomicU8,
    last_error: Mutex<Option<String>>,
}

/// A snapshot of [`ExportStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportCounts {
    /// Spans that ended and were handed to the pipeline.
    pub ended: u64,
    /// Spans in exports the collector accepted.
    pub exported: u64,
    /// Spans in exports that failed (collector down, timeout, rejected).
    pub failed_export: u64,
    /// Spans dropped because the queue was full (or telemetry was shut down).
    pub dropped: u64,
    /// Spans queued or being exported right now.
    pub queued: u64,
    /// Export calls that failed.
    pub failed_batches: u64,
}

impl ExportCounts {
    /// Spans that will never reach the collector: failed exports and drops.
    pub fn not_exported(&self) -> u64 {
        self.failed_export + self.dropped
    }
}

impl ExportStats {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn ended(&self) -> u64 {
        self.ended.load(Ordering::Relaxed)
    }

    pub fn exported(&self) -> u64 {
        self.exported.load(Ordering::Relaxed)
    }

    pub fn failed_export(&self) -> u64 {
        self.failed_export.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// All counters (each read atomically; together, nearly at once).
    pub fn snapshot(&self) -> ExportCounts {
        ExportCounts {
            ended: self.ended(),
            exported: self.exported(),
            failed_export: self.failed_export(),
            dropped: self.dropped(),
            queued: self.queued(),
            failed_batches: self.failed_batches.load(Ordering::Relaxed),
        }
    }

    /// The error of the last failed export, if any export failed yet.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().map(|e| e.clone()).unwrap_or(None)
    }

    /// Whether the most recent export succeeded (false before the first).
    pub fn last_export_succeeded(&self) -> bool {
        self.last_outcome.load(Ordering::Acquire) == OUTCOME_OK
    }

    /// Admit one ended span into a queue of `capacity`: false (and counted
    /// as dropped) when it is full.
    fn admit(&self, capacity: u64) -> bool {
        self.ended.fetch_add(1, Ordering::Relaxed);
        let before = self.queued.fetch_add(1, Ordering::AcqRel);
        if before >= capacity {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }

    fn record_dropped(&self) {
        self.ended.fetch_add(1, Ordering::Relaxed);
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn record_export(&self, spans: u64, result: &OTelSdkResult) {
        match result {
            Ok(()) => {
                self.exported.fetch_add(spans, Ordering::Relaxed);
                self.last_outcome.store(OUTCOME_OK, Ordering::Release);
            }
            Err(err) => {
                self.failed_export.fetch_add(spans, Ordering::Relaxed);
                self.failed_batches.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(err.to_string());
                }
                self.last_outcome.store(OUTCOME_FAILED, Ordering::Release);
            }
        }
        // Last: once the batch leaves `queued`, its slots can be reused.
        self.queued.fetch_sub(spans, Ordering::AcqRel);
    }
}

/// A [`SpanExporter`] that counts what the wrapped exporter did with each
/// batch. Its result is passed on unchanged.
#[derive(Debug)]
pub struct CountingExporter<E> {
    inner: E,
    stats: Arc<ExportStats>,
}

impl<E: SpanExporter> CountingExporter<E> {
    pub fn new(inner: E, stats: Arc<ExportStats>) -> Self {
        Self { inner, stats }
    }
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    fn export(&self, batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
        let spans = batch.len() as u64;
        let export = self.inner.export(batch);
        let stats = &self.stats;
        async move {
            let result = export.await;
            stats.record_export(spans, &result);
            result
        }
    }

    // Both shutdown methods are forwarded: an exporter may override either.
    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn shutdown(&self) -> OTelSdkResult {
        self.inner.shutdown()
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// A [`SpanProcessor`] in front of a batch processor whose queue holds
/// `capacity` spans: counts every ended span and drops (and counts) the ones
/// that do not fit. See the module docs for why the drop happens here.
///
/// The wrapped processor's exporter must be a [`CountingExporter`] sharing
/// the same [`ExportStats`]: it is what frees the queue slots.
#[derive(Debug)]
pub struct CountingProcessor<P> {
    inner: P,
    stats: Arc<ExportStats>,
    capacity: u64,
    shut_down: AtomicBool,
}

impl<P: SpanProcessor> CountingProcessor<P> {
    pub fn new(inner: P, stats: Arc<ExportStats>, capacity: usize) -> Self {
        Self {
            inner,
            stats,
            capacity: capacity as u64,
            shut_down: AtomicBool::new(false),
        }
    }
}

impl<P: SpanProcessor> SpanProcessor for CountingProcessor<P> {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if self.shut_down.load(Ordering::Acquire) {
            // The batch processor would drop it too (with a warning per span).
            self.stats.record_dropped();
            return;
        }
        if self.stats.admit(self.capacity) {
            self.inner.on_end(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.shut_down.store(true, Ordering::Release);
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The collector endpoint as shown in log lines: no user info, no query.
pub fn describe_endpoint(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit('@').next().unwrap_or_default();
    if scheme.is_empty() {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    }
}

/// A line the reporter logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
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
pub fn human_duration(d: Duration) -> String {
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
pub struct ReportState {
    interval: Duration,
    capacity: u64,
    endpoint: String,
    last: ExportCounts,
    /// Exports failed and no success has been reported since.
    failing: bool,
    lost_since_failing: u64,
}

impl ReportState {
    pub fn new(interval: Duration, capacity: usize, endpoint: String) -> Self {
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
    pub fn tick(
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

/// The thread that logs a [`Report`] once per interval. Stopping it (or
/// dropping it) wakes it at once.
#[derive(Debug)]
pub struct Reporter {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Reporter {
    pub fn spawn(stats: Arc<ExportStats>, mut state: ReportState) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let interval = state.interval;
        let thread = thread::Builder::new()
            .name("telemetry-report".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let reports = state.tick(
                        stats.snapshot(),
                        stats.last_export_succeeded(),
                        stats.last_error(),
                    );
                    reports.iter().for_each(log);
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stop the thread and wait for it.
    pub fn stop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The totals line logged at shutdown (`WARN` when anything was lost).
pub fn log_totals(counts: ExportCounts) {
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
    use std::sync::Condvar;

    use opentelemetry::trace::{Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::error::OTelSdkError;
    use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};

    use super::*;

    /// An exporter whose exports wait until the test opens the gate, then
    /// succeed or fail as told.
    #[derive(Debug, Clone)]
    struct GatedExporter {
        gate: Arc<(Mutex<bool>, Condvar)>,
        fail: Arc<AtomicBool>,
    }

    impl GatedExporter {
        fn new(open: bool) -> Self {
            Self {
                gate: Arc::new((Mutex::new(open), Condvar::new())),
                fail: Arc::default(),
            }
        }

        fn open(&self) {
            *self.gate.0.lock().unwrap() = true;
            self.gate.1.notify_all();
        }
    }

    impl SpanExporter for GatedExporter {
        fn export(&self, _batch: Vec<SpanData>) -> impl Future<Output = OTelSdkResult> + Send {
            let (lock, cvar) = &*self.gate;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cvar.wait(open).unwrap();
            }
            let fail = self.fail.load(Ordering::SeqCst);
            async move {
                if fail {
                    Err(OTelSdkError::InternalFailure(
                        "HTTP export failed: network error".into(),
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }

    fn provider(
        exporter: GatedExporter,
        queue: usize,
        delay_ms: u64,
    ) -> (SdkTracerProvider, Arc<ExportStats>) {
        let stats = Arc::new(ExportStats::new());
        let batch = BatchSpanProcessor::builder(CountingExporter::new(exporter, stats.clone()))
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(queue)
                    .with_max_export_batch_size(queue)
                    .with_scheduled_delay(Duration::from_millis(delay_ms))
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(CountingProcessor::new(batch, stats.clone(), queue))
            .build();
        (provider, stats)
    }

    fn end_spans(provider: &SdkTracerProvider, n: usize) {
        let tracer = provider.tracer("test");
        for _ in 0..n {
            drop(tracer.start("span"));
        }
    }

    fn wait_until(what: &str, check: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !check() {
            assert!(std::time::Instant::now() < deadline, "timed out: {what}");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_full_queue_drops_exactly_what_does_not_fit_and_counts_it() {
        let exporter = GatedExporter::new(false);
        let (provider, stats) = provider(exporter.clone(), 4, 60_000);
        // 4 spans fill the queue and trigger an export, which hangs at the
        // gate: the other 6 cannot fit, whatever the timing.
        end_spans(&provider, 10);
        assert_eq!(stats.ended(), 10);
        assert_eq!(stats.dropped(), 6);
        assert_eq!(stats.queued(), 4);
        exporter.open();
        wait_until("the export returns", || stats.queued() == 0);
        end_spans(&provider, 3);
        provider.shutdown().unwrap();
        let counts = stats.snapshot();
        assert_eq!(
            counts,
            ExportCounts {
                ended: 13,
                exported: 7,
                failed_export: 0,
                dropped: 6,
                queued: 0,
                failed_batches: 0,
            }
        );
        assert!(stats.last_export_succeeded());
        // After shutdown, spans are not exported; any that still reach the
        // processor count as dropped, never as queued.
        assert_eq!(counts.ended, counts.exported + counts.not_exported());
    }

    #[test]
    fn failed_exports_are_counted_per_span_with_the_error() {
        let exporter = GatedExporter::new(true);
        exporter.fail.store(true, Ordering::SeqCst);
        let (provider, stats) = provider(exporter.clone(), 8, 60_000);
        end_spans(&provider, 20);
        provider.force_flush().ok();
        wait_until("the exports return", || stats.queued() == 0);
        let counts = stats.snapshot();
        assert_eq!(counts.ended, 20);
        assert_eq!(counts.exported, 0);
        assert_eq!(counts.failed_export + counts.dropped, 20, "{counts:?}");
        assert!(counts.failed_batches >= 1);
        assert!(!stats.last_export_succeeded());
        assert_eq!(
            stats.last_error().as_deref(),
            Some("Operation failed: HTTP export failed: network error")
        );
        exporter.fail.store(false, Ordering::SeqCst);
        end_spans(&provider, 2);
        provider.shutdown().unwrap();
        assert_eq!(stats.exported(), 2);
        assert!(stats.last_export_succeeded());
    }

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
    fn endpoints_are_shown_without_credentials() {
        assert_eq!(
            describe_endpoint("https://user:secret@otel.example.com:4318/v1/traces?key=abc"),
            "https://otel.example.com:4318/v1/traces"
        );
        assert_eq!(
            describe_endpoint("http://127.0.0.1:4317"),
            "http://127.0.0.1:4317"
        );
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human_duration(Duration::from_secs(10)), "10s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
    }
}
