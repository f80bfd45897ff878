//! The vendor dialects: what Confident AI, Arize Phoenix (OpenInference) and
//! FutureAGI (traceAI) call the facts a span records in the OpenTelemetry
//! conventions' words.
//!
//! Handlers set `gen_ai.*`, `db.*` and `http.*` keys themselves, where the
//! work happens, and never name a vendor key. This module turns them into
//! vendor keys in two ways:
//!
//! - **Derived, at export** ([`translate`]): a vendor key that repeats a
//!   convention's key (`confident.llm.model` is `gen_ai.request.model`,
//!   `openinference.span.kind` follows `gen_ai.operation.name`, ...) is
//!   appended by the span exporter's wrapper, [`translate::Translate`], off
//!   the request path. Handlers do nothing for these.
//! - **Stated, at the call site**: a fact only a vendor records (Confident
//!   AI's trace name and retriever settings, tags, OpenInference's tool
//!   schema) and every piece of content. Handlers call the small functions
//!   below and in [`content`].
//!
//! `RAGTRACE_SPAN_DIALECTS` picks the dialects (comma list; default
//! `genai,confident`; `genai`, the conventions themselves, is always on).

use std::sync::OnceLock;

use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Array, StringValue, Value};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::attributes::{confident, futureagi, openinference};
use crate::wire::Evaluation;

pub mod content;
pub mod translate;

pub use content::{
    chat_input, chat_output, documents, embedding_texts, input, output, tool_call_arguments,
    tool_call_result, trace_input, trace_output,
};

/// The dialects switched on for this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialects {
    pub confident: bool,
    pub openinference: bool,
    pub futureagi: bool,
}

impl Dialects {
    /// The conventions alone, no vendor key.
    pub const GENAI: Dialects = Dialects {
        confident: false,
        openinference: false,
        futureagi: false,
    };

    /// Parse a `RAGTRACE_SPAN_DIALECTS` value. `genai` is always on; unknown
    /// names are reported, not silently ignored.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut dialects = Dialects::GENAI;
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "genai" => {}
                "confident" => dialects.confident = true,
                "openinference" => dialects.openinference = true,
                "futureagi" => dialects.futureagi = true,
                other => {
                    return Err(format!(
                        "unknown span dialect {other:?} \
                         (expected genai, confident, openinference, futureagi)"
                    ));
                }
            }
        }
        Ok(dialects)
    }

    /// From `RAGTRACE_SPAN_DIALECTS`, read once (default `genai,confident`).
    pub fn current() -> Dialects {
        static CURRENT: OnceLock<Dialects> = OnceLock::new();
        *CURRENT.get_or_init(|| {
            let value = std::env::var("RAGTRACE_SPAN_DIALECTS")
                .unwrap_or_else(|_| "genai,confident".into());
            Dialects::parse(&value).unwrap_or_else(|err| {
                tracing::warn!("{err}; using genai,confident");
                Dialects::parse("genai,confident").expect("valid default")
            })
        })
    }
}

fn strings(values: impl IntoIterator<Item = String>) -> Value {
    Value::Array(Array::String(
        values.into_iter().map(StringValue::from).collect(),
    ))
}

/// The trace's name and environment, and the metric collection Confident
/// AI evaluates it with, on the span that starts the work (Confident AI's
/// `confident.trace.*`).
pub fn trace(span: &Span, name: &str, environment: &str, metric_collection: Option<&str>) {
    if Dialects::current().confident {
        span.set_attribute(confident::TRACE_NAME, name.to_owned());
        span.set_attribute(confident::TRACE_ENVIRONMENT, environment.to_owned());
        if let Some(collection) = metric_collection {
            span.set_attribute(confident::TRACE_METRIC_COLLECTION, collection.to_owned());
        }
    }
}

/// The answer's evaluation results on the span they evaluated, for Confident
/// AI: `confident.span.metadata`, `{"evaluations": {name: {score, label}}}`.
/// (The conventions' own keys are on the evaluation spans, where FutureAGI
/// and OpenTelemetry backends read them.)
pub fn evaluations(span: &Span, results: &[Evaluation]) {
    // The JSON is built only for a span that will be exported.
    let sampled = span.context().span().span_context().is_sampled();
    if !Dialects::current().confident || results.is_empty() || !sampled {
        return;
    }
    let evaluations: serde_json::Map<String, serde_json::Value> = results
        .iter()
        .map(|e| {
            let result = serde_json::json!({ "score": e.score, "label": e.label });
            (e.name.clone(), result)
        })
        .collect();
    let metadata = serde_json::json!({ "evaluations": evaluations });
    span.set_attribute(confident::SPAN_METADATA, metadata.to_string());
}

/// The request's tags (`confident.trace.tags`, OpenInference `tag.tags`).
pub fn tags(span: &Span, tags: &[String]) {
    let dialects = Dialects::current();
    if dialects.confident {
        span.set_attribute(confident::TRACE_TAGS, strings(tags.iter().cloned()));
    }
    if dialects.openinference {
        span.set_attribute(openinference::TAG_TAGS, strings(tags.iter().cloned()));
    }
}

/// How a retriever embeds and chunks (Confident AI's retriever fields).
pub fn retriever(span: &Span, embedder: &str, chunk_size: usize) {
    if Dialects::current().confident {
        span.set_attribute(confident::RETRIEVER_EMBEDDER, embedder.to_owned());
        span.set_attribute(confident::RETRIEVER_CHUNK_SIZE, chunk_size as i64);
    }
}

/// The JSON Schema of a tool's arguments (OpenInference `tool.parameters`,
/// FutureAGI `gen_ai.tool.parameters`).
pub fn tool_parameters(span: &Span, schema: &str) {
    let dialects = Dialects::current();
    if dialects.openinference {
        span.set_attribute(openinference::TOOL_PARAMETERS, schema.to_owned());
    }
    if dialects.futureagi {
        span.set_attribute(futureagi::TOOL_PARAMETERS, schema.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::Dialects;

    #[test]
    fn dialects_parse() {
        assert_eq!(
            Dialects::parse("genai,confident").unwrap(),
            Dialects {
                confident: true,
                ..Dialects::GENAI
            }
        );
        assert_eq!(
            Dialects::parse(" openinference , GENAI ").unwrap(),
            Dialects {
                openinference: true,
                ..Dialects::GENAI
            }
        );
        assert_eq!(
            Dialects::parse("genai,futureagi,confident").unwrap(),
            Dialects {
                confident: true,
                futureagi: true,
                ..Dialects::GENAI
            }
        );
        assert!(Dialects::parse("genai,zipkin").is_err());
    }
}
