//! A trace's vital signs ([`Health`]): span, service and error counts, depth,
//! hops between services, roots and orphans, the inference tokens, the cost
//! and the answer's evaluations, as one line of text.

use std::collections::{HashMap, HashSet};
use std::fmt;

use shared::attributes::{cost, gen_ai};

use super::build::build;
use crate::receiver::{SpanKind, SpanRecord};

/// The attribute that marks an MCP span: the JSON-RPC method (`tools/call`, …).
pub const MCP_METHOD: &str = "mcp.method.name";

/// `gen_ai.operation.name` values whose token usage counts as inference.
pub const INFERENCE_OPERATIONS: [&str; 3] = ["chat", "text_completion", "generate_content"];

/// One evaluator's result, from its evaluation span.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluated {
    pub name: String,
    pub score: f64,
    pub label: String,
}

/// A trace's vital signs.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Health {
    /// Distinct trace ids, in order of first appearance (one for a healthy
    /// trace).
    pub trace_ids: Vec<String>,
    pub spans: usize,
    /// Distinct `service.name`s, sorted.
    pub services: Vec<String>,
    /// Levels in the deepest branch; a root alone is 1.
    pub depth: usize,
    /// SERVER spans whose parent is a CLIENT span in the trace that does not
    /// carry [`MCP_METHOD`]: one per HTTP call from one service to the next.
    /// An HTTP SERVER span under an MCP CLIENT span (`POST /mcp`) is the
    /// transport of an MCP hop and not counted here.
    pub http_hops: usize,
    /// SERVER spans that carry [`MCP_METHOD`], whether their parent is in the
    /// trace or in another process (an MCP client over stdio).
    pub mcp_hops: usize,
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
    /// Tokens (in and out) of inference spans under an evaluation span (a
    /// model-graded judge): not the answer's, so not in the two above.
    pub evaluation_tokens: i64,
    /// Sum of `gen_ai.cost.total` over the spans (chat, embeddings and a
    /// judge's chat alike), in USD. `None` when no span carries one, or
    /// when a span that used tokens carries none (its model has no price):
    /// a sum without it would understate the trace's cost.
    pub cost: Option<f64>,
    /// The evaluation spans' results, in the order they started.
    pub evaluations: Vec<Evaluated>,
}

impl Health {
    pub fn total_tokens(&self) -> i64 {
        self.input_tokens + self.output_tokens
    }

    /// HTTP and MCP hops together.
    pub fn hops(&self) -> usize {
        self.http_hops + self.mcp_hops
    }
}

/// Whether a span carries [`MCP_METHOD`].
pub fn is_mcp(span: &SpanRecord) -> bool {
    span.attributes.contains_key(MCP_METHOD)
}

/// `(http_hops, mcp_hops)` as [`Health`] defines them; each SERVER span
/// counts at most once. Parents are looked up by (trace id, span id).
fn hops(spans: &[SpanRecord]) -> (usize, usize) {
    let mut by_id: HashMap<(&str, &str), &SpanRecord> = HashMap::with_capacity(spans.len());
    for s in spans {
        by_id.entry((&s.trace_id, &s.span_id)).or_insert(s);
    }
    let (mut http, mut mcp) = (0, 0);
    for s in spans.iter().filter(|s| s.kind == SpanKind::Server) {
        if is_mcp(s) {
            mcp += 1;
            continue;
        }
        let parent = s
            .parent_span_id
            .as_deref()
            .and_then(|p| by_id.get(&(s.trace_id.as_str(), p)));
        if parent.is_some_and(|p| p.kind == SpanKind::Client && !is_mcp(p)) {
            http += 1;
        }
    }
    (http, mcp)
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
    let evaluation_ids: HashSet<(&str, &str)> = spans
        .iter()
        .filter(|s| s.attributes.contains_key(gen_ai::EVALUATION_NAME))
        .map(|s| (s.trace_id.as_str(), s.span_id.as_str()))
        .collect();
    let (mut input_tokens, mut output_tokens, mut evaluation_tokens) = (0, 0, 0);
    for s in spans.iter().filter(|s| is_inference(s)) {
        let input = s.attr_i64("gen_ai.usage.input_tokens").unwrap_or(0);
        let output = s.attr_i64("gen_ai.usage.output_tokens").unwrap_or(0);
        let parent = s.parent_span_id.as_deref().unwrap_or("");
        if evaluation_ids.contains(&(s.trace_id.as_str(), parent)) {
            evaluation_tokens += input + output;
        } else {
            input_tokens += input;
            output_tokens += output;
        }
    }
    let (http_hops, mcp_hops) = hops(spans);
    Health {
        trace_ids,
        spans: spans.len(),
        services,
        depth: tree.depth(),
        http_hops,
        mcp_hops,
        roots: tree.roots.iter().filter(|n| !n.orphan).count(),
        orphans: tree.orphans(),
        errors: spans.iter().filter(|s| s.is_error()).count(),
        input_tokens,
        output_tokens,
        evaluation_tokens,
        cost: cost(spans),
        evaluations: evaluations(spans),
    }
}

/// [`Health::cost`].
fn cost(spans: &[SpanRecord]) -> Option<f64> {
    let mut sum = None;
    for s in spans {
        match s.attributes.get(cost::TOTAL).and_then(|c| c.as_f64()) {
            Some(cost) => sum = Some(sum.unwrap_or(0.0) + cost),
            None if s.attributes.contains_key(gen_ai::USAGE_INPUT_TOKENS) => return None,
            None => {}
        }
    }
    sum
}

/// The results of the evaluation spans that have one (a failed evaluator
/// has none), by start time.
fn evaluations(spans: &[SpanRecord]) -> Vec<Evaluated> {
    let mut found: Vec<(u64, Evaluated)> = spans
        .iter()
        .filter_map(|s| {
            let score = s.attributes.get(gen_ai::EVALUATION_SCORE_VALUE)?.as_f64()?;
            Some((
                s.start_unix_nanos,
                Evaluated {
                    name: s.attr_str(gen_ai::EVALUATION_NAME)?.to_owned(),
                    score,
                    label: s
                        .attr_str(gen_ai::EVALUATION_SCORE_LABEL)
                        .unwrap_or("")
                        .to_owned(),
                },
            ))
        })
        .collect();
    found.sort_by_key(|(start, _)| *start);
    found.into_iter().map(|(_, e)| e).collect()
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
/// `trace 30020d70…: 16 spans, 4 services (gateway, llm-service, query-processor, retrieval), depth 9, 3 hops, 0 orphans, 0 errors, 586 tokens (471 in / 115 out)`.
/// With MCP hops the hops are split: `3 hops (2 http, 1 mcp)`.
/// `, N roots` is added before the orphans when there is not exactly one root.
/// A judge's tokens follow as `(+N evaluating)`, then the cost of every
/// priced call in the trace, judge included, as `, cost $0.000123` (only if
/// every call that used tokens is priced), and the evaluations close
/// the line: `; groundedness 1.00 pass, citation_validity 0.50 fail`.
impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.trace_ids.as_slice() {
            [] => f.write_str("no trace")?,
            [one] => write!(f, "trace {}", short_id(one))?,
            many => write!(f, "{} traces", many.len())?,
        }
        write!(
            f,
            ": {}, {} ({}), depth {}, {}",
            plural(self.spans, "span", "spans"),
            plural(self.services.len(), "service", "services"),
            self.services.join(", "),
            self.depth,
            plural(self.hops(), "hop", "hops"),
        )?;
        if self.mcp_hops > 0 {
            write!(f, " ({} http, {} mcp)", self.http_hops, self.mcp_hops)?;
        }
        f.write_str(", ")?;
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
        )?;
        if self.evaluation_tokens > 0 {
            write!(f, " (+{} evaluating)", self.evaluation_tokens)?;
        }
        if let Some(cost) = self.cost {
            write!(f, ", cost ${cost:.6}")?;
        }
        for (i, e) in self.evaluations.iter().enumerate() {
            let separator = if i == 0 { "; " } else { ", " };
            write!(f, "{separator}{} {:.2} {}", e.name, e.score, e.label)?;
        }
        Ok(())
    }
}
