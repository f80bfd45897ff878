//! Splits a Markdown or plain-text document into retrievable passages ([`Chunk`]s).
//!
//! # Why chunk this way?
//!
//! Retrieval quality and prompt size both depend on passage length: whole
//! documents dilute the embedding and overflow the LLM prompt, single sentences
//! lose their context. Paragraphs are the unit authors already use to group one
//! idea, so the chunker packs *whole consecutive paragraphs* into a chunk while
//! it stays within [`ChunkerConfig::max_words`], and only breaks a paragraph
//! apart when that paragraph alone is too long: first at sentence ends, and only
//! if a single sentence is still too long, at a hard word boundary.
//!
//! Further decisions:
//!
//! * **Headings are structure, not content.** An ATX heading line (`#` to
//!   `######` followed by a space or the end of the line) never appears in chunk
//!   text. It closes the current chunk, so a chunk never mixes two sections. The
//!   first level-1 heading becomes the document [`Chunk::title`] (falling back to
//!   the source's file stem) so callers can cite it or choose to embed it; the
//!   chunk text itself stays the author's passage. Lines inside fenced code
//!   blocks are never treated as headings (a shell comment is not a heading).
//! * **Whitespace is collapsed** to single spaces, so chunks are single-line
//!   strings that are stable regardless of the source's line wrapping or line
//!   endings.
//! * **Ids are stable**: `"{source}#{ordinal}"`, the ordinal counting chunks
//!   from 0 in document order. The same document always yields the same ids,
//!   which keeps trace attributes and citations comparable across runs.
//! * **Overlap** ([`ChunkerConfig::overlap_words`], off by default) starts each
//!   chunk with the last words of the previous one, so a fact straddling a
//!   boundary remains retrievable. Overlap counts towards `max_words`, which
//!   therefore stays a hard upper bound on every chunk's length.

use serde::{Deserialize, Serialize};

/// A retrievable passage of a source document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Stable identifier, `"{source}#{ordinal}"`.
    pub id: String,
    /// The document the chunk came from (for corpus files: the path relative to
    /// the corpus directory, with `/` separators).
    pub source: String,
    /// The document title: its first level-1 heading, else the source's file stem.
    pub title: String,
    /// The passage text, whitespace collapsed to single spaces, without headings.
    pub text: String,
}

/// How documents are split into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkerConfig {
    /// Maximum number of words in a chunk, overlap included. Values below 1 are
    /// treated as 1.
    pub max_words: usize,
    /// Number of trailing words of the previous chunk repeated at the start of
    /// the next one. Clamped so every chunk still adds at least one new word.
    pub overlap_words: usize,
}

impl ChunkerConfig {
    /// Default [`Self::max_words`]: roughly one or two paragraphs of prose.
    pub const DEFAULT_MAX_WORDS: usize = 120;
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        Self {
            max_words: Self::DEFAULT_MAX_WORDS,
            overlap_words: 0,
        }
    }
}

/// Splits `text` (the contents of `source`) into chunks, in document order.
///
/// A document without any non-heading text yields no chunks.
pub fn chunk_document(source: &str, text: &str, cfg: &ChunkerConfig) -> Vec<Chunk> {
    let max_words = cfg.max_words.max(1);
    let overlap = cfg.overlap_words.min(max_words - 1);
    let document = parse(text);
    let title = document
        .title
        .unwrap_or_else(|| file_stem(source).to_owned());

    // Pieces of a split paragraph leave room for the overlap; whole paragraphs
    // that fit are kept whole even if that trims the overlap in front of them.
    let piece_words = max_words - overlap;
    let mut packer = Packer::new(max_words, overlap);
    for section in &document.sections {
        for paragraph in section {
            if paragraph.len() <= max_words {
                packer.push(paragraph);
            } else {
                for piece in split_long_paragraph(paragraph, piece_words) {
                    packer.push(piece);
                }
            }
        }
        packer.end_section();
    }

    packer
        .chunks
        .into_iter()
        .enumerate()
        .map(|(ordinal, words)| Chunk {
            id: format!("{source}#{ordinal}"),
            source: source.to_owned(),
            title: title.clone(),
            text: words.join(" "),
        })
        .collect()
}

/// A document as sections (separated by headings) of paragraphs (word lists).
struct Document<'a> {
    title: Option<String>,
    sections: Vec<Vec<Vec<&'a str>>>,
}

fn parse(text: &str) -> Document<'_> {
    let mut title = None;
    let mut sections = vec![Vec::new()];
    let mut paragraph: Vec<&str> = Vec::new();
    let mut fence: Option<char> = None;

    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(marker) = fence_marker(trimmed) {
            match fence {
                None => fence = Some(marker),
                Some(open) if open == marker => fence = None,
                Some(_) => {}
            }
        }
        let heading = if fence.is_none() {
            atx_heading(line)
        } else {
            None
        };
        if let Some((level, heading_text)) = heading {
            if level == 1 && title.is_none() && !heading_text.is_empty() {
                title = Some(
                    heading_text
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            end_paragraph(&mut sections, &mut paragraph);
            if sections.last().is_some_and(|s| !s.is_empty()) {
                sections.push(Vec::new());
            }
        } else if trimmed.is_empty() {
            end_paragraph(&mut sections, &mut paragraph);
        } else {
            paragraph.extend(line.split_whitespace());
        }
    }
    end_paragraph(&mut sections, &mut paragraph);
    sections.retain(|s| !s.is_empty());
    Document { title, sections }
}

fn end_paragraph<'a>(sections: &mut [Vec<Vec<&'a str>>], paragraph: &mut Vec<&'a str>) {
    if !paragraph.is_empty() {
        let section = sections.last_mut().expect("there is always a section");
        section.push(std::mem::take(paragraph));
    }
}

/// Returns the fence character if `line` (already left-trimmed) opens or closes
/// a fenced code block.
fn fence_marker(line: &str) -> Option<char> {
    if line.starts_with("```") {
        Some('`')
    } else if line.starts_with("~~~") {
        Some('~')
    } else {
        None
    }
}

/// Parses an ATX heading: up to three spaces of indentation, 1–6 `#`, then a
/// space/tab or the end of the line. Returns the level and the heading text
/// with any closing `#` sequence removed.
fn atx_heading(line: &str) -> Option<(usize, &str)> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let level = rest.len() - rest.trim_start_matches('#').len();
    if !(1..=6).contains(&level) {
        return None;
    }
    let after = &rest[level..];
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    let text = after.trim();
    let without_closing = text.trim_end_matches('#');
    let text = if without_closing.is_empty() || without_closing.ends_with([' ', '\t']) {
        without_closing.trim_end()
    } else {
        text
    };
    Some((level, text))
}

/// Splits a paragraph longer than `max_words` into pieces of at most
/// `max_words` words, packing whole sentences greedily and hard-splitting only
/// sentences that are themselves too long.
fn split_long_paragraph<'p, 'a>(paragraph: &'p [&'a str], max_words: usize) -> Vec<&'p [&'a str]> {
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut end = 0;
    for sentence in sentences(paragraph) {
        if sentence.len() > max_words {
            if end > start {
                pieces.push(&paragraph[start..end]);
            }
            pieces.extend(sentence.chunks(max_words));
            start = end + sentence.len();
            end = start;
        } else if end - start + sentence.len() > max_words {
            pieces.push(&paragraph[start..end]);
            start = end;
            end += sentence.len();
        } else {
            end += sentence.len();
        }
    }
    if end > start {
        pieces.push(&paragraph[start..end]);
    }
    pieces
}

/// Splits a paragraph's words into sentences: a word ending in `.`, `?` or `!`
/// (optionally followed by closing quotes or brackets) ends a sentence.
fn sentences<'p, 'a>(paragraph: &'p [&'a str]) -> impl Iterator<Item = &'p [&'a str]> {
    paragraph.split_inclusive(|word| {
        word.trim_end_matches(['"', '\'', ')', ']', '”', '’'])
            .ends_with(['.', '?', '!'])
    })
}

/// Greedily packs word sequences into chunks of at most `max_words` words.
struct Packer<'a> {
    max_words: usize,
    overlap: usize,
    current: Vec<&'a str>,
    /// Words of `current` that are carried over from the previous chunk.
    carried: usize,
    chunks: Vec<Vec<&'a str>>,
}

impl<'a> Packer<'a> {
    fn new(max_words: usize, overlap: usize) -> Self {
        Self {
            max_words,
            overlap,
            current: Vec::new(),
            carried: 0,
            chunks: Vec::new(),
        }
    }

    /// Adds `words` (at most `max_words` long) to the current chunk, starting a
    /// new chunk first if they do not fit.
    fn push(&mut self, words: &[&'a str]) {
        debug_assert!(words.len() <= self.max_words);
        if self.current.len() + words.len() > self.max_words {
            self.flush();
        }
        let excess = (self.current.len() + words.len()).saturating_sub(self.max_words);
        if excess > 0 {
            // Only carried-over words can be in the way: shrink the overlap.
            self.current.drain(..excess);
            self.carried -= excess;
        }
        self.current.extend_from_slice(words);
    }

    /// Closes the current chunk without carrying words into the next section.
    fn end_section(&mut self) {
        self.flush();
        self.current.clear();
        self.carried = 0;
    }

    /// Closes the current chunk, if it holds any new words.
    fn flush(&mut self) {
        if self.current.len() > self.carried {
            let tail_start = self.current.len() - self.overlap.min(self.current.len());
            let tail = self.current[tail_start..].to_vec();
            self.chunks.push(std::mem::replace(&mut self.current, tail));
            self.carried = self.current.len();
        }
    }
}

fn file_stem(source: &str) -> &str {
    let name = source.rsplit(['/', '\\']).next().unwrap_or(source);
    match name.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_words: usize, overlap_words: usize) -> ChunkerConfig {
        ChunkerConfig {
            max_words,
            overlap_words,
        }
    }

    fn words(n: usize, prefix: &str) -> String {
        (0..n)
            .map(|i| format!("{prefix}{i}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn texts(chunks: &[Chunk]) -> Vec<&str> {
        chunks.iter().map(|c| c.text.as_str()).collect()
    }

    #[test]
    fn default_config() {
        assert_eq!(ChunkerConfig::default(), cfg(120, 0));
    }

    #[test]
    fn ids_are_stable_and_ordered() {
        let doc = "# Guide\n\nFirst paragraph.\n\nSecond paragraph.\n\n## Next\n\nThird.";
        let a = chunk_document("guides/otel.md", doc, &cfg(2, 0));
        let b = chunk_document("guides/otel.md", doc, &cfg(2, 0));
        assert_eq!(a, b);
        let ids: Vec<_> = a.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            ["guides/otel.md#0", "guides/otel.md#1", "guides/otel.md#2"]
        );
        assert_eq!(
            texts(&a),
            ["First paragraph.", "Second paragraph.", "Third."]
        );
        assert!(a.iter().all(|c| c.source == "guides/otel.md"));
    }

    #[test]
    fn packs_whole_paragraphs_up_to_max_words() {
        let doc = format!(
            "{}\n\n{}\n\n{}\n\n{}",
            words(4, "a"),
            words(5, "b"),
            words(2, "c"),
            words(10, "d")
        );
        let chunks = chunk_document("doc.txt", &doc, &cfg(10, 0));
        assert_eq!(
            texts(&chunks),
            [
                format!("{} {}", words(4, "a"), words(5, "b")),
                words(2, "c"),
                words(10, "d"),
            ]
        );
        for chunk in &chunks {
            assert!(chunk.text.split_whitespace().count() <= 10);
        }
    }

    #[test]
    fn long_paragraph_is_split_at_sentence_ends() {
        let doc = "One two three. Four five six? Seven eight! Nine ten eleven twelve.\n\nTail.";
        let chunks = chunk_document("d.md", doc, &cfg(6, 0));
        assert_eq!(
            texts(&chunks),
            [
                "One two three. Four five six?",
                "Seven eight! Nine ten eleven twelve.",
                "Tail.",
            ]
        );
    }

    #[test]
    fn last_piece_of_long_paragraph_packs_with_next_paragraph() {
        let doc = "A b c d e. F g.\n\nH i.";
        let chunks = chunk_document("d.md", doc, &cfg(5, 0));
        assert_eq!(texts(&chunks), ["A b c d e.", "F g. H i."]);
    }

    #[test]
    fn overlong_sentence_is_hard_split() {
        let doc = format!("Short one. {}. End here.", words(7, "w"));
        let chunks = chunk_document("d.md", &doc, &cfg(3, 0));
        assert_eq!(
            texts(&chunks),
            ["Short one.", "w0 w1 w2", "w3 w4 w5", "w6. End here."]
        );
    }

    #[test]
    fn headings_are_stripped_and_title_recorded() {
        let doc = "# Trace  Propagation #\n\nIntro text.\n## Details\nMore text.\n\n### Deep\n";
        let chunks = chunk_document("docs/propagation.md", doc, &cfg(100, 0));
        assert_eq!(texts(&chunks), ["Intro text.", "More text."]);
        assert!(chunks.iter().all(|c| c.title == "Trace Propagation"));
        assert!(chunks.iter().all(|c| !c.text.contains('#')));
    }

    #[test]
    fn title_falls_back_to_file_stem() {
        let chunks = chunk_document("notes/otel-setup.txt", "Some text.", &cfg(100, 0));
        assert_eq!(chunks[0].title, "otel-setup");
        let chunks = chunk_document("README", "## Sub\nBody", &cfg(100, 0));
        assert_eq!(chunks[0].title, "README");
        assert_eq!(chunks[0].text, "Body");
    }

    #[test]
    fn non_headings_and_fenced_code_are_kept() {
        let doc = "#hashtag is text\n    # indented code\n\n```sh\n# a comment\nrun\n```\n";
        let chunks = chunk_document("d.md", doc, &cfg(100, 0));
        assert_eq!(
            texts(&chunks),
            ["#hashtag is text # indented code ```sh # a comment run ```"]
        );
        // Without a fence, the same line would be a heading and split the text.
        let chunks = chunk_document("d.md", "text\n# a comment\nrun", &cfg(100, 0));
        assert_eq!(texts(&chunks), ["text", "run"]);
    }

    #[test]
    fn whitespace_is_collapsed() {
        let doc = "  Lines\twrapped\r\nacross   several\r\n\r\n\tlines \u{a0} here  ";
        let chunks = chunk_document("d.md", doc, &cfg(100, 0));
        assert_eq!(texts(&chunks), ["Lines wrapped across several lines here"]);
    }

    #[test]
    fn empty_documents_give_no_chunks() {
        for doc in ["", "   \n\n\t\n", "# Only a title\n", "# T\n## Sub\n\n"] {
            assert!(chunk_document("d.md", doc, &ChunkerConfig::default()).is_empty());
        }
    }

    #[test]
    fn overlap_repeats_tail_within_max_words() {
        // The overlap shrinks to fit a whole paragraph behind it.
        let doc = format!("{}\n\n{}", words(4, "a"), words(4, "b"));
        let chunks = chunk_document("d.md", &doc, &cfg(5, 2));
        assert_eq!(texts(&chunks), ["a0 a1 a2 a3", "a3 b0 b1 b2 b3"]);

        // Split paragraphs leave room for the full overlap.
        let chunks = chunk_document("d.md", &words(9, "w"), &cfg(4, 1));
        assert_eq!(texts(&chunks), ["w0 w1 w2", "w2 w3 w4 w5", "w5 w6 w7 w8"]);
        for chunk in &chunks {
            assert!(chunk.text.split_whitespace().count() <= 4);
        }
    }

    #[test]
    fn overlap_does_not_cross_sections() {
        let doc = "# T\n\nalpha beta\n\n## S\n\ngamma delta";
        let chunks = chunk_document("d.md", doc, &cfg(3, 1));
        assert_eq!(texts(&chunks), ["alpha beta", "gamma delta"]);
    }

    #[test]
    fn overlap_does_not_create_chunks_without_new_words() {
        let chunks = chunk_document("d.md", &words(4, "w"), &cfg(4, 10));
        assert_eq!(texts(&chunks), ["w0 w1 w2 w3"]);
    }

    #[test]
    fn zero_max_words_is_treated_as_one() {
        let chunks = chunk_document("d.md", "a b", &cfg(0, 0));
        assert_eq!(texts(&chunks), ["a", "b"]);
    }
}
