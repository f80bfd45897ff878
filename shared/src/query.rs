//! The one rule for a question, applied by every hop that accepts one
//! (gateway, query-processor, retrieval, llm-service), so a query a hop lets
//! through is never rejected further down for a reason the first hop could
//! have seen.
//!
//! [`validate`] normalises before it checks: whitespace runs become one
//! space, control characters go, the ends are trimmed. A query that is empty
//! after that, or longer than [`MAX_QUERY_CHARS`] characters, is a
//! [`QueryError`], which every service answers with the same status (422)
//! and code (`invalid_query`, `invalid_top_k`).

use actix_web::http::StatusCode;

use crate::error::ApiError;
use crate::wire::{DEFAULT_TOP_K, MAX_QUERY_CHARS, MAX_TOP_K};

/// Why a query (or its `top_k`) cannot be served.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("query must not be empty")]
    Empty,
    #[error("query is {0} characters long; the limit is {MAX_QUERY_CHARS}")]
    TooLong(usize),
    #[error("top_k must be between 1 and {MAX_TOP_K}, got {0}")]
    InvalidTopK(u32),
}

impl ApiError for QueryError {
    fn status(&self) -> StatusCode {
        StatusCode::UNPROCESSABLE_ENTITY
    }
    fn code(&self) -> &'static str {
        match self {
            Self::Empty | Self::TooLong(_) => "invalid_query",
            Self::InvalidTopK(_) => "invalid_top_k",
        }
    }
}

/// The normalised query, or why it cannot be served.
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

/// `top_k`, defaulted ([`DEFAULT_TOP_K`]) and bounded (1 to [`MAX_TOP_K`]).
pub fn top_k(requested: Option<u32>) -> Result<u32, QueryError> {
    match requested.unwrap_or(DEFAULT_TOP_K) {
        k @ 1..=MAX_TOP_K => Ok(k),
        k => Err(QueryError::InvalidTopK(k)),
    }
}

/// Collapse runs of whitespace to one space, drop control characters, trim.
fn normalise(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    for word in query.split_whitespace() {
        let before = out.len();
        if before > 0 {
            out.push(' ');
        }
        let start = out.len();
        out.extend(word.chars().filter(|c| !c.is_control()));
        if out.len() == start {
            // The word was control characters only: no word, no space.
            out.truncate(before);
        }
    }
    out
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
        assert_eq!(normalise("a \u{0007} b"), "a b");
    }

    #[test]
    fn validate_rejects_empty_and_long_queries() {
        assert_eq!(validate(" \t\n"), Err(QueryError::Empty));
        assert_eq!(validate("\u{0007} "), Err(QueryError::Empty));
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        assert_eq!(
            validate(&long),
            Err(QueryError::TooLong(MAX_QUERY_CHARS + 1))
        );
        // The limit counts characters, not bytes, after normalising.
        let at_limit = format!("  {}  ", "é".repeat(MAX_QUERY_CHARS));
        assert_eq!(
            validate(&at_limit).map(|q| q.chars().count()),
            Ok(MAX_QUERY_CHARS)
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

    #[test]
    fn every_service_answers_the_same_status_and_code() {
        let codes: Vec<_> = [
            QueryError::Empty,
            QueryError::TooLong(MAX_QUERY_CHARS + 1),
            QueryError::InvalidTopK(0),
        ]
        .iter()
        .map(|err| (err.status().as_u16(), err.code()))
        .collect();
        assert_eq!(
            codes,
            [
                (422, "invalid_query"),
                (422, "invalid_query"),
                (422, "invalid_top_k")
            ]
        );
    }
}
