//! Token counting for the offline generator.
//!
//! The offline generator reports `input_tokens` / `output_tokens` like a
//! hosted model would, so those numbers have to come from a real, documented
//! rule rather than "bytes divided by four". This module implements the
//! **GPT-2 / tiktoken pre-tokenisation rule**: the number of tokens is the
//! number of pieces that the GPT-2 pre-tokenizer regex splits a text into:
//!
//! ```text
//! '(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//! ```
//!
//! In words, scanning left to right and taking the first alternative that
//! matches:
//!
//! 1. an English contraction suffix: `'s`, `'d`, `'m`, `'t`, `'ll`, `'ve`,
//!    `'re` (ASCII apostrophe, lowercase only);
//! 2. a run of letters, optionally preceded by one space (` world`);
//! 3. a run of digits, optionally preceded by one space (` 2024`);
//! 4. a run of anything that is not whitespace, a letter or a digit,
//!    optionally preceded by one space (` (`, `!`, `...`);
//! 5. a run of whitespace not followed by a non-space — so in `a   b` the run
//!    gives up its last space, which then attaches to the `b`;
//! 6. any remaining whitespace run (a lone newline before a word, say).
//!
//! This is implemented by hand (no regex engine) with
//! [`char::is_alphabetic`] standing in for `\p{L}`, [`char::is_numeric`] for
//! `\p{N}` and [`char::is_whitespace`] for `\s`. `is_numeric` is exactly
//! `\p{N}`; `is_alphabetic` is slightly broader than `\p{L}` (it also admits
//! letter-like combining marks and letter numbers), so for scripts that use
//! combining vowel signs the piece count can differ a little from the regex.
//!
//! # Why this is a lower bound
//!
//! A byte-pair-encoding tokenizer that uses this pre-tokenizer (GPT-2's, and
//! tiktoken's `r50k_base` / `p50k_base`) first cuts the text into these
//! pieces and then encodes each piece separately as one *or more* tokens:
//! BPE merges never cross a piece boundary, they only split a piece further.
//! The piece count is therefore a lower bound on that tokenizer's count.
//! On English prose, where most words are a single token, it is typically
//! within about 10–30% of the real count; rare words, long numbers, code and
//! non-Latin scripts push the real count higher. Newer tokenizers
//! (`cl100k_base`, `o200k_base`) use different split rules, so for them this
//! is an approximation, not a bound.
//!
//! # Why this rule
//!
//! - **Deterministic**: the same text always gives the same count, which
//!   keeps traces and tests reproducible.
//! - **Dependency-free**: no vocabulary file and no regex crate; it is a few
//!   dozen lines of `std`.
//! - **Documented**: it is the published GPT-2 rule, so anyone can check a
//!   count by hand or against another implementation.
//! - **Honest**: it is an approximation and says so, including in which
//!   direction it errs (low).
//!
//! # Worked example
//!
//! ```text
//! "Hello, world! It's 2024.  Done"
//!
//! "Hello"    rule 2 (letters)
//! ","        rule 4 (punctuation)
//! " world"   rule 2 (space + letters)
//! "!"        rule 4
//! " It"      rule 2
//! "'s"       rule 1 (contraction)
//! " 2024"    rule 3 (space + digits)
//! "."        rule 4
//! " "        rule 5 (two spaces before "Done": the run keeps only the first)
//! " Done"    rule 2 (the second space attaches to the word)
//!
//! count_tokens(...) == 10
//! ```

/// Number of tokens in `text` under the GPT-2 pre-tokenisation rule (see the
/// module docs). Equal to `pieces(text).len()`; `0` for an empty string.
pub fn count_tokens(text: &str) -> u64 {
    let chars: Vec<char> = text.chars().collect();
    let mut count = 0u64;
    let mut i = 0;
    while i < chars.len() {
        i = piece_end(&chars, i);
        count += 1;
    }
    count
}

/// The pieces `text` is split into by the GPT-2 pre-tokenisation rule, in
/// order. Concatenating them gives back `text` exactly; none is empty.
pub fn pieces(text: &str) -> Vec<&str> {
    let indexed: Vec<(usize, char)> = text.char_indices().collect();
    let chars: Vec<char> = indexed.iter().map(|&(_, c)| c).collect();
    let byte_at = |i: usize| indexed.get(i).map_or(text.len(), |&(b, _)| b);
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let end = piece_end(&chars, i);
        out.push(&text[byte_at(i)..byte_at(end)]);
        i = end;
    }
    out
}

/// `[^\s\p{L}\p{N}]`: punctuation, symbols, emoji, control characters, ...
fn is_other(c: char) -> bool {
    !c.is_whitespace() && !c.is_alphabetic() && !c.is_numeric()
}

/// Index one past the end of the maximal run of `class` starting at `from`.
fn run_end(chars: &[char], from: usize, class: fn(char) -> bool) -> usize {
    chars[from..]
        .iter()
        .position(|&c| !class(c))
        .map_or(chars.len(), |len| from + len)
}

/// End (exclusive, in chars) of the piece starting at `i`; always `> i`.
/// The branches follow the regex alternatives in order.
fn piece_end(chars: &[char], i: usize) -> usize {
    let c = chars[i];
    let at = |k: usize| chars.get(k).copied();

    // 1. '(?:[sdmt]|ll|ve|re)
    if c == '\'' {
        match (at(i + 1), at(i + 2)) {
            (Some('s' | 'd' | 'm' | 't'), _) => return i + 2,
            (Some('l'), Some('l')) | (Some('v'), Some('e')) | (Some('r'), Some('e')) => {
                return i + 3;
            }
            _ => {}
        }
    }

    // 2–4. ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`. A space can never
    // start a run itself, so the optional space is taken exactly when the
    // piece starts with one.
    let start = if c == ' ' { i + 1 } else { i };
    if let Some(first) = at(start) {
        for class in [
            char::is_alphabetic as fn(char) -> bool,
            char::is_numeric,
            is_other,
        ] {
            if class(first) {
                return run_end(chars, start, class);
            }
        }
    }

    // 5–6. `\s+(?!\S)` then `\s+`. Here `c` is whitespace: every other char
    // matched one of the runs above.
    let end = run_end(chars, i, char::is_whitespace);
    if end < chars.len() && end - i >= 2 {
        // Followed by a non-space: backtrack one so the negative lookahead
        // holds, leaving the last whitespace char to start the next piece.
        end - 1
    } else {
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str, expected: &[&str]) {
        assert_eq!(pieces(text), expected, "pieces of {text:?}");
        assert_eq!(
            count_tokens(text),
            expected.len() as u64,
            "count of {text:?}"
        );
    }

    #[test]
    fn simple_words() {
        check("Hello world", &["Hello", " world"]);
        assert_eq!(count_tokens("Hello world"), 2);
    }

    #[test]
    fn punctuation() {
        check("Hello, world!", &["Hello", ",", " world", "!"]);
        check("wait...what?!", &["wait", "...", "what", "?!"]);
        check("f(x) = y", &["f", "(", "x", ")", " =", " y"]);
    }

    #[test]
    fn contractions() {
        check("don't", &["don", "'t"]);
        check(
            "I'll we've they're she'd I'm it's",
            &[
                "I", "'ll", " we", "'ve", " they", "'re", " she", "'d", " I", "'m", " it", "'s",
            ],
        );
        // Case-sensitive, like GPT-2: `'S` is not a contraction.
        check("IT'S", &["IT", "'", "S"]);
        // The contraction rule fires even mid-word, like the regex.
        check("'sup", &["'s", "up"]);
        // A space before the apostrophe makes it punctuation.
        check("rock 'n' roll", &["rock", " '", "n", "'", " roll"]);
        // Greedy punctuation run swallows the first apostrophe.
        check("''s", &["''", "s"]);
    }

    #[test]
    fn numbers() {
        check("in 2024", &["in", " 2024"]);
        check("3.14", &["3", ".", "14"]);
        check("abc123", &["abc", "123"]);
        check("v2", &["v", "2"]);
        check("1,000,000", &["1", ",", "000", ",", "000"]);
    }

    #[test]
    fn multiple_spaces() {
        check("a  b", &["a", " ", " b"]);
        check("a   b", &["a", "  ", " b"]);
        check("a b", &["a", " b"]);
        check("  hi", &[" ", " hi"]);
        // Trailing whitespace is one piece (lookahead succeeds at the end).
        check("hi   ", &["hi", "   "]);
        check(" ", &[" "]);
    }

    #[test]
    fn other_whitespace() {
        // A newline never attaches to the next word; only U+0020 does.
        check("a\nb", &["a", "\n", "b"]);
        check("a\n\nb", &["a", "\n", "\n", "b"]);
        check("a\n b", &["a", "\n", " b"]);
        check("a\t\t", &["a", "\t\t"]);
        check("x \n\ty", &["x", " \n", "\t", "y"]);
    }

    #[test]
    fn empty() {
        check("", &[]);
        assert_eq!(count_tokens(""), 0);
    }

    #[test]
    fn unicode_letters() {
        check("café naïve", &["café", " naïve"]);
        check("Привет мир", &["Привет", " мир"]);
        check("日本語のテキスト", &["日本語のテキスト"]);
        check("😀😀 ok", &["😀😀", " ok"]);
        check("٣٤ apples", &["٣٤", " apples"]);
    }

    #[test]
    fn worked_example_from_module_docs() {
        check(
            "Hello, world! It's 2024.  Done",
            &[
                "Hello", ",", " world", "!", " It", "'s", " 2024", ".", " ", " Done",
            ],
        );
    }

    /// Tiny deterministic generator so the round-trip test needs no crates.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }
    }

    #[test]
    fn pieces_concatenate_to_input() {
        const ALPHABET: &[char] = &[
            'a', 'b', 'Z', 's', 't', 'l', 'v', 'e', 'r', 'd', 'm', '\'', ' ', ' ', ' ', '\n', '\t',
            '\r', '0', '7', ',', '.', '!', '?', '-', '(', ')', 'é', 'ж', '中', '😀', '٣',
            '\u{00A0}', '\u{0301}', '#', '"',
        ];
        let mut rng = Lcg(42);
        let mut inputs: Vec<String> = vec![
            String::new(),
            "Hello, world!".into(),
            "  leading and trailing  ".into(),
            "line one\n\n  line two\r\n".into(),
            "It's what we'll do; they'd've said 'no'.".into(),
        ];
        for _ in 0..2_000 {
            let len = (rng.next() % 24) as usize;
            inputs.push(
                (0..len)
                    .map(|_| ALPHABET[(rng.next() as usize) % ALPHABET.len()])
                    .collect(),
            );
        }
        for input in &inputs {
            let ps = pieces(input);
            assert_eq!(ps.concat(), *input, "round trip of {input:?}");
            assert!(ps.iter().all(|p| !p.is_empty()), "empty piece in {input:?}");
            assert_eq!(count_tokens(input), ps.len() as u64);
        }
    }
}
