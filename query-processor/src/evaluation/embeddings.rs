//! Vectors for the groundedness and citation evaluators, from the embedder
//! retrieval searched with, so "similar" means here what it meant there.
//!
//! Retrieval names its embedder in every response. The built-in hashing
//! model is a pure function that lives in `shared`: it runs here, in
//! process, bit for bit the same, for a few microseconds and no hop. Any
//! other embedder (a remote model) is asked through retrieval's
//! `POST /embed`, one call for all texts, which traces like every hop.

use shared::client::Downstream;
use shared::hashing::HashingEmbedder;
use shared::http::downstream_error::DownstreamError;
use shared::wire::{EmbedRequest, EmbedResponse, MAX_EMBED_TEXTS, Passage};

use super::scores::{Sentence, cosine, sentences};

/// Where the evaluators' vectors come from, for one answer.
pub enum Vectors<'a> {
    InProcess(HashingEmbedder),
    Retrieval {
        client: &'a awc::Client,
        retrieval: &'a Downstream,
    },
}

impl<'a> Vectors<'a> {
    /// For the embedder retrieval reported (`RetrieveResponse::embedder`).
    pub fn for_embedder(
        embedder: &str,
        client: &'a awc::Client,
        retrieval: &'a Downstream,
    ) -> Self {
        match hashing_dimension(embedder) {
            Some(dimension) => Self::InProcess(HashingEmbedder::new(dimension)),
            None => Self::Retrieval { client, retrieval },
        }
    }

    /// One vector per text, in order.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, DownstreamError> {
        match self {
            Self::InProcess(hashing) => Ok(texts.iter().map(|t| hashing.embed(t)).collect()),
            Self::Retrieval { client, retrieval } => {
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
    ) -> Result<Vec<Vec<f32>>, DownstreamError> {
        let statements = statements(sentences);
        if statements.is_empty() || contexts.is_empty() {
            return Ok(vec![vec![0.0; contexts.len()]; statements.len()]);
        }
        // Every statement, then every sentence of every passage, in one call.
        let mut texts = statements;
        let answered = texts.len();
        let mut owner = Vec::new();
        for (p, passage) in contexts.iter().enumerate() {
            for sentence in statements_of(&passage.text) {
                texts.push(sentence);
                owner.push(p);
            }
        }
        let embedded = self.embed(&texts).await?;
        let (answer_vectors, passage_vectors) = embedded.split_at(answered);
        let mut similarity = vec![vec![0.0f32; contexts.len()]; answered];
        for (row, a) in similarity.iter_mut().zip(answer_vectors) {
            for (&p, v) in owner.iter().zip(passage_vectors) {
                row[p] = row[p].max(cosine(a, v));
            }
        }
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
    use super::hashing_dimension;

    #[test]
    fn the_hashing_model_is_recognised_by_its_name() {
        assert_eq!(hashing_dimension("ragtrace-hashing-384"), Some(384));
        assert_eq!(hashing_dimension("ragtrace-hashing-0"), None);
        assert_eq!(hashing_dimension("text-embedding-3-small"), None);
    }
}
