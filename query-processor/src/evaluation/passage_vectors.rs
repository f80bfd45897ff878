//! A cache of passages' sentence vectors, so each retrieved passage is
//! embedded once rather than once per answer it grounds.
//!
//! Groundedness compares every sentence of an answer with every sentence of
//! the passages it was answered from. The answer is new each time; the
//! passages are the corpus's chunks, and the same ones come back for
//! question after question. Embedding their sentences was most of what
//! evaluating an answer cost (`docs/bench.md`), so the vectors are kept,
//! per embedder and passage text, up to [`CAPACITY`] passages; when it is
//! full the cache starts over (a corpus's working set refills it quickly,
//! and nothing has to track recency).
//!
//! Machinery, not lesson: the evaluation reads the same vectors either way.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

/// Passages kept. Vectors are kept sparse, 8 bytes a non-zero dimension:
/// the hashing embedder fills a few dozen of its 384, so a passage takes a
/// few KiB; a dense 1536-dimension model's six sentences take 72 KiB, and
/// the cache at most 36 MiB.
pub const CAPACITY: usize = 512;

/// A unit vector's non-zero components, `(dimension, value)`.
pub type SparseVector = Vec<(u32, f32)>;

/// One passage's statements, embedded, in order.
pub type SentenceVectors = Arc<Vec<SparseVector>>;

#[derive(Default)]
pub struct PassageVectors {
    entries: Mutex<HashMap<u64, Entry>>,
}

struct Entry {
    embedder: String,
    text: String,
    vectors: SentenceVectors,
}

fn key(embedder: &str, text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    (embedder, text).hash(&mut hasher);
    hasher.finish()
}

impl PassageVectors {
    /// The vectors of `text`'s sentences under `embedder`, if kept.
    pub fn get(&self, embedder: &str, text: &str) -> Option<SentenceVectors> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&key(embedder, text))
            .filter(|e| e.embedder == embedder && e.text == text)
            .map(|e| e.vectors.clone())
    }

    /// Keep `vectors` for `text` under `embedder`.
    pub fn insert(&self, embedder: &str, text: &str, vectors: SentenceVectors) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        let entry = Entry {
            embedder: embedder.to_owned(),
            text: text.to_owned(),
            vectors,
        };
        entries.insert(key(embedder, text), entry);
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_passage_is_kept_per_embedder_and_text_and_the_cache_starts_over_when_full() {
        let cache = PassageVectors::default();
        let vectors: SentenceVectors = Arc::new(vec![vec![(0, 1.0)]]);
        cache.insert("m", "a passage", vectors.clone());
        assert_eq!(cache.get("m", "a passage"), Some(vectors));
        assert_eq!(cache.get("other-model", "a passage"), None);
        assert_eq!(cache.get("m", "another passage"), None);
        for i in 0..CAPACITY {
            cache.insert("m", &format!("passage {i}"), Arc::new(Vec::new()));
        }
        assert!(cache.len() <= CAPACITY);
        assert_eq!(cache.get("m", "a passage"), None);
    }
}
