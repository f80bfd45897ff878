//! Trace trees for the console: building, a one-line health summary,
//! plain-text rendering, and a printer that shows each finished trace once.
//!
//! The offline quick start has no Jaeger: the spans the services export land
//! in [`crate::otlp::Receiver`], and [`spawn_printer`] prints every trace as a
//! tree as soon as it looks finished, so you see at a glance that one request
//! crossed all four services as one trace, how long each hop took, and how
//! many tokens the LLM call used. The end-to-end tests use [`build`] and
//! [`health`] to assert on the shape of real traces.
//!
//! Rendering is a pure function without colours, so the output is
//! deterministic, grep-able and testable:
//!
//! ```text
//! trace 4bf92f3577b34da6a3ce929d0e0e4736
//!   [gateway] SERVER POST /v1/chat                   150.0 ms
//!   └─ [gateway] CLIENT POST                         148.0 ms
//!      └─ [query-processor] SERVER POST /query       146.0 ms
//!         ├─ [retrieval] SERVER POST /search          27.0 ms  gen_ai.request.top_k=4 gen_ai.data_source.id=corpus
//!         │  ├─ [retrieval] CLIENT embeddings nomic    6.0 ms  gen_ai.usage.input_tokens=9
//!         │  └─ [retrieval] INTERNAL vector search    18.0 ms  db.system.name=in-memory
//!         └─ [llm-service] SERVER POST /generate     100.0 ms  http.response.status_code=503 error.type=overloaded ERROR: model overloaded
//!            └─ [llm-service] CLIENT chat llama3      98.0 ms  gen_ai.request.model=llama3 gen_ai.usage.input_tokens=201 gen_ai.usage.output_tokens=32
//!   trace 4bf92f35…: 8 spans, 4 services (gateway, llm-service, query-processor, retrieval), depth 5, 0 orphans, 1 error, 233 tokens (201 in / 32 out)
//! ```
//!
//! Each level of the tree indents by one 3-column glyph (`├─ `, `└─ `, `│  `)
//! under a 2-space margin; the duration column is aligned across the trace
//! (unless a line's tree part is longer than 72 columns). Key attributes
//! ([`KEY_ATTRIBUTES`]) follow as `key=value`; `http.response.status_code`
//! only when it is 400 or more; string values with spaces are JSON-quoted.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use crate::otlp::{SpanRecord, SpanStore};

// ---------------------------------------------------------------------------
// Tree
// ---------------------------------------------------------------------------

/// One span and its children (sorted by start time).
#[derive(Debug, Clone)]
pub struct TreeNode<'a> {
    pub span: &'a SpanRecord,
    /// The span names a parent that is not among the spans (or is part of a
    /// parent cycle): it is shown as a root, marked `(orphan)`.
    pub orphan: bool,
    pub children: Vec<TreeNode<'a>>,
}

impl TreeNode<'_> {
    /// Levels in this subtree (a leaf is 1).
    pub fn depth(&self) -> usize {
        1 + self.children.iter().map(TreeNode::depth).max().unwrap_or(0)
    }

    /// Spans in this subtree.
    pub fn count(&self) -> usize {
        1 + self.children.iter().map(TreeNode::count).sum::<usize>()
    }
}

/// Spans arranged by parent. Roots (no parent) and orphans (a parent that is
/// not there) are both top-level nodes, sorted by start time.
#[derive(Debug, Clone, Default)]
pub struct TraceTree<'a> {
    pub roots: Vec<TreeNode<'a>>,
}

impl<'a> TraceTree<'a> {
    /// Levels in the deepest branch (a lone root is 1; empty is 0).
    pub fn depth(&self) -> usize {
        self.roots.iter().map(TreeNode::depth).max().unwrap_or(0)
    }

    /// Top-level nodes that are orphans.
    pub fn orphans(&self) -> usize {
        self.roots.iter().filter(|n| n.orphan).count()
    }

    /// Every node depth-first, with its level (top level = 0) and whether it
    /// is the last of its siblings.
    pub fn walk(&self) -> Vec<(usize, bool, &TreeNode<'a>)> {
        fn go<'t, 'a>(
            nodes: &'t [TreeNode<'a>],
            level: usize,
            out: &mut Vec<(usize, bool, &'t TreeNode<'a>)>,
        ) {
            for (i, n) in nodes.iter().enumerate() {
                out.push((level, i + 1 == nodes.len(), n));
                go(&n.children, level + 1, out);
            }
        }
        let mut out = Vec::new();
        go(&self.roots, 0, &mut out);
        out
    }
}

/// Arranges spans into a tree. Parents are looked up by (trace id, span id);
/// siblings are sorted by start time, ties keeping input order. Every span
/// appears exactly once, including spans in a parent cycle (as orphans).
pub fn build(spans: &[SpanRecord]) -> TraceTree<'_> {
    let mut by_id: HashMap<(&str, &str), usize> = HashMap::with_capacity(spans.len());
    for (i, s) in spans.iter().enumerate() {
        by_id.entry((&s.trace_id, &s.span_id)).or_insert(i);
    }
    let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut tops: Vec<(usize, bool)> = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match &s.parent_span_id {
            None => tops.push((i, false)),
            Some(p) => match by_id.get(&(s.trace_id.as_str(), p.as_str())) {
                Some(&pi) if pi != i => children.entry(pi).or_default().push(i),
                _ => tops.push((i, true)),
            },
        }
    }
    // A trace continued from a caller (it sent `traceparent`) has no
    // parentless span: its entry span's parent lives in the caller's process.
    // That entry, the earliest span whose parent is missing, is the root, not
    // an orphan. Orphans are the *other* spans whose parent never arrived.
    let mut has_root: HashSet<&str> = HashSet::new();
    for &(i, orphan) in &tops {
        if !orphan {
            has_root.insert(&spans[i].trace_id);
        }
    }
    let mut entry: HashMap<&str, usize> = HashMap::new();
    for (pos, &(i, _)) in tops.iter().enumerate() {
        let trace = spans[i].trace_id.as_str();
        if has_root.contains(trace) {
            continue;
        }
        let earliest = entry.entry(trace).or_insert(pos);
        if spans[i].start_unix_nanos < spans[tops[*earliest].0].start_unix_nanos {
            *earliest = pos;
        }
    }
    for pos in entry.into_values() {
        tops[pos].1 = false;
    }
    let by_start =
        |a: &usize, b: &usize| spans[*a].start_unix_nanos.cmp(&spans[*b].start_unix_nanos);
    for list in children.values_mut() {
        list.sort_by(by_start);
    }

    fn node<'a>(
        i: usize,
        orphan: bool,
        spans: &'a [SpanRecord],
        children: &HashMap<usize, Vec<usize>>,
        seen: &mut [bool],
    ) -> TreeNode<'a> {
        seen[i] = true;
        let kids = children
            .get(&i)
            .map(|c| c.iter().filter(|&&c| !seen[c]).copied().collect::<Vec<_>>())
            .unwrap_or_default();
        let mut out = Vec::with_capacity(kids.len());
        for c in kids {
            if !seen[c] {
                out.push(node(c, false, spans, children, seen));
            }
        }
        TreeNode {
            span: &spans[i],
            orphan,
            children: out,
        }
    }

    let mut seen = vec![false; spans.len()];
    let mut roots = Vec::with_capacity(tops.len());
    for &(i, orphan) in &tops {
        roots.push(node(i, orphan, spans, &children, &mut seen));
    }
    // Spans only reachable through a cycle (a -> b -> a): show them too.
    for i in 0..spans.len() {
        if !seen[i] {
            roots.push(node(i, true, spans, &children, &mut seen));
        }
    }
    roots.sort_by_key(|n| n.span.start_unix_nanos);
    TraceTree { roots }
}

// ---------------------------------------------------------------------------
// Health
// ---------------------------------------------------------------------------

/// `gen_ai.operation.name` values whose token usage counts as inference.
pub const INFERENCE_OPERATIONS: [&str; 3] = ["chat", "text_completion", "generate_content"];

/// A trace's vital signs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Health {
    /// Distinct trace ids, in order of first appearance (one for a healthy
    /// trace).
    pub trace_ids: Vec<String>,
    pub spans: usize,
    /// Distinct `service.name`s, sorted.
    pub services: Vec<String>,
    /// Levels in the deepest branch; a root alone is 1.
    pub depth: usize,
    /// Entry spans: spans without a parent, or, in a trace continued from a
    /// caller, the earliest span whose parent is in the caller's process.
    pub roots: usize,
    /// Spans whose parent is not among the spans.
    pub orphans: usize,
    /// Spans with status `ERROR`.
    pub errors: usize,
    /// Sum of `gen_ai.usage.input_tokens` over inference spans
    /// ([`INFERENCE_OPERATIONS`]); embeddings usage is not counted.
    pub input_tokens: i64,
    /// Sum of `gen_ai.usage.output_tokens` over inference spans.
    pub output_tokens: i64,
}

impl Health {
    pub fn total_tokens(&self) -> i64 {
        self.input_tokens + self.output_tokens
    }
}

/// Whether a span is an LLM inference call (by `gen_ai.operation.name`).
pub fn is_inference(span: &SpanRecord) -> bool {
    span.attr_str("gen_ai.operation.name")
        .is_some_and(|op| INFERENCE_OPERATIONS.contains(&op))
}

/// Computes the [`Health`] of a set of spans (normally one trace).
pub fn health(spans: &[SpanRecord]) -> Health {
    let tree = build(spans);
    let mut trace_ids: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    for s in spans {
        if seen.insert(s.trace_id.as_str()) {
            trace_ids.push(s.trace_id.clone());
        }
    }
    let mut services: Vec<String> = spans.iter().map(|s| s.service_name.clone()).collect();
    services.sort();
    services.dedup();
    let (mut input_tokens, mut output_tokens) = (0, 0);
    for s in spans.iter().filter(|s| is_inference(s)) {
        input_tokens += s.attr_i64("gen_ai.usage.input_tokens").unwrap_or(0);
        output_tokens += s.attr_i64("gen_ai.usage.output_tokens").unwrap_or(0);
    }
    Health {
        trace_ids,
        spans: spans.len(),
        services,
        depth: tree.depth(),
        roots: tree.roots.iter().filter(|n| !n.orphan).count(),
        orphans: tree.orphans(),
        errors: spans.iter().filter(|s| s.is_error()).count(),
        input_tokens,
        output_tokens,
    }
}

/// First 8 characters of a trace id and an ellipsis.
fn short_id(id: &str) -> String {
    match id.char_indices().nth(8) {
        Some((i, _)) => format!("{}…", &id[..i]),
        None => id.to_string(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One line:
/// `trace 4bf92f35…: 12 spans, 4 services (gateway, llm-service, query-processor, retrieval), depth 7, 0 orphans, 0 errors, 233 tokens (201 in / 32 out)`.
/// `, N roots` is added before the orphans when there is not exactly one root.
impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.trace_ids.as_slice() {
            [] => f.write_str("no trace")?,
            [one] => write!(f, "trace {}", short_id(one))?,
            many => write!(f, "{} traces", many.len())?,
        }
        write!(
            f,
            ": {}, {} ({}), depth {}, ",
            plural(self.spans, "span", "spans"),
            plural(self.services.len(), "service", "services"),
            self.services.join(", "),
            self.depth,
        )?;
        if self.roots != 1 {
            write!(f, "{}, ", plural(self.roots, "root", "roots"))?;
        }
        write!(
            f,
            "{}, {}, {} ({} in / {} out)",
            plural(self.orphans, "orphan", "orphans"),
            plural(self.errors, "error", "errors"),
            plural(self.total_tokens().max(0) as usize, "token", "tokens"),
            self.input_tokens,
            self.output_tokens,
        )
    }
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/// Attributes shown on a span's line, in this order, when present.
pub const KEY_ATTRIBUTES: [&str; 11] = [
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.response.time_to_first_chunk",
    "ragtrace.stream.outcome",
    "gen_ai.request.top_k",
    "gen_ai.data_source.id",
    "db.system.name",
    "http.response.status_code",
    "error.type",
];

/// Lines whose tree part is longer than this are not padded.
const MAX_LABEL_WIDTH: usize = 72;

fn format_value(v: &Value) -> String {
    match v {
        Value::String(s)
            if !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c == '"' || c == '=') =>
        {
            s.clone()
        }
        other => other.to_string(),
    }
}

fn key_attributes(span: &SpanRecord) -> Vec<String> {
    let mut out = Vec::new();
    for key in KEY_ATTRIBUTES {
        let Some(v) = span.attributes.get(key) else {
            continue;
        };
        if key == "http.response.status_code" && span.attr_i64(key).is_none_or(|c| c < 400) {
            continue;
        }
        // A stream that ended normally is not news; one cut short is.
        if key == "ragtrace.stream.outcome" && span.attr_str(key) == Some("completed") {
            continue;
        }
        out.push(format!("{key}={}", format_value(v)));
    }
    if span.is_error() {
        let msg = span.status.message.trim();
        out.push(if msg.is_empty() {
            "ERROR".to_string()
        } else {
            format!("ERROR: {msg}")
        });
    }
    out
}

/// Milliseconds with one decimal: `12.3 ms`.
pub fn format_ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Renders spans as text: per trace a `trace <id>` header, one line per span
/// (tree glyphs, `[service]`, kind, name, duration, key attributes, `ERROR:
/// message`), and the [`Health`] line. Spans of several traces are rendered
/// one trace after the other, separated by a blank line. No trailing newline.
pub fn render(spans: &[SpanRecord]) -> String {
    if spans.is_empty() {
        return "(no spans)".to_string();
    }
    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Vec<SpanRecord>> = HashMap::new();
    for s in spans {
        groups
            .entry(&s.trace_id)
            .or_insert_with(|| {
                order.push(&s.trace_id);
                Vec::new()
            })
            .push(s.clone());
    }
    order
        .iter()
        .map(|id| render_one(id, &groups[id]))
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn render_one(trace_id: &str, spans: &[SpanRecord]) -> String {
    let tree = build(spans);
    // Per line: tree part, duration, attributes.
    let mut rows: Vec<(String, String, Vec<String>)> = Vec::with_capacity(spans.len());
    // Whether each open ancestor level still has siblings to come.
    let mut open: Vec<bool> = Vec::new();
    for (level, last, node) in tree.walk() {
        open.truncate(level);
        let mut label = String::from("  ");
        if level > 0 {
            for &more in &open[1..] {
                label.push_str(if more { "│  " } else { "   " });
            }
            label.push_str(if last { "└─ " } else { "├─ " });
        }
        open.push(!last);
        let s = node.span;
        label.push_str(&format!("[{}] {} {}", s.service_name, s.kind, s.name));
        if node.orphan {
            label.push_str(" (orphan)");
        }
        rows.push((label, format_ms(s.duration()), key_attributes(s)));
    }
    let width = rows
        .iter()
        .map(|(l, _, _)| l.chars().count())
        .filter(|&w| w <= MAX_LABEL_WIDTH)
        .max()
        .unwrap_or(0);
    let dur_width = rows.iter().map(|(_, d, _)| d.len()).max().unwrap_or(0);
    let mut out = format!("trace {trace_id}\n");
    for (label, dur, attrs) in rows {
        let pad = width.saturating_sub(label.chars().count());
        out.push_str(&label);
        out.push_str(&" ".repeat(pad));
        out.push_str(&format!("  {dur:>dur_width$}"));
        if !attrs.is_empty() {
            out.push_str("  ");
            out.push_str(&attrs.join(" "));
        }
        out.push('\n');
    }
    out.push_str(&format!("  {}", health(spans)));
    out
}

// ---------------------------------------------------------------------------
// Printer
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otlp::tests::rec;
    use crate::otlp::{SpanKind, StatusCode};
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    const T: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn sp(
        id: &str,
        parent: Option<&str>,
        service: &str,
        kind: SpanKind,
        name: &str,
        start_ms: u64,
        end_ms: u64,
    ) -> SpanRecord {
        let mut s = rec(T, id, parent);
        s.service_name = service.to_string();
        s.kind = kind;
        s.name = name.to_string();
        s.start_unix_nanos = 1_700_000_000_000_000_000 + start_ms * 1_000_000;
        s.end_unix_nanos = 1_700_000_000_000_000_000 + end_ms * 1_000_000;
        s
    }

    fn attrs(mut s: SpanRecord, kv: &[(&str, Value)]) -> SpanRecord {
        for (k, v) in kv {
            s.attributes.insert(k.to_string(), v.clone());
        }
        s
    }

    /// The RAG pipeline's trace, deliberately in a shuffled arrival order
    /// (exporters flush per service, children usually first).
    fn pipeline() -> Vec<SpanRecord> {
        use SpanKind::*;
        vec![
            attrs(
                sp(
                    "c2",
                    Some("q1"),
                    "llm-service",
                    Server,
                    "POST /generate",
                    40,
                    140,
                ),
                &[],
            ),
            attrs(
                sp(
                    "d2",
                    Some("c2"),
                    "llm-service",
                    Client,
                    "chat llama3",
                    41,
                    139,
                ),
                &[
                    ("gen_ai.operation.name", json!("chat")),
                    ("gen_ai.request.model", json!("llama3")),
                    ("gen_ai.response.model", json!("llama3:8b")),
                    ("gen_ai.usage.input_tokens", json!(201)),
                    ("gen_ai.usage.output_tokens", json!(32)),
                ],
            ),
            attrs(
                sp("g1", None, "gateway", Server, "POST /v1/chat", 0, 150),
                &[("http.response.status_code", json!(200))],
            ),
            sp("g2", Some("g1"), "gateway", Client, "POST", 1, 149),
            sp(
                "q1",
                Some("g2"),
                "query-processor",
                Server,
                "POST /query",
                2,
                148,
            ),
            attrs(
                sp("c1", Some("q1"), "retrieval", Server, "POST /search", 3, 30),
                &[
                    ("gen_ai.request.top_k", json!(4)),
                    ("gen_ai.data_source.id", json!("corpus")),
                ],
            ),
            attrs(
                sp(
                    "e1",
                    Some("c1"),
                    "retrieval",
                    Client,
                    "embeddings nomic",
                    4,
                    10,
                ),
                &[
                    ("gen_ai.operation.name", json!("embeddings")),
                    ("gen_ai.usage.input_tokens", json!(9)),
                ],
            ),
            attrs(
                sp(
                    "s1",
                    Some("c1"),
                    "retrieval",
                    Internal,
                    "vector search",
                    11,
                    29,
                ),
                &[("db.system.name", json!("in-memory"))],
            ),
        ]
    }

    fn ids(nodes: &[TreeNode<'_>]) -> Vec<String> {
        nodes.iter().map(|n| n.span.span_id.clone()).collect()
    }

    #[test]
    fn builds_parent_links_and_sorts_children_by_start() {
        let spans = pipeline();
        let tree = build(&spans);
        assert_eq!(ids(&tree.roots), ["g1"]);
        assert!(!tree.roots[0].orphan);
        let q1 = &tree.roots[0].children[0].children[0];
        assert_eq!(q1.span.span_id, "q1");
        // c1 (start 3) before c2 (start 40) though c2 arrived first.
        assert_eq!(ids(&q1.children), ["c1", "c2"]);
        assert_eq!(ids(&q1.children[0].children), ["e1", "s1"]);
        assert_eq!(tree.depth(), 5);
        assert_eq!(tree.orphans(), 0);
        assert_eq!(tree.roots[0].count(), spans.len());
        let walk: Vec<_> = tree
            .walk()
            .into_iter()
            .map(|(level, last, n)| (level, last, n.span.span_id.as_str()))
            .collect();
        assert_eq!(
            walk,
            [
                (0, true, "g1"),
                (1, true, "g2"),
                (2, true, "q1"),
                (3, false, "c1"),
                (4, false, "e1"),
                (4, true, "s1"),
                (3, true, "c2"),
                (4, true, "d2"),
            ]
        );
    }

    #[test]
    fn orphans_and_cycles_become_flagged_roots() {
        let mut spans = pipeline();
        // The gateway's spans never arrived: q1's parent g2 is missing.
        spans.retain(|s| !s.span_id.starts_with('g'));
        // A self-parented span and a two-span cycle.
        spans.push(sp(
            "x",
            Some("x"),
            "weird",
            SpanKind::Internal,
            "self",
            500,
            501,
        ));
        spans.push(sp(
            "y",
            Some("z"),
            "weird",
            SpanKind::Internal,
            "y",
            600,
            601,
        ));
        spans.push(sp(
            "z",
            Some("y"),
            "weird",
            SpanKind::Internal,
            "z",
            700,
            701,
        ));
        // Same span id in another trace does not adopt children across traces.
        let mut other = sp("q1", None, "other", SpanKind::Server, "other", 0, 1);
        other.trace_id = "ffffffffffffffffffffffffffffffff".into();
        spans.push(other);
        let tree = build(&spans);
        let tops: Vec<_> = tree
            .roots
            .iter()
            .map(|n| (n.span.span_id.as_str(), n.orphan))
            .collect();
        assert_eq!(
            tops,
            [("q1", false), ("q1", false), ("x", true), ("y", true)],
            "roots sorted by start; the other trace's q1 (start 0) is a real root, and in a trace \
             with no parentless span the earliest span with a missing parent is its entry (a \
             caller's remote parent), not an orphan"
        );
        assert_eq!(tree.roots[1].span.trace_id, T);
        assert_eq!(tree.roots[1].count(), 6);
        assert_eq!(ids(&tree.roots[3].children), ["z"]);
        assert_eq!(tree.orphans(), 2);
        let total: usize = tree.roots.iter().map(TreeNode::count).sum();
        assert_eq!(total, spans.len(), "every span exactly once");
        assert_eq!(build(&[]).depth(), 0);
    }

    #[test]
    fn health_counts() {
        let spans = pipeline();
        let h = health(&spans);
        assert_eq!(
            h,
            Health {
                trace_ids: vec![T.to_string()],
                spans: 8,
                services: vec![
                    "gateway".into(),
                    "llm-service".into(),
                    "query-processor".into(),
                    "retrieval".into()
                ],
                depth: 5,
                roots: 1,
                orphans: 0,
                errors: 0,
                input_tokens: 201,
                output_tokens: 32,
            },
            "embedding tokens (9) are not counted"
        );
        assert_eq!(
            h.to_string(),
            "trace 4bf92f35…: 8 spans, 4 services (gateway, llm-service, query-processor, \
             retrieval), depth 5, 0 orphans, 0 errors, 233 tokens (201 in / 32 out)"
        );

        // Broken trace: no gateway, an error, tokens as strings and on
        // another inference operation.
        let mut spans = pipeline();
        spans.retain(|s| !s.span_id.starts_with('g'));
        spans[0].status.code = StatusCode::Error;
        let mut extra = sp(
            "t",
            Some("c2"),
            "llm-service",
            SpanKind::Client,
            "tc",
            50,
            60,
        );
        extra
            .attributes
            .insert("gen_ai.operation.name".into(), json!("text_completion"));
        extra
            .attributes
            .insert("gen_ai.usage.input_tokens".into(), json!("10"));
        extra
            .attributes
            .insert("gen_ai.usage.output_tokens".into(), json!(5.0));
        spans.push(extra);
        let h = health(&spans);
        // No parentless span: the entry span (parent in the caller's
        // process) is the root, not an orphan.
        assert_eq!((h.roots, h.orphans, h.errors, h.depth), (1, 0, 1, 3));
        assert_eq!((h.input_tokens, h.output_tokens), (211, 37));
        assert_eq!(
            h.to_string(),
            "trace 4bf92f35…: 7 spans, 3 services (llm-service, query-processor, retrieval), \
             depth 3, \
             0 orphans, 1 error, 248 tokens (211 in / 37 out)"
        );
        assert_eq!(
            health(&[]).to_string(),
            "no trace: 0 spans, 0 services (), depth 0, 0 roots, 0 orphans, 0 errors, 0 tokens (0 in / 0 out)"
        );
    }

    #[test]
    fn renders_tree_lines() {
        let mut spans = pipeline();
        spans[0].status = crate::otlp::SpanStatus {
            code: StatusCode::Error,
            message: "model overloaded".into(),
        };
        spans[0]
            .attributes
            .insert("error.type".into(), json!("overloaded"));
        spans[0]
            .attributes
            .insert("http.response.status_code".into(), json!(503));
        let text = render(&spans);
        println!("{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + spans.len() + 1, "header, spans, health");
        assert_eq!(lines[0], format!("trace {T}"));
        let starts = [
            "  [gateway] SERVER POST /v1/chat ",
            "  └─ [gateway] CLIENT POST ",
            "     └─ [query-processor] SERVER POST /query ",
            "        ├─ [retrieval] SERVER POST /search ",
            "        │  ├─ [retrieval] CLIENT embeddings nomic ",
            "        │  └─ [retrieval] INTERNAL vector search ",
            "        └─ [llm-service] SERVER POST /generate ",
            "           └─ [llm-service] CLIENT chat llama3 ",
        ];
        for (line, start) in lines[1..].iter().zip(starts) {
            assert!(
                line.starts_with(start),
                "{line:?} should start with {start:?}"
            );
        }
        // Durations, aligned in one column.
        assert!(lines[1].contains("150.0 ms"), "{}", lines[1]);
        assert!(lines[5].contains("  6.0 ms"), "{}", lines[5]);
        let col = |l: &str| l[..l.find(" ms").unwrap()].chars().count();
        assert!(lines[1..9].iter().all(|l| col(l) == col(lines[1])));
        // Key attributes; a 200 status is not shown, a 503 is.
        assert!(!lines[1].contains("http.response.status_code"));
        assert!(lines[4].ends_with(" ms  gen_ai.request.top_k=4 gen_ai.data_source.id=corpus"));
        assert!(lines[5].ends_with("gen_ai.usage.input_tokens=9"));
        assert!(lines[6].ends_with("db.system.name=in-memory"));
        assert!(lines[7].ends_with(
            "http.response.status_code=503 error.type=overloaded ERROR: model overloaded"
        ));
        assert!(lines[8].ends_with(
            "gen_ai.request.model=llama3 gen_ai.response.model=llama3:8b \
             gen_ai.usage.input_tokens=201 gen_ai.usage.output_tokens=32"
        ));
        assert!(
            lines[3].ends_with(" ms"),
            "no attributes, no trailing space"
        );
        assert_eq!(
            lines[9],
            "  trace 4bf92f35…: 8 spans, 4 services (gateway, llm-service, query-processor, \
             retrieval), depth 5, 0 orphans, 1 error, 233 tokens (201 in / 32 out)"
        );
        assert!(!text.contains('\x1b'), "no ANSI escapes");
        assert_eq!(render(&spans), text, "deterministic");
    }

    #[test]
    fn renders_orphans_quoted_values_and_several_traces() {
        let mut a = sp("o", Some("gone"), "svc", SpanKind::Internal, "lost", 0, 1);
        a.attributes.insert("error.type".into(), json!("has space"));
        let mut b = sp("r", None, "svc", SpanKind::Server, "other", 0, 2);
        b.trace_id = "00000000000000000000000000000001".into();
        // Trace T has a real root, so its span with a missing parent is an orphan.
        let root = sp("t", None, "svc", SpanKind::Server, "root", 5, 9);
        let text = render(&[a, b, root]);
        let blocks: Vec<&str> = text.split("\n\n").collect();
        assert_eq!(blocks.len(), 2);
        assert!(
            blocks[0].starts_with(&format!(
                "trace {T}\n  [svc] INTERNAL lost (orphan)  1.0 ms  error.type=\"has space\"\n"
            )),
            "{text}"
        );
        assert!(
            blocks[0].ends_with("depth 1, 1 orphan, 0 errors, 0 tokens (0 in / 0 out)"),
            "{text}"
        );
        assert!(
            blocks[1].starts_with(
                "trace 00000000000000000000000000000001\n  [svc] SERVER other  2.0 ms\n"
            ),
            "{text}"
        );
        assert_eq!(render(&[]), "(no spans)");
    }

    // --- printer ------------------------------------------------------------

    /// What the printer printed, and when.
    type Printed = Arc<Mutex<Vec<(std::time::Instant, String)>>>;

    fn collector() -> (Printed, impl FnMut(String) + Send + 'static) {
        let got: Printed = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        (got, move |s| {
            sink.lock().unwrap().push((std::time::Instant::now(), s))
        })
    }

    fn texts(got: &Printed) -> Vec<String> {
        got.lock().unwrap().iter().map(|(_, s)| s.clone()).collect()
    }

    /// Waits (up to 10 s) until `n` outputs were printed; returns them.
    async fn wait_printed(got: &Printed, n: usize) -> Vec<(std::time::Instant, String)> {
        let t0 = std::time::Instant::now();
        while got.lock().unwrap().len() < n && t0.elapsed() < Duration::from_secs(10) {
            sleep_ms(5).await;
        }
        let got = got.lock().unwrap().clone();
        assert_eq!(got.len(), n, "printed: {:#?}", got);
        got
    }

    async fn sleep_ms(ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    // These tests use real time (tokio's paused clock needs its `test-util`
    // feature, which the workspace does not enable). They only assert what
    // a slow machine cannot break: nothing is printed before the quiet period
    // after the last arrival, and then it is printed once.

    #[tokio::test]
    async fn printer_waits_for_quiet_then_prints_once() {
        let quiet = Duration::from_millis(300);
        let store = SpanStore::new();
        let (got, out) = collector();
        let printer = spawn_printer(store.clone(), quiet, out);
        let spans = pipeline();
        // Children first, root later (as exporters often deliver).
        store.push(spans[..2].to_vec());
        sleep_ms(100).await;
        store.push(spans[2..5].to_vec());
        sleep_ms(100).await;
        let last_push = std::time::Instant::now();
        store.push(spans[5..].to_vec());
        sleep_ms(100).await;
        assert!(
            got.lock().unwrap().is_empty() || last_push.elapsed() >= quiet,
            "printed before the quiet period"
        );
        let printed = wait_printed(&got, 1).await;
        assert!(printed[0].0 >= last_push + quiet, "printed too early");
        assert_eq!(printed[0].1, render(&store.trace(T)));
        assert!(printed[0].1.contains("8 spans, 4 services"));
        sleep_ms(700).await;
        assert_eq!(got.lock().unwrap().len(), 1, "printed exactly once");

        // Late spans: one note per burst, no re-print.
        let mut late = sp(
            "late1",
            Some("g1"),
            "gateway",
            SpanKind::Internal,
            "late",
            0,
            1,
        );
        store.push(vec![late.clone()]);
        late.span_id = "late2".into();
        store.push(vec![late]);
        wait_printed(&got, 2).await;
        assert_eq!(texts(&got)[1], format!("(+2 late spans for trace {T})"));

        // Another trace is printed on its own.
        let mut other = sp("r", None, "gateway", SpanKind::Server, "GET /health", 0, 1);
        other.trace_id = "0".repeat(31) + "2";
        store.push(vec![other]);
        wait_printed(&got, 3).await;
        assert!(texts(&got)[2].starts_with("trace 00000000000000000000000000000002\n"));
        printer.stop().await;
        assert_eq!(got.lock().unwrap().len(), 3, "nothing left to flush");
    }

    #[tokio::test]
    async fn printer_prints_rootless_trace_after_max_wait() {
        let config = PrinterConfig {
            quiet: Duration::from_millis(100),
            max_wait: Duration::from_millis(1_000),
        };
        let store = SpanStore::new();
        let (got, out) = collector();
        let printer = spawn_printer_with(store.clone(), config, out);
        let mut spans = pipeline();
        spans.retain(|s| !s.span_id.starts_with('g'));
        let pushed = std::time::Instant::now();
        store.push(spans);
        let printed = wait_printed(&got, 1).await;
        assert!(
            printed[0].0 >= pushed + config.max_wait,
            "a rootless trace waits for max_wait, not just the quiet period"
        );
        // Its entry span's parent is elsewhere (a caller's): shown as the
        // root, not flagged as an orphan.
        assert!(
            printed[0]
                .1
                .contains("[query-processor] SERVER POST /query")
        );
        assert!(!printed[0].1.contains("(orphan)"), "{}", printed[0].1);
        assert!(printed[0].1.contains("0 orphans"), "{}", printed[0].1);
        printer.stop().await;
        assert_eq!(got.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn printer_flush_and_preexisting_spans() {
        let store = SpanStore::new();
        store.push(pipeline()[2..3].to_vec()); // before the printer starts
        let (got, out) = collector();
        let printer = spawn_printer(store.clone(), Duration::from_secs(60), out);
        let mut second = sp("r", None, "gateway", SpanKind::Server, "x", 0, 1);
        second.trace_id = "0".repeat(32);
        store.push(vec![second]);
        printer.flush(Duration::ZERO).await; // does not wait for the 60 s quiet period
        let printed = texts(&got);
        assert_eq!(printed.len(), 2);
        assert!(
            printed[0].starts_with(&format!("trace {T}\n")),
            "arrival order"
        );
        assert!(printed[1].starts_with(&format!("trace {}\n", "0".repeat(32))));
        store.push(vec![sp(
            "late",
            Some("g1"),
            "gateway",
            SpanKind::Internal,
            "l",
            0,
            1,
        )]);
        printer.stop().await; // flushes the late note
        assert_eq!(
            texts(&got).last().unwrap(),
            &format!("(+1 late span for trace {T})")
        );
    }

    #[tokio::test]
    async fn printer_flush_grace() {
        // Nothing pending: returns at once.
        let store = SpanStore::new();
        let (got, out) = collector();
        let printer = spawn_printer(store.clone(), Duration::from_millis(100), out);
        let t0 = std::time::Instant::now();
        printer.flush(Duration::from_secs(30)).await;
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert!(got.lock().unwrap().is_empty());

        // A trace that finishes by itself within the grace period: printed
        // once, after its quiet period, and flush returns without waiting
        // for the whole grace period.
        let pushed = std::time::Instant::now();
        store.push(pipeline());
        printer.flush(Duration::from_secs(30)).await;
        let printed = wait_printed(&got, 1).await;
        assert!(printed[0].0 >= pushed + Duration::from_millis(100));
        assert!(pushed.elapsed() < Duration::from_secs(10));

        // A trace that would not finish in time (60 s quiet period): printed
        // when the grace period ends.
        let (got, out) = collector();
        let store = SpanStore::new();
        let printer = spawn_printer(store.clone(), Duration::from_secs(60), out);
        let pushed = std::time::Instant::now();
        store.push(pipeline());
        printer.flush(Duration::from_millis(200)).await;
        let printed = wait_printed(&got, 1).await;
        assert!(printed[0].0 >= pushed + Duration::from_millis(200));
        printer.stop().await;
        assert_eq!(got.lock().unwrap().len(), 1);
    }

    #[actix_web::test]
    async fn printer_under_actix_runtime() {
        let store = SpanStore::new();
        let (got, out) = collector();
        let printer = spawn_printer(store.clone(), Duration::from_millis(50), out);
        store.push(pipeline());
        wait_printed(&got, 1).await;
        printer.stop().await;
    }
}
