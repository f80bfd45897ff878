//! The vendor dialects: what Confident AI and Arize Phoenix (OpenInference)
//! call the facts a span records in the OpenTelemetry conventions' words.
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

use opentelemetry::{Array, StringValue, Value};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::attributes::{confident, openinference};

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
}

impl Dialects {
    /// Parse a `RAGTRACE_SPAN_DIALECTS` value. `genai` is always on; unknown
    /// names are reported, not silently ignored.
    pub fn parse(value: &str) -> Result<Self, String> {
        let mut dialects = Dialects {
            confident: false,
            openinference: false,
        };
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "genai" => {}
                "confident" => dialects.confident = true,
                "openinference" => dialects.openinference = true,
                other => {
                    return Err(format!(
                        "unknown span dialect {other:?} (expected genai, confident, openinference)"
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

/// The trace's name and environment, on the span that starts the work
/// (Confident AI's `confident.trace.*`).
pub fn trace(span: &Span, name: &str, environment: &str) {
    if Dialects::current().confident {
        span.set_attribute(confident::TRACE_NAME, name.to_owned());
        span.set_attribute(confident::TRACE_ENVIRONMENT, environment.to_owned());
    }
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

/// The JSON Schema of a tool's arguments (OpenInference `tool.parameters`).
pub fn tool_parameters(span: &Span, schema: &str) {
    if Dialects::current().openinference {
        span.set_attribute(openinference::TOOL_PARAMETERS, schema.to_owned());
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
                openinference: false
            }
        );
        assert_eq!(
            Dialects::parse(" openinference , GENAI ").unwrap(),
            Dialects {
                confident: false,
                openinference: true
            }
        );
        assert!(Dialects::parse("genai,zipkin").is_err());
    }
}
