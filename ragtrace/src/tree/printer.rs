//! The console printer: a task that watches the [`SpanStore`] and prints
//! each trace once it looks finished ([`spawn_printer`], [`PrinterConfig`]).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use super::render::render;
use crate::receiver::{SpanRecord, SpanStore};

/// When the printer considers a trace finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrinterConfig {
    /// A trace with a root is printed once no span of it arrived for this
    /// long.
    pub quiet: Duration,
    /// A trace that never gets a root is printed anyway (with its orphans
    /// flagged) this long after its first span, once it is quiet too.
    pub max_wait: Duration,
}

impl Default for PrinterConfig {
    fn default() -> Self {
        PrinterConfig {
            quiet: Duration::from_millis(400),
            max_wait: Duration::from_secs(5),
        }
    }
}

enum Command {
    Flush {
        grace: Duration,
        done: oneshot::Sender<()>,
    },
    Stop(oneshot::Sender<()>),
}

/// Handle to a running printer. Dropping it leaves the printer running (until
/// the runtime shuts down); [`Printer::stop`] flushes and ends it.
#[derive(Debug)]
pub struct Printer {
    commands: mpsc::UnboundedSender<Command>,
    task: tokio::task::JoinHandle<()>,
}

impl Printer {
    /// Gives unprinted traces up to `grace` to finish by the usual rules,
    /// then prints every one still unprinted, finished or not (and pending
    /// late-span notes). Returns as soon as nothing is left to print, at
    /// once if nothing was; `Duration::ZERO` prints everything right away.
    /// Spans pushed to the store before the call are included.
    pub async fn flush(&self, grace: Duration) {
        let (done, rx) = oneshot::channel();
        if self.commands.send(Command::Flush { grace, done }).is_ok() {
            let _ = rx.await;
        }
    }

    /// Prints everything unprinted at once (like `flush(Duration::ZERO)`),
    /// then ends the printer.
    pub async fn stop(self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Stop(tx)).is_ok() {
            let _ = rx.await;
        }
        let _ = self.task.await;
    }
}

/// [`spawn_printer_with`] with the given quiet period and a 5 s wait for
/// rootless traces.
pub fn spawn_printer(
    store: SpanStore,
    quiet: Duration,
    out: impl FnMut(String) + Send + 'static,
) -> Printer {
    spawn_printer_with(
        store,
        PrinterConfig {
            quiet,
            ..PrinterConfig::default()
        },
        out,
    )
}

/// Spawns (on the current Tokio runtime) a task that calls `out` with
/// [`render`] of each trace once it is finished (see [`PrinterConfig`]),
/// exactly once per trace, in the order traces started arriving. Spans of a
/// trace that arrive after it was printed produce one line
/// `(+N late spans for trace <id>)` per burst instead of a re-print. Spans
/// already in the store when the printer starts are treated as just arrived.
pub fn spawn_printer_with(
    store: SpanStore,
    config: PrinterConfig,
    out: impl FnMut(String) + Send + 'static,
) -> Printer {
    // Subscribe before spawning, so nothing pushed after this returns is
    // missed.
    let arrivals = store.subscribe();
    let (commands, command_rx) = mpsc::unbounded_channel();
    let mut state = PrinterState {
        store,
        config,
        out: Box::new(out),
        traces: HashMap::new(),
        active: HashSet::new(),
        next_seq: 0,
    };
    state.resync(Instant::now());
    let task = tokio::spawn(state.run(arrivals, command_rx));
    Printer { commands, task }
}

enum Phase {
    Pending {
        first: Instant,
        last: Instant,
    },
    Printed {
        /// Spans accounted for (printed or reported late).
        reported: usize,
        /// Last late arrival not yet reported.
        late: Option<Instant>,
    },
}

struct TraceState {
    seq: u64,
    phase: Phase,
}

struct PrinterState {
    store: SpanStore,
    config: PrinterConfig,
    out: Box<dyn FnMut(String) + Send>,
    traces: HashMap<String, TraceState>,
    /// Traces with something left to print.
    active: HashSet<String>,
    next_seq: u64,
}

impl PrinterState {
    async fn run(
        mut self,
        mut arrivals: broadcast::Receiver<Vec<SpanRecord>>,
        mut commands: mpsc::UnboundedReceiver<Command>,
    ) {
        let mut commands_open = true;
        // Flush calls waiting for the printer to be idle, with their deadline.
        let mut flushes: Vec<(Instant, oneshot::Sender<()>)> = Vec::new();
        loop {
            let flush_at = flushes.iter().map(|(at, _)| *at).min();
            let deadline = match (self.next_deadline(), flush_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            tokio::select! {
                got = arrivals.recv() => match got {
                    Ok(batch) => self.arrived(&batch, Instant::now()),
                    Err(broadcast::error::RecvError::Lagged(_)) => self.resync(Instant::now()),
                    // The store holds the sender and we hold the store.
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)),
                    if deadline.is_some() => {}
                cmd = commands.recv(), if commands_open => match cmd {
                    Some(Command::Flush { grace, done }) => {
                        self.drain(&mut arrivals);
                        flushes.push((Instant::now() + grace, done));
                    }
                    Some(Command::Stop(done)) => {
                        self.drain(&mut arrivals);
                        self.emit(Instant::now(), true);
                        let _ = done.send(());
                        return;
                    }
                    None => commands_open = false,
                },
            }
            let now = Instant::now();
            self.emit(now, false);
            if flushes.iter().any(|(at, _)| *at <= now) {
                self.emit(now, true);
            }
            if self.active.is_empty() {
                for (_, done) in flushes.drain(..) {
                    let _ = done.send(());
                }
            }
        }
    }

    /// Takes in every batch already queued.
    fn drain(&mut self, arrivals: &mut broadcast::Receiver<Vec<SpanRecord>>) {
        loop {
            match arrivals.try_recv() {
                Ok(batch) => self.arrived(&batch, Instant::now()),
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.resync(Instant::now()),
                Err(_) => return,
            }
        }
    }

    fn touch(&mut self, trace_id: &str, now: Instant) {
        match self.traces.get_mut(trace_id) {
            Some(t) => match &mut t.phase {
                Phase::Pending { last, .. } => *last = now,
                Phase::Printed { late, .. } => *late = Some(now),
            },
            None => {
                self.traces.insert(
                    trace_id.to_string(),
                    TraceState {
                        seq: self.next_seq,
                        phase: Phase::Pending {
                            first: now,
                            last: now,
                        },
                    },
                );
                self.next_seq += 1;
            }
        }
        self.active.insert(trace_id.to_string());
    }

    fn arrived(&mut self, batch: &[SpanRecord], now: Instant) {
        let mut ids: Vec<&str> = batch.iter().map(|s| s.trace_id.as_str()).collect();
        ids.dedup();
        for id in ids {
            self.touch(id, now);
        }
    }

    /// Compares with the store (at start and after falling behind).
    fn resync(&mut self, now: Instant) {
        for sum in self.store.trace_summaries() {
            let changed = match self.traces.get(&sum.trace_id) {
                None => true,
                Some(TraceState {
                    phase: Phase::Printed { reported, .. },
                    ..
                }) => sum.spans > *reported,
                // May have grown: treat as just arrived.
                Some(_) => true,
            };
            if changed {
                self.touch(&sum.trace_id, now);
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        let quiet = self.config.quiet;
        self.active
            .iter()
            .filter_map(|id| match self.traces.get(id)?.phase {
                Phase::Pending { first, last } => {
                    // Whichever applies is at least this late; `emit` decides.
                    let quiet_at = last + quiet;
                    let has_root = self.store.trace_summary(id).is_some_and(|s| s.roots > 0);
                    Some(if has_root {
                        quiet_at
                    } else {
                        quiet_at.max(first + self.config.max_wait)
                    })
                }
                Phase::Printed { late, .. } => late.map(|t| t + quiet),
            })
            .min()
    }

    /// Prints what is due (everything pending if `force`).
    fn emit(&mut self, now: Instant, force: bool) {
        let mut due: Vec<(u64, String)> = Vec::new();
        let mut done: Vec<String> = Vec::new();
        for id in &self.active {
            let Some(t) = self.traces.get(id) else {
                done.push(id.clone());
                continue;
            };
            let quiet_ok = |last: Instant| force || now >= last + self.config.quiet;
            let ready = match t.phase {
                Phase::Pending { first, last } => {
                    let has_root = self.store.trace_summary(id).is_some_and(|s| s.roots > 0);
                    quiet_ok(last) && (has_root || force || now >= first + self.config.max_wait)
                }
                Phase::Printed { late, .. } => late.is_none_or(quiet_ok),
            };
            if ready {
                due.push((t.seq, id.clone()));
            }
        }
        due.sort();
        for (_, id) in due {
            let spans = self.store.trace(&id);
            let Some(t) = self.traces.get_mut(&id) else {
                continue;
            };
            match &mut t.phase {
                Phase::Pending { .. } => {
                    if !spans.is_empty() {
                        (self.out)(render(&spans));
                    }
                    t.phase = Phase::Printed {
                        reported: spans.len(),
                        late: None,
                    };
                }
                Phase::Printed { reported, late } => {
                    let n = spans.len().saturating_sub(*reported);
                    if n > 0 {
                        (self.out)(format!(
                            "(+{n} late {} for trace {id})",
                            if n == 1 { "span" } else { "spans" }
                        ));
                    }
                    *reported = spans.len().max(*reported);
                    *late = None;
                }
            }
            done.push(id);
        }
        for id in done {
            self.active.remove(&id);
        }
    }
}
