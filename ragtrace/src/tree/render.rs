//! A trace as plain text ([`render`]): one line per span, the durations in
//! one column, the key attributes, and the [`super::Health`] line.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use super::build::build;
use super::health::{health, is_mcp};
use crate::receiver::SpanRecord;

/// Attributes shown on a span's line, in this order, when present.
/// `gen_ai.tool.name` only on MCP spans (those with `mcp.method.name`),
/// `http.response.status_code` only from 400 up, `ragtrace.stream.outcome`
/// only when it is not `completed`.
pub const KEY_ATTRIBUTES: [&str; 15] = [
    "mcp.method.name",
    "gen_ai.tool.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.response.time_to_first_chunk",
    "ragtrace.stream.outcome",
    "gen_ai.request.top_k",
    "gen_ai.data_source.id",
    "gen_ai.evaluation.score.value",
    "gen_ai.evaluation.score.label",
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
        // An MCP span's name repeats its method and tool, but the line
        // spells out both keys; elsewhere (`execute_tool {tool}`) the name
        // says it.
        if key == "gen_ai.tool.name" && !is_mcp(span) {
            continue;
        }
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
/// message`), and the [`Health`](super::Health) line. Spans of several
/// traces are rendered one trace after the other, separated by a blank line.
/// No trailing newline.
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
