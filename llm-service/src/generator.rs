//! The offline, extractive answer generator.
//!
//! # Why it exists
//!
//! ragtrace is a reference app for *tracing* a RAG pipeline; the generation
//! step is just one more span. So that the whole app runs end to end with no
//! API keys, no network access and no model download, llm-service falls back
//! to this generator when no hosted model is configured.
//!
//! # Why extractive
//!
//! It does not write new text. It picks the sentences of the retrieved
//! contexts that best overlap the question, copies them verbatim, and cites
//! each one with `[n]`, the 1-based position of its context in the list it
//! was given. Every sentence of an answer therefore comes from an indexed
//! document and carries a citation: it cannot hallucinate. When nothing in
//! the contexts overlaps the question it says so ([`NO_ANSWER`]) instead of
//! making something up.
//!
//! # What it reports
//!
//! The model name it reports is [`MODEL_NAME`], `ragtrace-extractive-v1`,
//! which says what it is. It never borrows a hosted model's name: traces,
//! logs and responses must not suggest that an LLM answered when none did.
//! Token usage is counted with [`crate::tokens::count_tokens`] (the GPT-2
//! pre-tokenisation rule) over [`prompt_text`] — the prompt this generator
//! conceptually reads — and over the answer, so the numbers are real counts
//! under a documented rule rather than invented ones.
//!
//! # Algorithm
//!
//! 1. Split each context into sentences. A sentence ends after `.`, `?` or
//!    `!` followed by whitespace (the punctuation is kept), and at a
//!    paragraph break (a blank line, or a line without letters or digits such as `---`). A markdown list item starts a new
//!    sentence (its bullet is dropped); a markdown heading is a title, not a
//!    statement, and is skipped. Whitespace inside a sentence is collapsed to
//!    single spaces.
//! 2. Normalise the question and every sentence into terms: lowercase
//!    alphanumeric words, minus a small stop-word list, minus one-letter
//!    words, with a plural `s` stripped (words longer than 3 chars not ending
//!    in `ss`).
//! 3. Score each sentence: for every distinct question term it contains, add
//!    the idf-like weight `1 + ln(N / (1 + df))`, where `N` is the number of
//!    sentences and `df` the number containing the term (always > 0.3); then
//!    add `0.1 × context.score` and `0.05 / (1 + position)` as tie-breakers.
//!    Sentences sharing no term with the question are dropped.
//! 4. Take the best `max_sentences` (skipping verbatim duplicates, which
//!    overlapping chunks produce), then put them back in document order —
//!    by context rank, then position — so the answer reads naturally.
//! 5. Write each sentence followed by its citation, then a line
//!    `Sources: [1] a.md, [2] b.md` naming only the cited contexts.
//! 6. If the answer exceeds `max_output_tokens`, cut it at a token-piece
//!    boundary and report [`FinishReason::Length`].
//!
//! Everything is deterministic: ties are broken by position and no hash-map
//! iteration order reaches the output.

use std::collections::BTreeSet;
use std::fmt;

use shared::wire::Passage;

use crate::tokens::{count_tokens, pieces};

/// The model name this generator reports. It names what it is, an
/// extractive generator, and never pretends to be a hosted model.
pub const MODEL_NAME: &str = "ragtrace-extractive-v1";

/// The honest answer when no context sentence overlaps the question, or
/// there are no contexts at all.
pub const NO_ANSWER: &str = "I could not find anything about that in the indexed documents.";

/// The instruction line at the top of [`prompt_text`].
const SYSTEM_INSTRUCTION: &str = "Answer the question using only the numbered contexts below. \
     Cite each statement with its context number, like [1]. \
     If the contexts do not contain the answer, say so.";

/// Words too common to say anything about what a question is about.
const STOP_WORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "by", "can", "could", "do", "does", "for",
    "from", "has", "have", "how", "i", "in", "is", "it", "its", "me", "my", "of", "on", "or",
    "should", "so", "than", "that", "the", "then", "there", "this", "to", "was", "we", "were",
    "what", "when", "where", "which", "who", "why", "will", "with", "would", "you", "your",
];

/// Tuning knobs for [`generate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratorConfig {
    /// Most sentences an answer quotes (default 3). `0` is treated as `1`.
    pub max_sentences: usize,
    /// Token cap on the answer, counted with
    /// [`count_tokens`] (default 256).
    pub max_output_tokens: u64,
    /// Pause between streamed chunks (`/generate/stream`; default none).
    pub stream_chunk_delay: std::time::Duration,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            max_sentences: 3,
            max_output_tokens: 256,
            stream_chunk_delay: std::time::Duration::ZERO,
        }
    }
}

/// Why generation stopped, in the vocabulary hosted chat APIs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FinishReason {
    /// The answer is complete.
    Stop,
    /// The answer was cut at `max_output_tokens`.
    Length,
}

impl FinishReason {
    /// `"stop"` or `"length"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

impl fmt::Display for FinishReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one [`generate`] call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    pub answer: String,
    /// `count_tokens(&prompt_text(query, contexts))`.
    pub input_tokens: u64,
    /// `count_tokens(&answer)`.
    pub output_tokens: u64,
    pub finish_reason: FinishReason,
    /// Ids of the contexts cited in `answer`, in citation order, without
    /// duplicates. Empty for the no-answer reply.
    pub cited: Vec<String>,
}

/// The prompt the offline generator conceptually reads: an instruction line,
/// the contexts numbered from 1 as `[n] (source) text`, then the question.
/// `input_tokens` is the token count of this text.
pub fn prompt_text(query: &str, contexts: &[Passage]) -> String {
    let mut prompt = String::new();
    prompt.push_str(SYSTEM_INSTRUCTION);
    prompt.push_str("\n\n");
    if contexts.is_empty() {
        prompt.push_str("(no contexts were retrieved)\n");
    }
    for (i, ctx) in contexts.iter().enumerate() {
        prompt.push_str(&format!(
            "[{}] ({}) {}\n",
            i + 1,
            ctx.source,
            ctx.text.trim()
        ));
    }
    prompt.push_str("\nQuestion: ");
    prompt.push_str(query.trim());
    prompt
}

/// Compose a grounded, cited answer to `query` from `contexts` (best first,
/// as retrieval returned them). See the module docs for the algorithm.
pub fn generate(query: &str, contexts: &[Passage], cfg: &GeneratorConfig) -> Generation {
    let input_tokens = count_tokens(&prompt_text(query, contexts));
    let (answer, markers) = compose(query, contexts, cfg.max_sentences.max(1));
    let (answer, finish_reason) = truncate(answer, cfg.max_output_tokens);

    // Only citations whose marker survived truncation count as cited.
    let mut cited: Vec<String> = Vec::new();
    for (ctx_index, marker_end) in markers {
        let id = &contexts[ctx_index].id;
        if marker_end <= answer.len() && !cited.contains(id) {
            cited.push(id.clone());
        }
    }

    Generation {
        output_tokens: count_tokens(&answer),
        answer,
        input_tokens,
        finish_reason,
        cited,
    }
}

/// A candidate sentence with where it came from.
struct Sentence {
    ctx_index: usize,
    position: usize,
    text: String,
    terms: BTreeSet<String>,
}

/// Build the untruncated answer. Also returns, for each citation marker in
/// it, the context index it cites and the byte offset just past the marker.
fn compose(
    query: &str,
    contexts: &[Passage],
    max_sentences: usize,
) -> (String, Vec<(usize, usize)>) {
    let query_terms = terms(query);
    if query_terms.is_empty() || contexts.is_empty() {
        return (NO_ANSWER.to_owned(), Vec::new());
    }

    let sentences: Vec<Sentence> = contexts
        .iter()
        .enumerate()
        .flat_map(|(ctx_index, ctx)| {
            split_sentences(&ctx.text)
                .into_iter()
                .enumerate()
                .map(move |(position, text)| Sentence {
                    ctx_index,
                    position,
                    terms: terms(&text),
                    text,
                })
        })
        .collect();

    // idf-like weight per query term, over all candidate sentences.
    let n = sentences.len() as f64;
    let weights: Vec<(&String, f64)> = query_terms
        .iter()
        .map(|term| {
            let df = sentences.iter().filter(|s| s.terms.contains(term)).count() as f64;
            (term, 1.0 + (n / (1.0 + df)).ln())
        })
        .collect();

    let mut scored: Vec<(f64, &Sentence)> = sentences
        .iter()
        .filter_map(|s| {
            let overlap: f64 = weights
                .iter()
                .filter(|(term, _)| s.terms.contains(*term))
                .map(|(_, w)| w)
                .sum();
            // A question in the source text restates the query; it answers
            // nothing, so it is never quoted.
            if overlap <= 0.0 || s.text.trim_end().ends_with('?') {
                return None;
            }
            let retrieval = f64::from(contexts[s.ctx_index].score);
            let retrieval = if retrieval.is_finite() {
                retrieval
            } else {
                0.0
            };
            let position = 0.05 / (1.0 + s.position as f64);
            Some((overlap + 0.1 * retrieval + position, s))
        })
        .collect();
    if scored.is_empty() {
        return (NO_ANSWER.to_owned(), Vec::new());
    }

    // Best first; ties go to the earlier sentence in document order.
    scored.sort_by(|(sa, a), (sb, b)| {
        sb.total_cmp(sa)
            .then(a.ctx_index.cmp(&b.ctx_index))
            .then(a.position.cmp(&b.position))
    });
    let mut picked: Vec<&Sentence> = Vec::new();
    for (_, s) in scored {
        if picked.len() == max_sentences {
            break;
        }
        if !picked.iter().any(|p| p.text == s.text) {
            picked.push(s);
        }
    }
    picked.sort_by_key(|s| (s.ctx_index, s.position));

    let mut answer = String::new();
    let mut markers = Vec::new();
    for s in &picked {
        if !answer.is_empty() {
            answer.push(' ');
        }
        answer.push_str(&s.text);
        answer.push_str(&format!(" [{}]", s.ctx_index + 1));
        markers.push((s.ctx_index, answer.len()));
    }

    let cited: BTreeSet<usize> = picked.iter().map(|s| s.ctx_index).collect();
    let sources: Vec<String> = cited
        .iter()
        .map(|&i| format!("[{}] {}", i + 1, contexts[i].source))
        .collect();
    answer.push_str("\n\nSources: ");
    answer.push_str(&sources.join(", "));
    (answer, markers)
}

/// Cut `answer` to at most `max_tokens` tokens, at a piece boundary.
fn truncate(answer: String, max_tokens: u64) -> (String, FinishReason) {
    if count_tokens(&answer) <= max_tokens {
        return (answer, FinishReason::Stop);
    }
    let all = pieces(&answer);
    let mut keep = usize::try_from(max_tokens)
        .unwrap_or(usize::MAX)
        .min(all.len());
    loop {
        // Re-counting a prefix can differ from counting its pieces inside the
        // whole text (the whitespace rule looks ahead), so check it.
        let cut = all[..keep].concat();
        let cut = cut.trim_end();
        if count_tokens(cut) <= max_tokens {
            return (cut.to_owned(), FinishReason::Length);
        }
        keep -= 1;
    }
}

/// Split a context into sentences; see step 1 of the module docs.
fn split_sentences(text: &str) -> Vec<String> {
    let mut blocks: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut flush = |current: &mut String| {
        if !current.is_empty() {
            blocks.push(std::mem::take(current));
        }
    };
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || !line.chars().any(char::is_alphanumeric) {
            // Blank line, heading, rule (`---`) or fence: a block boundary.
            flush(&mut current);
        } else if let Some(item) = strip_bullet(line) {
            flush(&mut current);
            current.push_str(item);
        } else {
            if !current.is_empty() {
                current.push(' ');
            }
            current.push_str(line);
        }
    }
    flush(&mut current);

    let mut sentences = Vec::new();
    for block in &blocks {
        let mut start = 0;
        let mut chars = block.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let ends = matches!(c, '.' | '?' | '!')
                && chars.peek().is_some_and(|&(_, next)| next.is_whitespace());
            if ends {
                let end = i + c.len_utf8();
                push_sentence(&mut sentences, &block[start..end]);
                start = end;
            }
        }
        push_sentence(&mut sentences, &block[start..]);
    }
    sentences
}

/// Add `raw` with its whitespace collapsed, unless it has no words at all.
fn push_sentence(out: &mut Vec<String>, raw: &str) {
    let sentence = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if sentence.chars().any(char::is_alphanumeric) {
        out.push(sentence);
    }
}

/// The text of a markdown list item (`- x`, `* x`, `+ x`, `1. x`, `1) x`).
fn strip_bullet(line: &str) -> Option<&str> {
    if let Some(rest) = line
        .strip_prefix("- ")
        .or_else(|| line.strip_prefix("* "))
        .or_else(|| line.strip_prefix("+ "))
    {
        return Some(rest.trim_start());
    }
    let digits = line.len() - line.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 {
        return None;
    }
    line[digits..]
        .strip_prefix(". ")
        .or_else(|| line[digits..].strip_prefix(") "))
        .map(str::trim_start)
}

/// The distinct normalised terms of `text`; see step 2 of the module docs.
fn terms(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() > 1 && !STOP_WORDS.contains(&w.as_str()))
        .map(|mut w| {
            if w.chars().count() > 3 && w.ends_with('s') && !w.ends_with("ss") {
                w.pop();
            }
            w
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(id: &str, source: &str, text: &str, score: f32) -> Passage {
        Passage {
            id: id.to_owned(),
            source: source.to_owned(),
            text: text.to_owned(),
            score,
        }
    }

    fn corpus() -> Vec<Passage> {
        vec![
            ctx(
                "tracing.md#0",
                "tracing.md",
                "Distributed tracing follows a request across services. \
                 Each service records spans, and spans share one trace id. \
                 The weather in the examples is always sunny.",
                0.82,
            ),
            ctx(
                "sampling.md#2",
                "sampling.md",
                "Tail sampling decides whether to keep a trace after it completes! \
                 Head sampling decides at the root span. Both reduce storage cost.",
                0.64,
            ),
            ctx(
                "cooking.md#1",
                "cooking.md",
                "Bread needs flour, water and salt. Let the dough rise overnight.",
                0.11,
            ),
        ]
    }

    #[test]
    fn grounded_answer_quotes_and_cites_the_relevant_context() {
        let contexts = corpus();
        let g = generate(
            "How does tail sampling decide which traces to keep?",
            &contexts,
            &GeneratorConfig::default(),
        );
        assert_eq!(g.finish_reason, FinishReason::Stop);
        assert!(
            g.answer
                .contains("Tail sampling decides whether to keep a trace after it completes! [2]"),
            "{}",
            g.answer
        );
        assert!(g.answer.contains("sampling.md"), "{}", g.answer);
        assert!(g.answer.contains("\n\nSources: ") && g.answer.contains("[2] sampling.md"));
        assert!(g.cited.contains(&"sampling.md#2".to_owned()));
        // Nothing about bread.
        assert!(!g.answer.contains("flour"), "{}", g.answer);
        assert!(!g.cited.contains(&"cooking.md#1".to_owned()));
    }

    #[test]
    fn answer_format_and_sources_line() {
        let contexts = corpus();
        let g = generate("What are spans?", &contexts, &GeneratorConfig::default());
        assert_eq!(
            g.answer,
            "Each service records spans, and spans share one trace id. [1] \
             Head sampling decides at the root span. [2]\n\n\
             Sources: [1] tracing.md, [2] sampling.md"
        );
        assert_eq!(g.cited, ["tracing.md#0", "sampling.md#2"]);
    }

    #[test]
    fn irrelevant_query_gives_honest_fallback() {
        let contexts = corpus();
        let g = generate(
            "Who won the chess olympiad?",
            &contexts,
            &GeneratorConfig::default(),
        );
        assert_eq!(g.answer, NO_ANSWER);
        assert_eq!(g.finish_reason, FinishReason::Stop);
        assert!(g.cited.is_empty());
        assert_eq!(g.output_tokens, count_tokens(NO_ANSWER));
    }

    #[test]
    fn stop_word_only_query_gives_fallback() {
        let g = generate("what is it?", &corpus(), &GeneratorConfig::default());
        assert_eq!(g.answer, NO_ANSWER);
        assert!(g.cited.is_empty());
    }

    #[test]
    fn empty_contexts_give_fallback() {
        let g = generate("What is tracing?", &[], &GeneratorConfig::default());
        assert_eq!(g.answer, NO_ANSWER);
        assert_eq!(g.finish_reason, FinishReason::Stop);
        assert!(g.cited.is_empty());
        assert_eq!(
            g.input_tokens,
            count_tokens(&prompt_text("What is tracing?", &[]))
        );
        assert!(g.input_tokens > 0);
    }

    #[test]
    fn deterministic() {
        let contexts = corpus();
        let cfg = GeneratorConfig::default();
        let first = generate("sampling spans trace storage", &contexts, &cfg);
        for _ in 0..20 {
            assert_eq!(
                generate("sampling spans trace storage", &contexts, &cfg),
                first
            );
        }
    }

    #[test]
    fn token_counts_match_count_tokens() {
        let contexts = corpus();
        let query = "What is distributed tracing?";
        let g = generate(query, &contexts, &GeneratorConfig::default());
        assert_eq!(g.input_tokens, count_tokens(&prompt_text(query, &contexts)));
        assert_eq!(g.output_tokens, count_tokens(&g.answer));
        assert!(g.input_tokens > 0);
        assert!(g.output_tokens > 0);
        assert!(g.input_tokens > g.output_tokens);
    }

    #[test]
    fn prompt_text_layout() {
        let contexts = corpus();
        let prompt = prompt_text("  What is tracing?  ", &contexts[..2]);
        let lines: Vec<&str> = prompt.lines().collect();
        assert_eq!(lines[0], SYSTEM_INSTRUCTION);
        assert!(lines[2].starts_with("[1] (tracing.md) Distributed tracing"));
        assert!(lines[3].starts_with("[2] (sampling.md) Tail sampling"));
        assert_eq!(*lines.last().unwrap(), "Question: What is tracing?");
    }

    #[test]
    fn truncation_reports_length_and_respects_cap() {
        let contexts = corpus();
        let query = "sampling spans trace";
        let full = generate(query, &contexts, &GeneratorConfig::default());
        assert_eq!(full.finish_reason, FinishReason::Stop);
        for cap in [0, 1, 5, 12, 20, full.output_tokens - 1] {
            let cfg = GeneratorConfig {
                max_output_tokens: cap,
                ..GeneratorConfig::default()
            };
            let g = generate(query, &contexts, &cfg);
            assert_eq!(g.finish_reason, FinishReason::Length, "cap {cap}");
            assert!(g.output_tokens <= cap, "cap {cap}: {}", g.output_tokens);
            assert_eq!(g.output_tokens, count_tokens(&g.answer));
            assert!(full.answer.starts_with(&g.answer), "cap {cap}");
            // Cited only if the marker made it into the cut answer.
            for id in &g.cited {
                let n = contexts.iter().position(|c| &c.id == id).unwrap() + 1;
                assert!(g.answer.contains(&format!("[{n}]")), "cap {cap}");
            }
        }
        let exact = GeneratorConfig {
            max_output_tokens: full.output_tokens,
            ..GeneratorConfig::default()
        };
        assert_eq!(generate(query, &contexts, &exact), full);
    }

    #[test]
    fn truncation_drops_citations_that_were_cut() {
        let contexts = corpus();
        let g = generate(
            "What are spans?",
            &contexts,
            &GeneratorConfig {
                max_output_tokens: 15,
                ..GeneratorConfig::default()
            },
        );
        assert_eq!(g.finish_reason, FinishReason::Length);
        assert_eq!(g.cited, ["tracing.md#0"], "{}", g.answer);
    }

    #[test]
    fn citations_only_reference_existing_contexts() {
        let contexts = corpus();
        for query in [
            "tracing",
            "sampling storage cost",
            "dough rise flour",
            "trace id spans service",
            "weather",
        ] {
            let g = generate(query, &contexts, &GeneratorConfig::default());
            assert!(!g.cited.is_empty(), "{query}");
            for id in &g.cited {
                assert!(contexts.iter().any(|c| &c.id == id), "{query}: {id}");
            }
            // Every [n] marker in the answer names a context in range.
            for (start, _) in g.answer.match_indices('[') {
                let rest = &g.answer[start + 1..];
                let n: usize = rest[..rest.find(']').unwrap()].parse().unwrap();
                assert!((1..=contexts.len()).contains(&n), "{query}: [{n}]");
            }
        }
    }

    #[test]
    fn questions_in_the_source_are_never_quoted() {
        let contexts = vec![ctx(
            "a.md#0",
            "a.md",
            "What does the traceparent header contain? The traceparent header contains four fields.",
            0.9,
        )];
        let g = generate(
            "What does the traceparent header contain?",
            &contexts,
            &GeneratorConfig::default(),
        );
        assert!(!g.answer.contains("contain?"), "{}", g.answer);
        assert!(g.answer.contains("contains four fields"), "{}", g.answer);
    }

    #[test]
    fn sentences_are_in_document_order_not_score_order() {
        // The sentence from the second context matches more query terms, so
        // it scores higher; it must still come after the first context's.
        let contexts = vec![
            ctx("a#0", "a.md", "Exporters send spans to a collector.", 0.9),
            ctx(
                "b#0",
                "b.md",
                "Filler first sentence here. The collector batches spans and exporters retry.",
                0.5,
            ),
        ];
        let g = generate(
            "collector batches spans exporters retry",
            &contexts,
            &GeneratorConfig::default(),
        );
        assert_eq!(
            g.answer,
            "Exporters send spans to a collector. [1] \
             The collector batches spans and exporters retry. [2]\n\n\
             Sources: [1] a.md, [2] b.md"
        );
        assert_eq!(g.cited, ["a#0", "b#0"]);
    }

    #[test]
    fn max_sentences_keeps_the_best() {
        let contexts = corpus();
        let cfg = GeneratorConfig {
            max_sentences: 1,
            ..GeneratorConfig::default()
        };
        let g = generate("tail sampling keep trace", &contexts, &cfg);
        assert_eq!(
            g.answer,
            "Tail sampling decides whether to keep a trace after it completes! [2]\n\n\
             Sources: [2] sampling.md"
        );
        assert_eq!(g.cited, ["sampling.md#2"]);
    }

    #[test]
    fn duplicate_sentences_from_overlapping_chunks_are_quoted_once() {
        let text = "Baggage carries the user id to every hop.";
        let contexts = vec![
            ctx("a#0", "a.md", text, 0.9),
            ctx("a#1", "a.md", &format!("{text} It is a W3C header."), 0.8),
        ];
        let g = generate("baggage user id", &contexts, &GeneratorConfig::default());
        assert_eq!(
            g.answer.matches("Baggage carries").count(),
            1,
            "{}",
            g.answer
        );
        assert_eq!(g.cited, ["a#0"]);
    }

    #[test]
    fn sentence_splitting() {
        assert_eq!(
            split_sentences("One two. Three?  Four!\nstill four.Five 3.14 six"),
            ["One two.", "Three?", "Four!", "still four.Five 3.14 six"]
        );
        assert_eq!(
            split_sentences(
                "# Title\nFirst line\nwraps here.\n\nNew paragraph\n- item one\n- item two\n1. step\n---"
            ),
            [
                "First line wraps here.",
                "New paragraph",
                "item one",
                "item two",
                "step"
            ]
        );
        assert!(split_sentences("").is_empty());
    }

    #[test]
    fn term_normalisation() {
        let t = terms("What does the Collector's process do with SPANS, traces and 42 bus?");
        let t: Vec<&str> = t.iter().map(String::as_str).collect();
        assert_eq!(t, ["42", "bus", "collector", "process", "span", "trace"]);
    }

    #[test]
    fn finish_reason_strings() {
        assert_eq!(FinishReason::Stop.as_str(), "stop");
        assert_eq!(FinishReason::Length.as_str(), "length");
        assert_eq!(FinishReason::Length.to_string(), "length");
    }

    #[test]
    fn model_name_is_honest() {
        assert_eq!(MODEL_NAME, "ragtrace-extractive-v1");
    }
}
