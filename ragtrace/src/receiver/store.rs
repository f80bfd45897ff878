//! [`SpanStore`]: every received span, indexed by trace, shared between the
//! server that fills it and whoever reads it (the console printer, the
//! tests). Readers can take snapshots, subscribe to arrivals, or wait until
//! a condition holds.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::model::SpanRecord;

/// Per-trace numbers, see [`SpanStore::trace_summaries`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSummary {
    pub trace_id: String,
    pub spans: usize,
    /// Spans without a parent.
    pub roots: usize,
}

#[derive(Default)]
struct State {
    spans: Vec<SpanRecord>,
    /// trace id -> indices into `spans`, in arrival order.
    by_trace: HashMap<String, Vec<usize>>,
    /// Trace ids in order of their first span's arrival.
    trace_order: Vec<String>,
    /// trace id -> number of root spans.
    roots: HashMap<String, usize>,
}

impl State {
    fn trace(&self, trace_id: &str) -> Vec<SpanRecord> {
        self.by_trace
            .get(trace_id)
            .map(|ix| ix.iter().map(|&i| self.spans[i].clone()).collect())
            .unwrap_or_default()
    }

    fn trace_len(&self, trace_id: &str) -> usize {
        self.by_trace.get(trace_id).map_or(0, Vec::len)
    }
}

struct Shared {
    state: Mutex<State>,
    /// Bumped on every change; waiters watch it.
    generation: watch::Sender<u64>,
    arrivals: broadcast::Sender<Vec<SpanRecord>>,
    export_requests: AtomicU64,
}

/// Thread-safe store of received spans. Cloning shares the store.
#[derive(Clone)]
pub struct SpanStore {
    shared: Arc<Shared>,
}

impl Default for SpanStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for SpanStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanStore")
            .field("spans", &self.len())
            .field("export_requests", &self.export_requests())
            .finish()
    }
}

/// How many arrival batches a slow subscriber may fall behind before it sees
/// `RecvError::Lagged` (it can then resynchronise from the store).
const ARRIVALS_CAPACITY: usize = 4096;

impl SpanStore {
    pub fn new() -> Self {
        SpanStore {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                generation: watch::Sender::new(0),
                arrivals: broadcast::Sender::new(ARRIVALS_CAPACITY),
                export_requests: AtomicU64::new(0),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` inconsistent in
        // a way that matters for a test/dev tool: keep going.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Adds spans, wakes waiters and sends the batch to subscribers.
    pub fn push(&self, spans: Vec<SpanRecord>) {
        if spans.is_empty() {
            return;
        }
        {
            let mut st = self.lock();
            for s in &spans {
                let i = st.spans.len();
                match st.by_trace.get_mut(&s.trace_id) {
                    Some(ix) => ix.push(i),
                    None => {
                        st.by_trace.insert(s.trace_id.clone(), vec![i]);
                        st.trace_order.push(s.trace_id.clone());
                    }
                }
                if s.is_root() {
                    *st.roots.entry(s.trace_id.clone()).or_default() += 1;
                }
                st.spans.push(s.clone());
            }
            // Sent under the lock so subscribers see batches in store order.
            if self.shared.arrivals.receiver_count() > 0 {
                let _ = self.shared.arrivals.send(spans);
            }
        }
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// Records one received export request and its spans.
    pub(super) fn push_export(&self, spans: Vec<SpanRecord>) {
        self.shared.export_requests.fetch_add(1, Ordering::SeqCst);
        if spans.is_empty() {
            self.shared.generation.send_modify(|g| *g += 1);
        } else {
            self.push(spans);
        }
    }

    /// Number of trace export requests received and decoded
    /// (`POST /v1/traces`, including ones with no spans).
    pub fn export_requests(&self) -> u64 {
        self.shared.export_requests.load(Ordering::SeqCst)
    }

    /// All spans, in arrival order.
    pub fn all(&self) -> Vec<SpanRecord> {
        self.lock().spans.clone()
    }

    /// The spans of one trace, in arrival order.
    pub fn trace(&self, trace_id: &str) -> Vec<SpanRecord> {
        self.lock().trace(trace_id)
    }

    /// Trace ids in the order their first span arrived.
    pub fn trace_ids(&self) -> Vec<String> {
        self.lock().trace_order.clone()
    }

    /// Span and root counts of every trace, in arrival order.
    pub fn trace_summaries(&self) -> Vec<TraceSummary> {
        let st = self.lock();
        st.trace_order
            .iter()
            .map(|id| TraceSummary {
                trace_id: id.clone(),
                spans: st.trace_len(id),
                roots: st.roots.get(id).copied().unwrap_or(0),
            })
            .collect()
    }

    /// Span and root counts of one trace (`None` if no span of it arrived).
    pub fn trace_summary(&self, trace_id: &str) -> Option<TraceSummary> {
        let st = self.lock();
        st.by_trace.get(trace_id).map(|ix| TraceSummary {
            trace_id: trace_id.to_string(),
            spans: ix.len(),
            roots: st.roots.get(trace_id).copied().unwrap_or(0),
        })
    }

    /// Number of spans stored.
    pub fn len(&self) -> usize {
        self.lock().spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets every span (the export request counter is kept).
    pub fn clear(&self) {
        *self.lock() = State::default();
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// Every batch of spans pushed from now on, in order. A receiver that
    /// falls more than a few thousand batches behind gets
    /// `broadcast::error::RecvError::Lagged` and should resynchronise from
    /// [`SpanStore::trace_summaries`].
    pub fn subscribe(&self) -> broadcast::Receiver<Vec<SpanRecord>> {
        self.shared.arrivals.subscribe()
    }

    /// Waits until `check` returns `Some` for the current state; on timeout
    /// returns `Err(on_timeout(state))`.
    async fn wait_state<T>(
        &self,
        timeout: Duration,
        check: impl Fn(&State) -> Option<T>,
        on_timeout: impl Fn(&State) -> T,
    ) -> Result<T, T> {
        let deadline = tokio::time::Instant::now() + timeout;
        // Subscribe before looking, so a push between the look and the wait
        // is not missed.
        let mut rx = self.shared.generation.subscribe();
        loop {
            if let Some(v) = check(&self.lock()) {
                return Ok(v);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives as long as `self`: cannot happen.
                Ok(Err(_)) => return Err(on_timeout(&self.lock())),
                Err(_elapsed) => {
                    let st = self.lock();
                    return match check(&st) {
                        Some(v) => Ok(v),
                        None => Err(on_timeout(&st)),
                    };
                }
            }
        }
    }

    /// Waits until `pred` holds for all stored spans. `Ok` with a snapshot of
    /// all spans when it does, `Err` with the snapshot at the timeout.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        pred: impl Fn(&[SpanRecord]) -> bool,
    ) -> Result<Vec<SpanRecord>, Vec<SpanRecord>> {
        self.wait_state(
            timeout,
            |st| pred(&st.spans).then(|| st.spans.clone()),
            |st| st.spans.clone(),
        )
        .await
    }

    /// Waits until the trace has at least `min_spans` spans. `Ok` with that
    /// trace's spans, `Err` with what had arrived at the timeout.
    pub async fn wait_for_trace(
        &self,
        trace_id: &str,
        min_spans: usize,
        timeout: Duration,
    ) -> Result<Vec<SpanRecord>, Vec<SpanRecord>> {
        self.wait_state(
            timeout,
            |st| (st.trace_len(trace_id) >= min_spans).then(|| st.trace(trace_id)),
            |st| st.trace(trace_id),
        )
        .await
    }
}
