//! Content on spans: prompts, retrieved passages, tool arguments, answers.
//!
//! Every function here takes [`Content`] or [`Passages`], which only the
//! redactor builds ([`crate::redact`]): empty when content capture is off,
//! redacted and capped when it is on. So content reaches a span redacted,
//! or not at all, whichever key and dialect it lands in. Each function
//! writes the GenAI conventions' content key where one exists, then each
//! enabled dialect's.

use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{Dialects, strings};
use crate::attributes::{confident, gen_ai, mcp, openinference};
use crate::redact::{Content, Passages};

/// Most embedded texts recorded on one `EMBEDDING` span (an ingest batch
/// can embed hundreds; the SDK keeps 128 attributes per span).
pub const MAX_RECORDED_EMBEDDING_TEXTS: usize = 16;

/// What a span was given: the question, the prompt.
pub fn input(span: &Span, content: &Content) {
    input_as(span, content, "text/plain");
}

/// What a span produced: the answer.
pub fn output(span: &Span, content: &Content) {
    output_as(span, content, "text/plain");
}

fn input_as(span: &Span, content: &Content, mime_type: &'static str) {
    let Some(text) = content.text() else { return };
    let dialects = Dialects::current();
    if dialects.confident {
        span.set_attribute(confident::SPAN_INPUT, text.to_owned());
    }
    if dialects.openinference {
        span.set_attribute(openinference::INPUT_VALUE, text.to_owned());
        span.set_attribute(openinference::INPUT_MIME_TYPE, mime_type);
    }
}

fn output_as(span: &Span, content: &Content, mime_type: &'static str) {
    let Some(text) = content.text() else { return };
    let dialects = Dialects::current();
    if dialects.confident {
        span.set_attribute(confident::SPAN_OUTPUT, text.to_owned());
    }
    if dialects.openinference {
        span.set_attribute(openinference::OUTPUT_VALUE, text.to_owned());
        span.set_attribute(openinference::OUTPUT_MIME_TYPE, mime_type);
    }
}

/// A tool call's arguments, as JSON text: `gen_ai.tool.call.arguments`,
/// and each dialect's input key.
pub fn tool_call_arguments(span: &Span, content: &Content) {
    let Some(text) = content.text() else { return };
    span.set_attribute(mcp::TOOL_CALL_ARGUMENTS, text.to_owned());
    input_as(span, content, "application/json");
}

/// A tool call's result, as JSON text: `gen_ai.tool.call.result`, and each
/// dialect's output key.
pub fn tool_call_result(span: &Span, content: &Content) {
    let Some(text) = content.text() else { return };
    span.set_attribute(mcp::TOOL_CALL_RESULT, text.to_owned());
    output_as(span, content, "application/json");
}

/// The whole request's input, on the agent span (`confident.trace.input`).
pub fn trace_input(span: &Span, content: &Content) {
    if let (true, Some(text)) = (Dialects::current().confident, content.text()) {
        span.set_attribute(confident::TRACE_INPUT, text.to_owned());
    }
}

/// The whole request's output, on the agent span (`confident.trace.output`).
pub fn trace_output(span: &Span, content: &Content) {
    if let (true, Some(text)) = (Dialects::current().confident, content.text()) {
        span.set_attribute(confident::TRACE_OUTPUT, text.to_owned());
    }
}

/// The passages a retrieval returned.
pub fn documents(span: &Span, passages: &Passages) {
    let Some(passages) = passages.get() else {
        return;
    };
    let dialects = Dialects::current();
    if dialects.confident {
        let texts = passages.iter().map(|p| p.text().to_owned());
        span.set_attribute(confident::SPAN_RETRIEVAL_CONTEXT, strings(texts));
    }
    if dialects.openinference {
        for (i, passage) in passages.iter().enumerate() {
            let key = |field: &str| format!("retrieval.documents.{i}.document.{field}");
            span.set_attribute(key("id"), passage.id.clone());
            span.set_attribute(key("content"), passage.text().to_owned());
            span.set_attribute(key("score"), f64::from(passage.score));
        }
    }
}

/// The texts an embeddings call embedded, in order (the first
/// [`MAX_RECORDED_EMBEDDING_TEXTS`]).
pub fn embedding_texts(span: &Span, texts: &[String]) {
    if !Dialects::current().openinference || !crate::redact::capture_content() {
        return;
    }
    for (i, text) in texts.iter().take(MAX_RECORDED_EMBEDDING_TEXTS).enumerate() {
        if let Some(text) = Content::capture(text).text() {
            let key = format!("embedding.embeddings.{i}.embedding.text");
            span.set_attribute(key, text.to_owned());
        }
    }
}

/// The messages sent to a chat model: GenAI's `gen_ai.input.messages` and
/// `gen_ai.system_instructions` (JSON in the conventions' message schema,
/// `{"role", "parts": [{"type": "text", "content"}]}`), OpenInference's
/// `llm.input_messages.{i}.message.*`.
pub fn chat_input(span: &Span, system: Option<&Content>, user: &Content) {
    let Some(user) = user.text() else { return };
    let system = system.and_then(Content::text);
    if let Some(system) = system {
        let parts = serde_json::json!([{"type": "text", "content": system}]);
        span.set_attribute(gen_ai::SYSTEM_INSTRUCTIONS, parts.to_string());
    }
    let messages = serde_json::json!([
        {"role": "user", "parts": [{"type": "text", "content": user}]}
    ]);
    span.set_attribute(gen_ai::INPUT_MESSAGES, messages.to_string());
    if Dialects::current().openinference {
        let messages = system.map(|s| ("system", s)).into_iter();
        for (i, (role, content)) in messages.chain([("user", user)]).enumerate() {
            let key = |field: &str| format!("llm.input_messages.{i}.message.{field}");
            span.set_attribute(key("role"), role);
            span.set_attribute(key("content"), content.to_owned());
        }
    }
}

/// The model's reply: `gen_ai.output.messages`, OpenInference's
/// `llm.output_messages.0.message.*`.
pub fn chat_output(span: &Span, answer: &Content, finish_reason: &str) {
    let Some(answer) = answer.text() else { return };
    let messages = serde_json::json!([{
        "role": "assistant",
        "parts": [{"type": "text", "content": answer}],
        "finish_reason": finish_reason,
    }]);
    span.set_attribute(gen_ai::OUTPUT_MESSAGES, messages.to_string());
    if Dialects::current().openinference {
        span.set_attribute(openinference::LLM_OUTPUT_ROLE_0, "assistant");
        span.set_attribute(openinference::LLM_OUTPUT_CONTENT_0, answer.to_owned());
    }
}
