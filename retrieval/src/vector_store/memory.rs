//! An exact, in-memory cosine-similarity index over [`Chunk`]s.
//!
//! # Why exact brute force?
//!
//! The corpus is a few thousand chunks of 384 dimensions: scoring all of them is
//! about a million multiply-adds, well under a millisecond, and an approximate
//! index (HNSW, IVF) would add build time, tuning knobs and recall loss for no
//! measurable gain. Exact search also makes results reproducible, which matters
//! because ragtrace compares traces of the same query across runs.
//!
//! # Layout and scoring
//!
//! * Vectors are stored **contiguously** (one `Vec<f32>` of `len × dimension`)
//!   rather than one allocation per chunk, so a search is a single linear,
//!   cache- and prefetch-friendly pass. The dot product uses eight independent
//!   accumulators, which lets the compiler vectorise it without fast-math.
//! * Vectors are **L2-normalised on insert** and the query once per search, so
//!   the cosine is a plain dot product. Zero vectors (e.g. the embedding of
//!   stop-word-only text) cannot be normalised; they score exactly 0 against
//!   everything.
//! * **Top-k** is selected with `select_nth_unstable_by` (linear time) and only
//!   the k winners are sorted. The ordering is total: score descending, then
//!   insertion order ascending, so ties always resolve to the earlier chunk and
//!   the result does not depend on the selection algorithm.

use std::cmp::Ordering;

use crate::chunker::Chunk;

/// Why a vector was rejected by [`VectorIndex::insert`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// The vector's length differs from the index dimension.
    #[error("vector has {actual} dimensions, index expects {expected}")]
    DimensionMismatch { expected: usize, actual: usize },
    /// The vector contains NaN or an infinity, which has no meaningful cosine.
    #[error("vector contains a non-finite component")]
    NonFinite,
}

/// One search result: a chunk and its cosine similarity to the query, in `[-1, 1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit<'a> {
    pub chunk: &'a Chunk,
    pub score: f32,
}

/// Chunks with their L2-normalised embeddings, searchable by cosine similarity.
#[derive(Debug, Clone, PartialEq)]
pub struct VectorIndex {
    dimension: usize,
    chunks: Vec<Chunk>,
    /// `chunks.len() * dimension` components; row `i` belongs to `chunks[i]`.
    vectors: Vec<f32>,
}

impl VectorIndex {
    /// Creates an empty index for vectors of `dimension` components.
    pub fn new(dimension: usize) -> Self {
        Self {
            dimension,
            chunks: Vec::new(),
            vectors: Vec::new(),
        }
    }

    /// Creates an empty index with room for `capacity` chunks.
    pub fn with_capacity(dimension: usize, capacity: usize) -> Self {
        Self {
            dimension,
            chunks: Vec::with_capacity(capacity),
            vectors: Vec::with_capacity(capacity.saturating_mul(dimension)),
        }
    }

    /// Adds `chunk` with its embedding. The vector is L2-normalised before it is
    /// stored (a zero vector is stored as is).
    ///
    /// # Errors
    ///
    /// [`IndexError::DimensionMismatch`] if `vector.len() != self.dimension()`,
    /// [`IndexError::NonFinite`] if it contains NaN or an infinity. The index is
    /// unchanged on error.
    pub fn insert(&mut self, chunk: Chunk, mut vector: Vec<f32>) -> Result<(), IndexError> {
        if vector.len() != self.dimension {
            return Err(IndexError::DimensionMismatch {
                expected: self.dimension,
                actual: vector.len(),
            });
        }
        if !vector.iter().all(|x| x.is_finite()) {
            return Err(IndexError::NonFinite);
        }
        normalize(&mut vector);
        self.vectors.extend_from_slice(&vector);
        self.chunks.push(chunk);
        Ok(())
    }

    /// Number of indexed chunks.
    pub fn len(&self) -> usize {
        self.chunks.len()
    }

    /// Whether the index holds no chunk.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// Number of components of every indexed vector.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// The indexed chunks, in insertion order.
    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// Returns the `top_k` chunks most similar to `query`, best first; ties are
    /// broken by insertion order. Returns every chunk if `top_k >= len()` and
    /// nothing if `top_k == 0`.
    ///
    /// A zero or non-finite query scores 0 against every chunk.
    ///
    /// # Panics
    ///
    /// Panics if `query.len() != dimension()`: the query was produced by an
    /// embedder that does not match the index, which is a programming error.
    pub fn search(&self, query: &[f32], top_k: usize) -> Vec<Hit<'_>> {
        assert_eq!(
            query.len(),
            self.dimension,
            "query has {} dimensions, index expects {}",
            query.len(),
            self.dimension
        );
        let k = top_k.min(self.len());
        if k == 0 {
            return Vec::new();
        }

        let mut query = query.to_vec();
        if !query.iter().all(|x| x.is_finite()) {
            query.fill(0.0);
        }
        normalize(&mut query);

        let mut scored: Vec<(f32, usize)> = if self.dimension == 0 {
            (0..self.len()).map(|i| (0.0, i)).collect()
        } else {
            self.vectors
                .chunks_exact(self.dimension)
                .enumerate()
                // `+ 0.0` turns a -0.0 into 0.0 so it ties with other zeros.
                .map(|(i, row)| (dot(row, &query).clamp(-1.0, 1.0) + 0.0, i))
                .collect()
        };

        let ranking = |a: &(f32, usize), b: &(f32, usize)| -> Ordering {
            b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
        };
        if k < scored.len() {
            scored.select_nth_unstable_by(k - 1, ranking);
            scored.truncate(k);
        }
        scored.sort_unstable_by(ranking);

        scored
            .into_iter()
            .map(|(score, i)| Hit {
                chunk: &self.chunks[i],
                score,
            })
            .collect()
    }
}

/// Scales `v` to unit length; leaves a zero vector untouched.
fn normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 && norm.is_finite() {
        for x in v.iter_mut() {
            *x = (f64::from(*x) / norm) as f32;
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut acc = [0.0_f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (ca, cb) in a_chunks.zip(b_chunks) {
        for i in 0..LANES {
            acc[i] += ca[i] * cb[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(n: usize) -> Chunk {
        Chunk {
            id: format!("doc.md#{n}"),
            source: "doc.md".into(),
            title: "Doc".into(),
            text: format!("text {n}"),
        }
    }

    /// Deterministic pseudo-random numbers in [-1, 1) (xorshift64*).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> f32 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
            bits as f32 / (1u64 << 23) as f32 - 1.0
        }

        fn vector(&mut self, dim: usize) -> Vec<f32> {
            (0..dim).map(|_| self.next()).collect()
        }
    }

    fn ids(hits: &[Hit<'_>]) -> Vec<String> {
        hits.iter().map(|h| h.chunk.id.clone()).collect()
    }

    #[test]
    fn top_k_matches_brute_force() {
        let dim = 37; // not a multiple of the dot-product lane count
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut index = VectorIndex::new(dim);
        let mut raw = Vec::new();
        for n in 0..500 {
            let v = rng.vector(dim);
            raw.push(v.clone());
            index.insert(chunk(n), v).unwrap();
        }

        for _ in 0..20 {
            let query = rng.vector(dim);
            let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
            let truth: Vec<f64> = raw
                .iter()
                .map(|v| {
                    let dot: f64 = v.iter().zip(&query).map(|(&a, &b)| f64::from(a * b)).sum();
                    dot / (norm(v) * norm(&query))
                })
                .collect();
            let mut expected: Vec<usize> = (0..truth.len()).collect();
            expected.sort_by(|&a, &b| truth[b].total_cmp(&truth[a]).then(a.cmp(&b)));

            for k in [1, 5, 10, 499, 500] {
                let hits = index.search(&query, k);
                assert_eq!(hits.len(), k);
                for (hit, &want) in hits.iter().zip(&expected) {
                    let got: usize = hit.chunk.id["doc.md#".len()..].parse().unwrap();
                    assert!((f64::from(hit.score) - truth[got]).abs() < 1e-5);
                    // Rounding may only swap results whose exact scores nearly tie.
                    assert!(got == want || (truth[got] - truth[want]).abs() < 1e-5);
                }
                assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
            }
        }
    }

    #[test]
    fn ties_resolve_to_insertion_order() {
        let mut index = VectorIndex::new(2);
        index.insert(chunk(0), vec![0.0, 1.0]).unwrap();
        index.insert(chunk(1), vec![2.0, 0.0]).unwrap();
        index.insert(chunk(2), vec![0.0, 3.0]).unwrap();
        index.insert(chunk(3), vec![1.0, 0.0]).unwrap();
        index.insert(chunk(4), vec![0.5, 0.0]).unwrap();

        let hits = index.search(&[1.0, 0.0], 5);
        assert_eq!(
            ids(&hits),
            ["doc.md#1", "doc.md#3", "doc.md#4", "doc.md#0", "doc.md#2"]
        );
        assert_eq!(hits[0].score, 1.0);
        assert_eq!(hits[3].score, 0.0);
        assert_eq!(ids(&index.search(&[1.0, 0.0], 2)), ["doc.md#1", "doc.md#3"]);
        assert_eq!(ids(&index.search(&[0.0, 1.0], 1)), ["doc.md#0"]);
    }

    #[test]
    fn zero_vectors_score_zero() {
        let mut index = VectorIndex::new(3);
        index.insert(chunk(0), vec![0.0; 3]).unwrap();
        index.insert(chunk(1), vec![0.0, 0.0, -4.0]).unwrap();
        index.insert(chunk(2), vec![1.0, 1.0, 0.0]).unwrap();

        let hits = index.search(&[1.0, 0.0, 0.0], 3);
        assert_eq!(ids(&hits), ["doc.md#2", "doc.md#0", "doc.md#1"]);
        assert!((hits[0].score - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
        assert_eq!(hits[1].score, 0.0);

        let hits = index.search(&[0.0; 3], 3);
        assert_eq!(ids(&hits), ["doc.md#0", "doc.md#1", "doc.md#2"]);
        assert!(hits.iter().all(|h| h.score == 0.0));

        let hits = index.search(&[f32::NAN, 1.0, 0.0], 3);
        assert!(hits.iter().all(|h| h.score == 0.0));
    }

    #[test]
    fn opposite_vectors_score_minus_one() {
        let mut index = VectorIndex::new(2);
        index.insert(chunk(0), vec![-3.0, -4.0]).unwrap();
        let hits = index.search(&[0.3, 0.4], 1);
        assert!((hits[0].score + 1.0).abs() < 1e-6);
    }

    #[test]
    fn insert_validates_vectors() {
        let mut index = VectorIndex::new(4);
        assert_eq!(
            index.insert(chunk(0), vec![1.0; 3]),
            Err(IndexError::DimensionMismatch {
                expected: 4,
                actual: 3
            })
        );
        assert_eq!(
            index.insert(chunk(0), vec![1.0, f32::INFINITY, 0.0, 0.0]),
            Err(IndexError::NonFinite)
        );
        assert!(index.is_empty());
        assert_eq!(index.len(), 0);

        index.insert(chunk(0), vec![1.0, 1.0, 1.0, 1.0]).unwrap();
        assert_eq!(index.len(), 1);
        assert!(!index.is_empty());
        assert_eq!(index.dimension(), 4);
        assert_eq!(index.chunks(), [chunk(0)]);
        // Stored normalised: searching with the same direction gives exactly 1.
        assert_eq!(index.search(&[2.0; 4], 1)[0].score, 1.0);
    }

    #[test]
    fn top_k_bounds() {
        let mut index = VectorIndex::with_capacity(2, 3);
        assert!(index.search(&[1.0, 0.0], 5).is_empty());
        for n in 0..3 {
            index.insert(chunk(n), vec![1.0, n as f32]).unwrap();
        }
        assert!(index.search(&[1.0, 0.0], 0).is_empty());
        assert_eq!(index.search(&[1.0, 0.0], 3).len(), 3);
        assert_eq!(index.search(&[1.0, 0.0], 100).len(), 3);
        assert_eq!(
            ids(&index.search(&[1.0, 0.0], 100)),
            ["doc.md#0", "doc.md#1", "doc.md#2"]
        );
    }

    #[test]
    #[should_panic(expected = "query has 3 dimensions, index expects 2")]
    fn query_dimension_mismatch_panics() {
        let mut index = VectorIndex::new(2);
        index.insert(chunk(0), vec![1.0, 0.0]).unwrap();
        let _ = index.search(&[1.0, 0.0, 0.0], 1);
    }

    #[test]
    fn works_with_embedder_end_to_end() {
        use crate::embedder::hashing::HashingEmbedder;
        let embedder = HashingEmbedder::default();
        let texts = [
            "The collector receives spans over OTLP.",
            "Chunks are split at paragraph boundaries.",
            "The gateway propagates the traceparent header to every service.",
        ];
        let mut index = VectorIndex::new(embedder.dimension());
        for (n, text) in texts.iter().enumerate() {
            let mut c = chunk(n);
            c.text = (*text).to_owned();
            index.insert(c, embedder.embed(text)).unwrap();
        }
        let hits = index.search(&embedder.embed("which header carries the trace?"), 1);
        assert_eq!(hits[0].chunk.id, "doc.md#2");
    }
}
