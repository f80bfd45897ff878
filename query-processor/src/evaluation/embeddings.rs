//! Vectors for the groundedness and citation evaluators, from the embedder
//! retrieval searched with, so "similar" means here what it meant there.
//!
//! Retrieval names its embedder in every response. The built-in hashing
//! model is a pure function that lives in `shared`: it runs here, in
//! process, bit for bit the same, for a few microseconds and no hop. Any
//! other embedder (a remote model) is asked through retrieval's
//! `POST /embed`, one call for all texts, which traces like every hop.
//! A passage's sentences are embedded once and kept ([`PassageVectors`]);
//! the answer's are embedded every time.

use shared::client::Downstream;
use shared::hashing::HashingEmbedder;
use shared::http::downstream_error::DownstreamError;
use shared::wire::{EmbedRequest, EmbedResponse, MAX_EMBED_TEXTS, Passage};
use std::sync::Arc;

use super::passage_vectors::{PassageVectors, SentenceVectors, SparseVector};
use super::scores::{Sentence, sentences};

/// Where the evaluators' vectors come from, for one answer: the embedder
/// retrieval named, and how to run it.
pub struct Vectors<'a> {
    embedder: &'a str,
    source: Source<'a>,
}

enum Source<'a> {
    InProcess(HashingEmbedder),
    Retrieval {
        client: &'a awc::Client,
        retrieval: &'a Downstream,
    },
}

impl<'a> Vectors<'a> {
    /// For the embedder retrieval reported (`RetrieveResponse::embedder`).
    pub fn for_embedder(
        embedder: &'a str,
        client: &'a awc::Client,
        retrieval: &'a Downstream,
    ) -> Self {
        let source = match hashing_dimension(embedder) {
            Some(dimension) => Source::InProcess(HashingEmbedder::new(dimension)),
            None => Source::Retrieval { client, retrieval },
        };
        Self { embedder, source }
    }

    /// One unit vector per text, in order (so a cosine is a dot product).
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, DownstreamError> {
        let mut vectors = self.embed_raw(texts).await?;
        vectors.iter_mut().for_each(|v| normalize(v));
        Ok(vectors)
    }

    async fn embed_raw(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, DownstreamError> {
        match &self.source {
            Source::InProcess(hashing) => Ok(texts.iter().map(|t| hashing.embed(t)).collect()),
            Source::Retrieval { client, retrieval } => {
                let mut vectors = Vec::with_capacity(texts.len());
                for batch in texts.chunks(MAX_EMBED_TEXTS) {
                    let request = EmbedRequest {
                        texts: batch.to_vec(),
                    };
                    let response: EmbedResponse =
                        retrieval.post_json(client, "/embed", &request).await?;
                    vectors.extend(response.vectors);
                }
                Ok(vectors)
            }
        }
    }
}

impl Vectors<'_> {
    /// `similarity[s][p]`: how far passage `p` says what the `s`-th statement
    /// of the answer (source lists left out) says: the best cosine between the
    /// statement and one of the passage's sentences. (A sentence against a whole
    /// passage scores low however exactly the passage says it.)
    pub async fn similarities(
        &self,
        sentences: &[Sentence],
        contexts: &[Passage],
        kept: &PassageVectors,
    ) -> Result<Vec<Vec<f32>>, DownstreamError> {
        let statements = statements(sentences);
        if statements.is_empty() || contexts.is_empty() {
            return Ok(vec![vec![0.0; contexts.len()]; statements.len()]);
        }
        // Every statement, then every sentence of the passages not kept
        // yet, in one call.
        let mut texts = statements;
        let answered = texts.len();
        let mut passages: Vec<Option<SentenceVectors>> = Vec::with_capacity(contexts.len());
        let mut missing = Vec::new();
        for passage in contexts {
            let found = kept.get(self.embedder, &passage.text);
            if found.is_none() {
                let statements = statements_of(&passage.text);
                missing.push((passages.len(), statements.len()));
                texts.extend(statements);
            }
            passages.push(found);
        }
        let mut embedded = self.embed(&texts).await?.into_iter();
        let answer_vectors: Vec<Vec<f32>> = embedded.by_ref().take(answered).collect();
        for (p, count) in missing {
            let vectors = Arc::new(embedded.by_ref().take(count).map(sparse).collect());
            kept.insert(self.embedder, &contexts[p].text, Arc::clone(&vectors));
            passages[p] = Some(vectors);
        }
        let similarity = answer_vectors
            .iter()
            .map(|a| {
                let best = |sentences: &Vec<SparseVector>| {
                    sentences.iter().map(|v| dot(a, v)).fold(0.0f32, f32::max)
                };
                passages.iter().flatten().map(|p| best(p)).collect()
            })
            .collect();
        Ok(similarity)
    }
}

/// The sentences that state something (not a `Sources:` list).
fn statements(sentences: &[Sentence]) -> Vec<String> {
    sentences
        .iter()
        .filter(|s| s.is_statement())
        .map(|s| s.text.clone())
        .collect()
}

fn statements_of(passage: &str) -> Vec<String> {
    statements(&sentences(passage))
}

/// `a · b`, `b` given by its non-zero components.
fn dot(a: &[f32], b: &[(u32, f32)]) -> f32 {
    b.iter().map(|&(i, x)| a[i as usize] * x).sum()
}

fn sparse(v: Vec<f32>) -> SparseVector {
    (0u32..).zip(v).filter(|&(_, x)| x != 0.0).collect()
}

/// Scale to unit length (a zero vector stays zero: its cosine with
/// anything is 0).
fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// `ragtrace-hashing-384` → 384.
fn hashing_dimension(embedder: &str) -> Option<usize> {
    let probe = HashingEmbedder::new(1).model_name();
    let prefix = probe.strip_suffix('1')?;
    embedder
        .strip_prefix(prefix)?
        .parse()
        .ok()
        .filter(|&d| d > 0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_vector_is_scaled_to_unit_length_and_zero_stays_zero() {
        let mut v = [3.0, 4.0];
        normalize(&mut v);
        assert_eq!(v, [0.6, 0.8]);
        let mut zero = [0.0, 0.0];
        normalize(&mut zero);
        assert_eq!(dot(&zero, &sparse(v.to_vec())), 0.0);
        assert_eq!(sparse(vec![0.0, 0.5, 0.0]), vec![(1, 0.5)]);
        assert!((dot(&v, &sparse(v.to_vec())) - 1.0).abs() < 1e-6);
    }

    /// A passage kept from an earlier answer scores exactly as when it was
    /// embedded for this one.
    #[actix_web::test]
    async fn kept_passages_give_the_same_similarities_as_fresh_ones() {
        let client = awc::Client::default();
        let retrieval = Downstream::new("retrieval", "http://127.0.0.1:9", Duration::from_secs(1))
            .expect("a downstream");
        let vectors = Vectors::for_embedder("ragtrace-hashing-384", &client, &retrieval);
        let passage = |id: &str, text: &str| Passage {
            id: id.into(),
            source: id.into(),
            text: text.into(),
            score: 0.5,
        };
        let contexts = [
            passage(
                "a",
                "The traceparent header carries the trace id. It has four fields.",
            ),
            passage("b", "Baggage carries key-value pairs across services."),
        ];
        let answer =
            sentences("The traceparent header carries the trace id [1]. Baggage is unrelated.");
        let kept = PassageVectors::default();
        let fresh = vectors
            .similarities(&answer, &contexts, &kept)
            .await
            .unwrap();
        assert_eq!(kept.len(), 2);
        let again = vectors
            .similarities(&answer, &contexts, &kept)
            .await
            .unwrap();
        assert_eq!(fresh, again);
        assert!(fresh[0][0] > 0.9 && fresh[0][0] > fresh[0][1], "{fresh:?}");
    }

    #[test]
    fn the_hashing_model_is_recognised_by_its_name() {
        assert_eq!(hashing_dimension("ragtrace-hashing-384"), Some(384));
        assert_eq!(hashing_dimension("ragtrace-hashing-0"), None);
        assert_eq!(hashing_dimension("text-embedding-3-small"), None);
    }
}
