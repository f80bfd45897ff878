//! The three default evaluators, as plain functions of the question's
//! passages, the answer and their embeddings: deterministic, and cheap
//! enough to run on every answer.
//!
//! Each returns a [`Score`] in [0, 1] and an explanation made of counts, so
//! nothing of the answer or the passages leaves in it. The thresholds that
//! turn a score into `pass` or `fail` are the `*_THRESHOLD` constants.

use shared::wire::Passage;

/// Citation validity passes only when every citation is valid.
pub const CITATION_VALIDITY_THRESHOLD: f64 = 1.0;
/// Groundedness passes when at least this share of sentences is supported.
pub const GROUNDEDNESS_THRESHOLD: f64 = 0.75;
/// Context relevance passes when at least this share of passages is relevant.
pub const CONTEXT_RELEVANCE_THRESHOLD: f64 = 0.5;

/// A sentence is supported when its cosine similarity with some passage
/// reaches this.
pub const SUPPORTED_SIMILARITY: f32 = 0.5;
/// A citation `[n]` is used when its sentence's similarity with passage `n`
/// reaches this: the sentence says something passage `n` says.
pub const CITED_SIMILARITY: f32 = 0.3;
/// A passage is relevant when its retrieval score (cosine similarity with
/// the question, from retrieval's own embedder) reaches this.
pub const RELEVANT_SIMILARITY: f32 = 0.2;

/// An evaluator's result before it is labelled.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    pub value: f64,
    pub explanation: String,
}

/// One sentence of an answer: its text without citation markers, and the
/// passage numbers it cites (1-based, as written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sentence {
    pub text: String,
    pub citations: Vec<usize>,
    /// A `Sources: [1] a.md, ...` line: it cites, but states nothing.
    pub is_source_list: bool,
}

impl Sentence {
    /// Whether it says something that can be checked against a passage:
    /// not a source list, and more than citation markers.
    pub fn is_statement(&self) -> bool {
        !self.is_source_list && !self.text.is_empty()
    }
}

/// The answer's sentences: split after `.`, `!` or `?` followed by
/// whitespace (the `[n]` markers right after the stop still belong to the
/// sentence before it), and at line breaks. Empty pieces are dropped.
pub fn sentences(answer: &str) -> Vec<Sentence> {
    let mut out = Vec::new();
    for line in answer.lines() {
        let is_source_list = line.trim_start().starts_with("Sources:");
        let mut start = 0;
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() && !is_source_list {
            let ends = matches!(bytes[i], b'.' | b'!' | b'?')
                && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace());
            if ends {
                let end = i + 1 + trailing_markers(&line[i + 1..]);
                push(&mut out, &line[start..end], false);
                start = end;
                i = end;
            } else {
                i += 1;
            }
        }
        push(&mut out, &line[start..], is_source_list);
    }
    out
}

/// The length of the whitespace-separated `[n]` markers `rest` starts with.
fn trailing_markers(rest: &str) -> usize {
    let mut taken = 0;
    loop {
        let tail = &rest[taken..];
        let marker = tail.trim_start();
        let skipped = tail.len() - marker.len();
        let close = marker.strip_prefix('[').and_then(|m| {
            let close = m.find(']')?;
            m[..close].parse::<usize>().ok().map(|_| close + 2)
        });
        match close {
            Some(len) => taken += skipped + len,
            None => return taken,
        }
    }
}

fn push(out: &mut Vec<Sentence>, piece: &str, is_source_list: bool) {
    let (text, citations) = strip_citations(piece);
    if !text.trim().is_empty() || !citations.is_empty() {
        out.push(Sentence {
            text: text.trim().to_owned(),
            citations,
            is_source_list,
        });
    }
}

/// `piece` without its `[n]` markers, and the numbers they held.
fn strip_citations(piece: &str) -> (String, Vec<usize>) {
    let mut text = String::with_capacity(piece.len());
    let mut citations = Vec::new();
    let mut rest = piece;
    while let Some(open) = rest.find('[') {
        text.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find(']').map(|close| (close, after[..close].parse())) {
            Some((close, Ok(n))) => {
                citations.push(n);
                rest = &after[close + 1..];
            }
            _ => {
                text.push('[');
                rest = after;
            }
        }
    }
    text.push_str(rest);
    (text, citations)
}

/// **Citation validity**: every `[n]` names a passage that was retrieved
/// (1 ≤ n ≤ passages), and every passage cited in a statement was used by
/// it (the sentence's similarity with passage n reaches
/// [`CITED_SIMILARITY`]). The score is the share of citations that are both.
/// An answer that cites nothing scores 0 if a passage supports one of its
/// statements (it should have cited it), and 1 if none does (a refusal has
/// nothing to cite).
///
/// `similarity[s][p]` is the similarity of the `s`-th statement
/// ([`Sentence::is_statement`], in order) with passage `p`.
pub fn citation_validity(
    sentences: &[Sentence],
    passages: usize,
    similarity: &[Vec<f32>],
) -> Score {
    let (mut total, mut out_of_range, mut unused) = (0, 0, 0);
    let mut statements = similarity.iter();
    for sentence in sentences {
        let row = if sentence.is_statement() {
            statements.next()
        } else {
            None
        };
        for &n in &sentence.citations {
            total += 1;
            if n == 0 || n > passages {
                out_of_range += 1;
            } else if row.is_some_and(|row| row[n - 1] < CITED_SIMILARITY) {
                unused += 1;
            }
        }
    }
    if total == 0 {
        let supported = similarity
            .iter()
            .any(|row| row.iter().any(|&s| s >= SUPPORTED_SIMILARITY));
        let value = if supported { 0.0 } else { 1.0 };
        let explanation = format!(
            "the answer cites none of {passages} passages; {} of its statements is supported",
            if supported { "one" } else { "none" }
        );
        return Score { value, explanation };
    }
    let valid = total - out_of_range - unused;
    Score {
        value: valid as f64 / total as f64,
        explanation: format!(
            "{valid} of {total} citations valid; {out_of_range} name no retrieved passage, \
             {unused} cite a passage their sentence does not use"
        ),
    }
}

/// **Groundedness**: the share of statements whose similarity with some
/// passage reaches [`SUPPORTED_SIMILARITY`]. `similarity` as in
/// [`citation_validity`]. An answer without statements scores 0.
pub fn groundedness(similarity: &[Vec<f32>]) -> Score {
    let supported = similarity
        .iter()
        .filter(|row| row.iter().any(|&s| s >= SUPPORTED_SIMILARITY))
        .count();
    let total = similarity.len();
    Score {
        value: if total == 0 {
            0.0
        } else {
            supported as f64 / total as f64
        },
        explanation: format!("{supported} of {total} sentences supported by a passage"),
    }
}

/// **Context relevance**: the share of passages whose retrieval score
/// reaches [`RELEVANT_SIMILARITY`]. No passages score 0.
pub fn context_relevance(passages: &[Passage]) -> Score {
    let relevant = passages
        .iter()
        .filter(|p| p.score >= RELEVANT_SIMILARITY)
        .count();
    let total = passages.len();
    Score {
        value: if total == 0 {
            0.0
        } else {
            relevant as f64 / total as f64
        },
        explanation: format!("{relevant} of {total} passages relevant to the question"),
    }
}

#[cfg(test)]
mod tests;
