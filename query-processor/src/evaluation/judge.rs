//! The model-graded judge, opt-in: with `EVAL_MODEL` set, a chat model
//! grades how well each answer addresses its question from its passages.
//! Without it, nothing here runs and no model is called.
//!
//! The judge is an ordinary OpenAI-compatible chat call through
//! `async-openai` (`EVAL_BASE_URL`, `EVAL_API_KEY` or `OPENAI_API_KEY`), so
//! it gets the same `chat {model}` CLIENT span as the answer's own call in
//! llm-service. That span is a child of the judge's `evaluation` span: its
//! tokens and cost are visible, and its tokens never counted as the answer's.

use std::time::{Duration, Instant};

use async_openai::types::chat::{
    ChatCompletionRequestSystemMessageArgs, ChatCompletionRequestUserMessageArgs,
    CreateChatCompletionRequestArgs,
};
use serde::Deserialize;
use shared::attributes::gen_ai;
use shared::config;
use shared::metrics::{self, GenAiOperation};
use shared::prices;
use shared::provider::{self, Api, Endpoint, ProviderError};
use shared::redact::Content;
use tracing::{Instrument, Span, field};

use super::Answer;
use super::scores::Score;

/// `gen_ai.evaluation.name` of the judge's result.
pub const ANSWER_RELEVANCE: &str = "answer_relevance";
/// The judge's score passes from here.
pub const THRESHOLD: f64 = 0.5;

const INSTRUCTIONS: &str = "You grade the answers of a retrieval-augmented assistant. \
Given a question, numbered context passages and an answer, rate from 0 to 1 how well the \
answer addresses the question using only the passages (1: fully, correctly and only from \
the passages; 0: not at all, or from elsewhere). Reply with JSON only: \
{\"score\": <number from 0 to 1>, \"explanation\": \"<one short sentence>\"}";

pub struct Judge {
    endpoint: Endpoint,
    model: String,
    timeout: Duration,
}

/// What the judge replies.
#[derive(Deserialize)]
struct Verdict {
    score: f64,
    #[serde(default)]
    explanation: String,
}

impl Judge {
    /// `EVAL_MODEL` (unset: no judge), `EVAL_BASE_URL` (default OpenAI's),
    /// `EVAL_API_KEY`, `EVAL_PROVIDER`, `EVAL_TIMEOUT_MS` (default 20 s).
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        let Some(model) = config::env_opt("EVAL_MODEL") else {
            return Ok(None);
        };
        let base_url = config::env_string("EVAL_BASE_URL", "https://api.openai.com/v1");
        let provider = config::env_opt("EVAL_PROVIDER");
        Ok(Some(Self {
            endpoint: Endpoint::new(
                &base_url,
                &provider::api_key("EVAL_API_KEY"),
                provider.as_deref(),
            ),
            model,
            timeout: config::env_millis("EVAL_TIMEOUT_MS", 20_000)?,
        }))
    }

    /// Ask the model for a score, inside a `chat {model}` CLIENT span.
    pub async fn grade(&self, answer: &Answer<'_>) -> Result<Score, ProviderError> {
        let model = &self.model;
        // The judge's GenAI chat span, CLIENT, like llm-service's.
        let span = tracing::info_span!(
            "chat",
            otel.name = %format!("chat {model}"),
            otel.kind = "client",
            "gen_ai.operation.name" = "chat",
            "gen_ai.provider.name" = self.endpoint.provider.as_str(),
            "gen_ai.request.model" = model.as_str(),
            "gen_ai.request.temperature" = 0.0,
            "gen_ai.output.type" = "json",
            "server.address" = %self.endpoint.host,
            "server.port" = i64::from(self.endpoint.port),
            "gen_ai.response.id" = field::Empty,
            "gen_ai.response.model" = field::Empty,
            "gen_ai.usage.input_tokens" = field::Empty,
            "gen_ai.usage.output_tokens" = field::Empty,
        );
        let started = Instant::now();
        let result = self.call(answer, &span).instrument(span.clone()).await;
        let operation = self.endpoint.operation(gen_ai::operation::CHAT, model);
        match &result {
            Ok(reply) => {
                let answered = GenAiOperation {
                    response_model: Some(&reply.model),
                    ..operation
                };
                prices::record_cost(&span, &answered, reply.input_tokens, reply.output_tokens);
                metrics::record_operation(
                    &answered,
                    started.elapsed(),
                    Some(reply.input_tokens),
                    Some(reply.output_tokens),
                );
            }
            Err(err) => {
                shared::telemetry::record_error(&span, err.code(Api::Chat), &err.to_string());
                metrics::record_operation(
                    &GenAiOperation {
                        error_type: Some(err.code(Api::Chat)),
                        ..operation
                    },
                    started.elapsed(),
                    None,
                    None,
                );
            }
        }
        result.map(|reply| reply.score)
    }

    async fn call(&self, answer: &Answer<'_>, span: &Span) -> Result<Reply, ProviderError> {
        let invalid = |message: String| ProviderError::InvalidResponse {
            provider: self.endpoint.provider.clone(),
            message,
        };
        let request = CreateChatCompletionRequestArgs::default()
            .model(self.model.clone())
            .temperature(0.0)
            .messages(vec![
                ChatCompletionRequestSystemMessageArgs::default()
                    .content(INSTRUCTIONS)
                    .build()
                    .map_err(|e| invalid(e.to_string()))?
                    .into(),
                ChatCompletionRequestUserMessageArgs::default()
                    .content(prompt(answer))
                    .build()
                    .map_err(|e| invalid(e.to_string()))?
                    .into(),
            ])
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        let response = self
            .endpoint
            .call(self.timeout, self.endpoint.client.chat().create(request))
            .await?;
        let (input_tokens, output_tokens) = response.usage.as_ref().map_or((0, 0), |u| {
            (u64::from(u.prompt_tokens), u64::from(u.completion_tokens))
        });
        span.record("gen_ai.response.id", response.id.as_str());
        span.record("gen_ai.response.model", response.model.as_str());
        span.record("gen_ai.usage.input_tokens", input_tokens as i64);
        span.record("gen_ai.usage.output_tokens", output_tokens as i64);
        let text = response
            .choices
            .into_iter()
            .next()
            .and_then(|choice| choice.message.content)
            .unwrap_or_default();
        let verdict = parse(&text).ok_or_else(|| {
            invalid(format!(
                "the judge's reply is not {{\"score\": 0..1}} ({} chars)",
                text.len()
            ))
        })?;
        Ok(Reply {
            score: Score {
                value: verdict.score,
                // The model's own words may quote the answer: kept only as
                // content (capture on, redacted).
                explanation: Content::capture(&verdict.explanation)
                    .text()
                    .map_or_else(|| format!("graded by {}", response.model), str::to_owned),
            },
            model: response.model,
            input_tokens,
            output_tokens,
        })
    }
}

struct Reply {
    score: Score,
    model: String,
    input_tokens: u64,
    output_tokens: u64,
}

/// The question, the numbered passages and the answer.
fn prompt(answer: &Answer<'_>) -> String {
    let mut prompt = format!("Question: {}\n\nContext passages:\n", answer.question);
    for (i, passage) in answer.contexts.iter().enumerate() {
        prompt.push_str(&format!("[{}] {}\n", i + 1, passage.text));
    }
    prompt.push_str(&format!("\nAnswer: {}", answer.text));
    prompt
}

/// The verdict in `text`: the JSON object it holds (models wrap it in prose
/// or a code fence), with a score in [0, 1].
fn parse(text: &str) -> Option<Verdict> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    let verdict: Verdict = serde_json::from_str(text.get(start..=end)?).ok()?;
    (0.0..=1.0).contains(&verdict.score).then_some(verdict)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_verdict_is_read_from_json_wrapped_in_prose() {
        let verdict =
            parse("Sure:\n```json\n{\"score\": 0.8, \"explanation\": \"ok\"}\n```").unwrap();
        assert_eq!(verdict.score, 0.8);
        assert_eq!(verdict.explanation, "ok");
        assert!(parse("{\"score\": 1.5}").is_none());
        assert!(parse("no json here").is_none());
    }
}
