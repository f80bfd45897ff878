//! A deterministic, dependency-free text embedder based on signed feature hashing.
//!
//! # Why not a real model?
//!
//! ragtrace exists to demonstrate distributed tracing across a RAG pipeline, not
//! to win retrieval benchmarks. The retrieval service therefore needs an embedder
//! that starts instantly, needs no network access or model weights, and returns
//! bit-for-bit identical vectors on every run and platform, so that traces and
//! tests are reproducible. The embedder says exactly what it is through
//! [`HashingEmbedder::model_name`] (`ragtrace-hashing-<dim>`); it never claims to be
//! a hosted model.
//!
//! # Algorithm
//!
//! 1. **Normalise** ([`tokens`]): Unicode-lowercase the text, split on every
//!    non-alphanumeric character, drop a small English stop-word list and apply
//!    a light plural stemmer (a trailing `s` is removed from tokens longer than
//!    three characters unless they end in `ss`), so `headers` matches `header`
//!    while `process` is left alone.
//! 2. **Features**: every kept token (weight 1.0) plus every bigram of
//!    consecutive kept tokens (weight [`BIGRAM_WEIGHT`]). Bigrams add a little
//!    word-order signal, so "trace context" and "context trace" differ slightly.
//! 3. **Term frequency** is dampened sublinearly (`1 + ln tf`), so a word repeated
//!    ten times does not drown out the rest of the passage.
//! 4. **Hashing**: each feature is hashed with FNV-1a 64 (implemented here, never
//!    `std`'s randomly seeded `RandomState`) followed by the murmur3 `fmix64`
//!    finaliser, because raw FNV-1a mixes its low bits poorly for short keys and
//!    we take the bucket from `hash % dimension`. The top bit of the same hash
//!    picks the sign: with signed hashing, colliding features cancel on average
//!    instead of always inflating each other, so inner products stay unbiased.
//! 5. **L2 normalisation**, so cosine similarity is a plain dot product.
//!
//! Text without any kept token (empty, punctuation, or stop words only) embeds
//! to the all-zero vector. It cannot be normalised; its cosine similarity with
//! anything is defined as 0, which is how retrieval's in-memory index scores it.
//!
//! Determinism: features are ordered by hash before being accumulated (in `f64`),
//! so the floating-point summation order, and therefore every output bit, is
//! independent of input order, hash-map iteration, and platform.

/// Weight of a bigram feature relative to a unigram.
pub const BIGRAM_WEIGHT: f64 = 0.5;

/// Words that carry almost no topical signal in the short questions and
/// passages this service handles. Kept small on purpose: an aggressive list
/// would also discard words such as `not` that matter to a reader.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "for", "from", "how",
    "i", "in", "is", "it", "its", "of", "on", "or", "s", "t", "that", "the", "this", "to", "was",
    "what", "with",
];

/// Separator hashed between the two words of a bigram. `0xFF` never occurs in
/// UTF-8, so a bigram can never hash the same byte string as a unigram.
const BIGRAM_SEPARATOR: u8 = 0xFF;

/// A feature-hashing embedder producing L2-normalised vectors of a fixed dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashingEmbedder {
    dimension: usize,
}

impl HashingEmbedder {
    /// Dimension used by the retrieval service unless configured otherwise.
    pub const DEFAULT_DIMENSION: usize = 384;

    /// Creates an embedder producing vectors with `dimension` components.
    ///
    /// # Panics
    ///
    /// Panics if `dimension` is 0: features could not be assigned to any bucket.
    pub fn new(dimension: usize) -> Self {
        assert!(dimension > 0, "embedding dimension must be at least 1");
        Self { dimension }
    }

    /// Number of components of every vector returned by [`Self::embed`].
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Identifier reported in responses and traces, e.g. `ragtrace-hashing-384`.
    pub fn model_name(&self) -> String {
        format!("ragtrace-hashing-{}", self.dimension)
    }

    /// Embeds `text` into an L2-normalised vector of [`Self::dimension`] components.
    ///
    /// Returns the all-zero vector when `text` has no kept token.
    pub fn embed(&self, text: &str) -> Vec<f32> {
        let tokens = tokens(text);

        let mut features: Vec<(u64, f64)> = Vec::with_capacity(tokens.len() * 2);
        features.extend(tokens.iter().map(|t| (feature_hash(&[t.as_bytes()]), 1.0)));
        features.extend(tokens.windows(2).map(|pair| {
            let hash = feature_hash(&[pair[0].as_bytes(), &[BIGRAM_SEPARATOR], pair[1].as_bytes()]);
            (hash, BIGRAM_WEIGHT)
        }));
        features.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));

        let mut accumulator = vec![0.0_f64; self.dimension];
        for run in features.chunk_by(|a, b| a == b) {
            let (hash, weight) = run[0];
            let tf_weight = weight * (1.0 + (run.len() as f64).ln());
            let bucket = (hash % self.dimension as u64) as usize;
            let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
            accumulator[bucket] += sign * tf_weight;
        }

        let norm = accumulator.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            return vec![0.0; self.dimension];
        }
        accumulator.iter().map(|x| (x / norm) as f32).collect()
    }
}

impl Default for HashingEmbedder {
    fn default() -> Self {
        Self::new(Self::DEFAULT_DIMENSION)
    }
}

/// The normalised tokens of `text`, in order: lowercased, split on
/// non-alphanumeric characters, stop words removed, light plural stemming applied.
///
/// This is exactly what [`HashingEmbedder::embed`] hashes, so callers can reuse it
/// for keyword highlighting or debugging retrieval results.
pub fn tokens(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty() && !STOP_WORDS.contains(t))
        .map(stem)
        .collect()
}

fn stem(token: &str) -> String {
    if token.chars().count() > 3 && token.ends_with('s') && !token.ends_with("ss") {
        token[..token.len() - 1].to_owned()
    } else {
        token.to_owned()
    }
}

/// FNV-1a 64 over the concatenated `parts`, finished with murmur3's `fmix64`.
fn feature_hash(parts: &[&[u8]]) -> u64 {
    const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

    let mut hash = FNV_OFFSET_BASIS;
    for &byte in parts.iter().flat_map(|part| part.iter()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    fmix64(hash)
}

fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn norm(v: &[f32]) -> f32 {
        v.iter().map(|x| x * x).sum::<f32>().sqrt()
    }

    #[test]
    fn fnv1a_matches_reference_vectors() {
        // Published FNV-1a 64 test vectors, checked before the finaliser.
        fn fnv(bytes: &[u8]) -> u64 {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            h
        }
        assert_eq!(fnv(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv(b"foobar"), 0x8594_4171_f739_67e8);
        assert_eq!(feature_hash(&[b"foobar"]), fmix64(0x8594_4171_f739_67e8));
        assert_eq!(feature_hash(&[b"foo", b"bar"]), feature_hash(&[b"foobar"]));
    }

    #[test]
    fn embedding_is_deterministic_and_pinned() {
        let embedder = HashingEmbedder::default();
        let text = "How does the gateway propagate the traceparent header?";
        let a = embedder.embed(text);
        let b = HashingEmbedder::new(384).embed(text);
        assert_eq!(a, b);
        assert_eq!(a.len(), 384);

        // Pin the exact hashing scheme: a single token lands in one bucket with
        // a fixed sign. A change here silently invalidates persisted vectors.
        let single = HashingEmbedder::new(16).embed("gateway");
        let hash = feature_hash(&[b"gateway"]);
        let bucket = (hash % 16) as usize;
        let expected = if hash >> 63 == 0 { 1.0 } else { -1.0 };
        assert_eq!(single[bucket], expected);
        assert_eq!(single.iter().filter(|x| **x != 0.0).count(), 1);
    }

    #[test]
    fn embeddings_are_unit_length() {
        let embedder = HashingEmbedder::new(64);
        for text in [
            "trace",
            "spans spans spans spans",
            "OpenTelemetry exports spans over OTLP to the collector",
        ] {
            let v = embedder.embed(text);
            assert!((norm(&v) - 1.0).abs() < 1e-5, "{text}: norm {}", norm(&v));
        }
    }

    #[test]
    fn text_without_kept_tokens_embeds_to_zero() {
        let embedder = HashingEmbedder::new(32);
        for text in [
            "",
            "   \n\t",
            "?!... --",
            "What is the",
            "how does it do that",
        ] {
            assert_eq!(embedder.embed(text), vec![0.0; 32], "{text:?}");
        }
    }

    #[test]
    fn related_texts_score_higher_than_unrelated_ones() {
        let embedder = HashingEmbedder::default();
        let query = embedder.embed("How is the traceparent header propagated between services?");
        let related = embedder.embed(
            "The gateway injects a traceparent header so the trace context is propagated \
             to downstream services.",
        );
        let unrelated =
            embedder.embed("Chunks are packed from paragraphs up to a maximum word count.");
        let (r, u) = (cosine(&query, &related), cosine(&query, &unrelated));
        assert!(r > 0.3, "related score {r}");
        assert!(r > u + 0.2, "related {r} vs unrelated {u}");
    }

    #[test]
    fn plural_and_case_variants_match() {
        let embedder = HashingEmbedder::default();
        assert_eq!(embedder.embed("headers"), embedder.embed("Header"));
        assert_eq!(
            embedder.embed("HTTP Headers"),
            embedder.embed("http header")
        );
        assert!(
            cosine(
                &embedder.embed("span headers"),
                &embedder.embed("the header")
            ) > 0.5
        );
    }

    #[test]
    fn bigrams_add_word_order_signal() {
        let embedder = HashingEmbedder::default();
        let a = embedder.embed("trace context");
        let b = embedder.embed("context trace");
        let score = cosine(&a, &b);
        assert!(score < 0.99 && score > 0.5, "score {score}");
    }

    #[test]
    fn tokens_normalise_text() {
        assert_eq!(
            tokens("What does the Collector's OTLP-exporter do with 2 Spans?"),
            ["collector", "otlp", "exporter", "2", "span"]
        );
        assert_eq!(
            tokens("process class bus Größe ÉTATS"),
            ["process", "class", "bus", "größe", "état"]
        );
        assert!(tokens("the a an of to is").is_empty());
    }

    #[test]
    fn model_name_describes_the_embedder() {
        assert_eq!(
            HashingEmbedder::new(384).model_name(),
            "ragtrace-hashing-384"
        );
        assert_eq!(HashingEmbedder::new(64).dimension(), 64);
        assert_eq!(
            HashingEmbedder::default().dimension(),
            HashingEmbedder::DEFAULT_DIMENSION
        );
    }

    #[test]
    #[should_panic(expected = "at least 1")]
    fn zero_dimension_is_rejected() {
        let _ = HashingEmbedder::new(0);
    }
}
