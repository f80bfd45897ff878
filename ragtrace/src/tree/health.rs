//! A trace's vital signs ([`Health`]): span, service and error counts, depth,
//! roots and orphans, and the inference tokens, as one line of text.

use std::collections::HashSet;
use std::fmt;

use super::build::build;
use crate::receiver::SpanRecord;

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
