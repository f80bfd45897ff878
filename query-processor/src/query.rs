//! Query normalisation and validation, before anything downstream runs.

use shared::wire::{DEFAULT_TOP_K, MAX_QUERY_CHARS, MAX_TOP_K};

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("query must not be empty")]
    Empty,
    #[error("query is {0} characters long; the limit is {MAX_QUERY_CHARS}")]
    TooLong(usize),
    #[error("top_k must be between 1 and {MAX_TOP_K}, got {0}")]
    InvalidTopK(u32),
}

/// Collapse runs of whitespace to one space, drop control characters, trim.
pub fn normalise(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    for word in query
        .split(|c: char| c.is_whitespace())
        .filter(|w| !w.is_empty())
    {
        let word: String = word.chars().filter(|c| !c.is_control()).collect();
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&word);
    }
    out
}

/// The normalised query, or why it cannot be processed.
pub fn validate(query: &str) -> Result<String, QueryError> {
    let query = normalise(query);
    if query.is_empty() {
        return Err(QueryError::Empty);
    }
    let chars = query.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(QueryError::TooLong(chars));
    }
    Ok(query)
}

/// `top_k`, defaulted and bounded.
pub fn top_k(requested: Option<u32>) -> Result<u32, QueryError> {
    match requested.unwrap_or(DEFAULT_TOP_K) {
        k @ 1..=MAX_TOP_K => Ok(k),
        k => Err(QueryError::InvalidTopK(k)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_collapses_whitespace_and_drops_controls() {
        assert_eq!(
            normalise("  what\tis \n\n a\u{0007} span? "),
            "what is a span?"
        );
        assert_eq!(normalise("\u{0000}\u{0007}"), "");
    }

    #[test]
    fn validate_rejects_empty_and_long_queries() {
        assert_eq!(validate(" \t\n"), Err(QueryError::Empty));
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        assert_eq!(
            validate(&long),
            Err(QueryError::TooLong(MAX_QUERY_CHARS + 1))
        );
        assert_eq!(validate(" ok "), Ok("ok".to_owned()));
    }

    #[test]
    fn top_k_defaults_and_bounds() {
        assert_eq!(top_k(None), Ok(DEFAULT_TOP_K));
        assert_eq!(top_k(Some(1)), Ok(1));
        assert_eq!(top_k(Some(MAX_TOP_K)), Ok(MAX_TOP_K));
        assert_eq!(top_k(Some(0)), Err(QueryError::InvalidTopK(0)));
        assert_eq!(
            top_k(Some(MAX_TOP_K + 1)),
            Err(QueryError::InvalidTopK(MAX_TOP_K + 1))
        );
    }
}
