//! Export accounting: every span that ends is counted once, as exported,
//! lost in a failed export, dropped because the queue was full, or still
//! queued.
//!
//! [`crate::telemetry::init`] puts a counter on each side of the SDK's batch
//! span processor:
//!
//! ```text
//! span ends -> CountingProcessor -> BatchSpanProcessor (bounded queue, own thread) -> CountingExporter -> OTLP exporter
//!              counts `ended`;                                                       counts `exported` /
//!              drops (and counts)                                                    `failed_export` per
//!              when the queue is full                                                batch
//! ```
//!
//! The counts are read by [`super::export_report`] (one log line per
//! interval in which spans were lost, the totals at shutdown) and by anyone
//! through [`export_stats`].
//!
//! # Why the processor does the dropping itself
//!
//! The SDK's [`BatchSpanProcessor`](opentelemetry_sdk::trace::BatchSpanProcessor)
//! counts the spans it drops when its queue is full, but keeps the count
//! private: it logs a warning at the first drop and the total at shutdown, and
//! nothing in between. So `CountingProcessor` does the admission itself, with
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

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

/// The SDK's own default for `OTEL_BSP_MAX_QUEUE_SIZE`.
const DEFAULT_MAX_QUEUE_SIZE: usize = 2048;

/// `OTEL_BSP_MAX_QUEUE_SIZE` read exactly as the SDK reads it (an unparsable
/// value falls back to the default), so the admission limit of
/// `CountingProcessor` and the capacity of the SDK's queue agree.
pub(crate) fn max_queue_size_from_env() -> usize {
    std::env::var("OTEL_BSP_MAX_QUEUE_SIZE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_QUEUE_SIZE)
}

/// The export counters of the tracer provider [`init`](crate::telemetry::init)
/// installed last (none when `OTEL_SDK_DISABLED=true` or before `init`).
pub fn export_stats() -> Option<Arc<ExportStats>> {
    GLOBAL.lock().ok().and_then(|stats| stats.clone())
}

/// Makes `stats` what [`export_stats`] returns.
pub(crate) fn set_global(stats: Arc<ExportStats>) {
    if let Ok(mut global) = GLOBAL.lock() {
        *global = Some(stats);
    }
}

static GLOBAL: Mutex<Option<Arc<ExportStats>>> = Mutex::new(None);

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
pub(crate) struct CountingExporter<E> {
    inner: E,
    stats: Arc<ExportStats>,
}

impl<E: SpanExporter> CountingExporter<E> {
    pub(crate) fn new(inner: E, stats: Arc<ExportStats>) -> Self {
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
/// The wrapped processor's exporter must be a `CountingExporter` sharing
/// the same [`ExportStats`]: it is what frees the queue slots.
#[derive(Debug)]
pub(crate) struct CountingProcessor<P> {
    inner: P,
    stats: Arc<ExportStats>,
    capacity: u64,
    shut_down: AtomicBool,
}

impl<P: SpanProcessor> CountingProcessor<P> {
    pub(crate) fn new(inner: P, stats: Arc<ExportStats>, capacity: usize) -> Self {
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

#[cfg(test)]
mod tests {
    use std::sync::Condvar;
    use std::thread;

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
}
