//! Online evaluation of every answer, written on the trace.
//!
//! Query-processor is the one service that holds the question, the
//! passages and the whole answer, so the evaluators run here, once the
//! answer is in. Three are deterministic and on by default ([`scores`]):
//! citation validity, groundedness and context relevance. A fourth, a
//! model-graded judge ([`judge`]), runs only with `EVAL_MODEL` set.
//!
//! Each result is recorded in the two places readers look for it:
//!
//! - its own INTERNAL span, `evaluation {gen_ai.evaluation.name}`, a child
//!   of the span being evaluated, with the `gen_ai.evaluation.*` keys. The
//!   console tree and Jaeger show it as a step; FutureAGI and OpenInference
//!   give it their EVALUATOR kind; and what the evaluator itself calls (the
//!   judge's `chat` span, retrieval's `POST /embed`) sits under it, so its
//!   tokens and cost are visible and never counted as the answer's;
//! - the GenAI conventions' `gen_ai.evaluation.result` event, on the span
//!   being evaluated: the tool span whose output is the answer. In the
//!   `confident` dialect the same span also gets them as
//!   `confident.span.metadata`, since Confident AI reads no event.
//!
//! An evaluator that cannot run (the embedder or the judge failed) marks its
//! span ERROR and is left out of the results. The answer is still returned.

pub mod embeddings;
pub mod judge;
pub mod passage_vectors;
pub mod scores;

use opentelemetry::KeyValue;
use shared::attributes::gen_ai;
use shared::dialects;
use shared::error::ApiError;
use shared::provider::Api;
use shared::wire::{Evaluation, Passage};
use tracing::{Instrument, Span, field};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use embeddings::Vectors;
use judge::Judge;
use passage_vectors::PassageVectors;
use scores::Score;

/// `gen_ai.evaluation.name` of each evaluator.
pub const CITATION_VALIDITY: &str = "citation_validity";
pub const GROUNDEDNESS: &str = "groundedness";
pub const CONTEXT_RELEVANCE: &str = "context_relevance";

/// What is evaluated: the question, the passages it was answered from, and
/// the answer.
pub struct Answer<'a> {
    pub question: &'a str,
    pub contexts: &'a [Passage],
    pub text: &'a str,
}

/// The evaluators this process runs: the deterministic three, and the judge
/// when `EVAL_MODEL` is set; none with `RAGTRACE_EVALUATIONS=off`.
pub struct Evaluator {
    pub enabled: bool,
    pub judge: Option<Judge>,
    /// Passages' sentence vectors, embedded once ([`passage_vectors`]).
    pub passage_vectors: PassageVectors,
}

impl Evaluator {
    pub fn from_env() -> anyhow::Result<Self> {
        let enabled = match shared::config::env_string("RAGTRACE_EVALUATIONS", "on").as_str() {
            "on" => true,
            "off" => false,
            other => anyhow::bail!("RAGTRACE_EVALUATIONS must be on or off, got {other:?}"),
        };
        Ok(Self {
            enabled,
            judge: if enabled { Judge::from_env()? } else { None },
            passage_vectors: PassageVectors::default(),
        })
    }

    /// Score `answer`, recording every result under `evaluated`.
    pub async fn evaluate(
        &self,
        evaluated: &Span,
        answer: &Answer<'_>,
        vectors: &Vectors<'_>,
    ) -> Vec<Evaluation> {
        if !self.enabled {
            return Vec::new();
        }
        let mut results = Vec::with_capacity(4);
        let relevance = EvaluationSpan::open(evaluated, CONTEXT_RELEVANCE);
        let score = scores::context_relevance(answer.contexts);
        results.push(relevance.record(evaluated, scores::CONTEXT_RELEVANCE_THRESHOLD, score));

        // Groundedness embeds the answer's sentences and the passages'; the
        // citations are checked against the same similarities.
        let sentences = scores::sentences(answer.text);
        let groundedness = EvaluationSpan::open(evaluated, GROUNDEDNESS);
        match vectors
            .similarities(&sentences, answer.contexts, &self.passage_vectors)
            .instrument(groundedness.span.clone())
            .await
        {
            Ok(similarity) => {
                let score = scores::groundedness(&similarity);
                results.push(groundedness.record(evaluated, scores::GROUNDEDNESS_THRESHOLD, score));
                let citations = EvaluationSpan::open(evaluated, CITATION_VALIDITY);
                let score =
                    scores::citation_validity(&sentences, answer.contexts.len(), &similarity);
                let threshold = scores::CITATION_VALIDITY_THRESHOLD;
                results.push(citations.record(evaluated, threshold, score));
            }
            Err(err) => groundedness.failed(err.code(), &err.to_string()),
        }

        if let Some(judge) = &self.judge {
            let judged = EvaluationSpan::open(evaluated, judge::ANSWER_RELEVANCE);
            // The judge's `chat` span is this span's child.
            match judge.grade(answer).instrument(judged.span.clone()).await {
                Ok(score) => results.push(judged.record(evaluated, judge::THRESHOLD, score)),
                Err(err) => judged.failed(err.code(Api::Chat), &err.to_string()),
            }
        }
        // Confident AI has no key for an outside score: the results go in
        // the evaluated span's `confident.span.metadata`.
        dialects::evaluations(evaluated, &results);
        results
    }
}

/// An evaluator's span, open while it runs.
struct EvaluationSpan {
    name: &'static str,
    span: Span,
}

impl EvaluationSpan {
    /// `evaluation {gen_ai.evaluation.name}`, INTERNAL, a child of the span
    /// being evaluated. The score, label and explanation are recorded once
    /// known ([`Self::record`]).
    fn open(evaluated: &Span, name: &'static str) -> Self {
        let span = tracing::info_span!(
            parent: evaluated,
            "evaluation",
            otel.name = %format!("evaluation {name}"),
            otel.kind = "internal",
            "gen_ai.evaluation.name" = name,
            "gen_ai.evaluation.score.value" = field::Empty,
            "gen_ai.evaluation.score.label" = field::Empty,
            "gen_ai.evaluation.explanation" = field::Empty,
        );
        Self { name, span }
    }

    /// Label `score` against `threshold` and record it: on this span, which
    /// ends here, and as the conventions' `gen_ai.evaluation.result` event
    /// on the span being evaluated.
    fn record(self, evaluated: &Span, threshold: f64, score: Score) -> Evaluation {
        let label = if score.value >= threshold {
            "pass"
        } else {
            "fail"
        };
        self.span
            .record("gen_ai.evaluation.score.value", score.value);
        self.span.record("gen_ai.evaluation.score.label", label);
        self.span
            .record("gen_ai.evaluation.explanation", score.explanation.as_str());
        evaluated.add_event(
            gen_ai::EVALUATION_RESULT_EVENT,
            vec![
                KeyValue::new(gen_ai::EVALUATION_NAME, self.name),
                KeyValue::new(gen_ai::EVALUATION_SCORE_VALUE, score.value),
                KeyValue::new(gen_ai::EVALUATION_SCORE_LABEL, label),
                KeyValue::new(gen_ai::EVALUATION_EXPLANATION, score.explanation.clone()),
            ],
        );
        Evaluation {
            name: self.name.to_owned(),
            score: score.value,
            label: label.to_owned(),
            explanation: score.explanation,
        }
    }

    /// The evaluator could not run: an ERROR span, and no result.
    fn failed(self, code: &str, message: &str) {
        shared::telemetry::record_error(&self.span, code, message);
    }
}
