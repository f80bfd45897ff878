//! The error codes a failure keeps across hops: each code's status and the
//! short message the public edge (the gateway) answers with.
//!
//! A code names the cause in the caller's terms (`vector_store_unavailable`,
//! `model_timeout`), so it means the same at every hop: a service that
//! receives one of these codes in a callee's error body answers with the
//! same code and the status of this table ([`DownstreamError`]). The status
//! says what the caller can do: 503 and 504 are worth a retry, 502 is a
//! misconfiguration behind the gateway, 422 is the caller's own input.
//!
//! The public message is fixed: it never quotes the inner error, whose
//! addresses, library errors and chain of hops stay in the trace and the
//! logs. `docs/errors.md` is this table for readers.
//!
//! [`DownstreamError`]: super::downstream_error::DownstreamError

use actix_web::http::StatusCode;

/// One code: the status it keeps across hops and its public message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode {
    pub code: &'static str,
    pub status: StatusCode,
    pub message: &'static str,
}

const RETRY: StatusCode = StatusCode::SERVICE_UNAVAILABLE;
const LATE: StatusCode = StatusCode::GATEWAY_TIMEOUT;
const BROKEN: StatusCode = StatusCode::BAD_GATEWAY;
const INPUT: StatusCode = StatusCode::UNPROCESSABLE_ENTITY;

const fn code(code: &'static str, status: StatusCode, message: &'static str) -> ErrorCode {
    ErrorCode {
        code,
        status,
        message,
    }
}

/// Our own failure to get an answer from the next hop: it refused the
/// connection or broke it (a dead hop, transient from the caller's view).
pub const SERVICE_UNAVAILABLE: ErrorCode = code(
    "service_unavailable",
    RETRY,
    "A service behind the gateway is unavailable; retry later.",
);
/// The next hop did not answer within our deadline.
pub const TIMEOUT: ErrorCode = code(
    "timeout",
    LATE,
    "A service behind the gateway did not answer in time; retry later.",
);
/// The next hop answered something we cannot read.
pub const INVALID_RESPONSE: ErrorCode = code(
    "invalid_response",
    BROKEN,
    "A service behind the gateway sent an invalid response.",
);
/// The next hop failed without one of the codes below.
pub const BAD_GATEWAY: ErrorCode = code(
    "bad_gateway",
    BROKEN,
    "A service behind the gateway failed.",
);

/// Every code a callee's error body may carry that its caller relays as is.
/// Any other code (a hop's routing or body errors, which are our own bug
/// and not the client's) becomes [`BAD_GATEWAY`], or [`SERVICE_UNAVAILABLE`]
/// and [`TIMEOUT`] on a 503 or 504.
#[rustfmt::skip]
pub const RELAYED: &[ErrorCode] = &[
    // Transient: retry later.
    code("vector_store_unavailable", RETRY, "The vector store is unavailable; retry later."),
    code("index_not_ready", RETRY, "The document index is not ready yet; retry later."),
    code("embeddings_unavailable", RETRY, "The embeddings provider is unavailable; retry later."),
    code("embeddings_timeout", LATE, "The embeddings provider did not answer in time; retry later."),
    code("model_unavailable", RETRY, "The model provider is unavailable; retry later."),
    code("model_timeout", LATE, "The model provider did not answer in time; retry later."),
    code("rate_limited", RETRY, "The model or embeddings provider is rate limiting us; retry later."),
    SERVICE_UNAVAILABLE,
    TIMEOUT,
    // Permanent: a misconfiguration behind the gateway.
    code("vector_store_error", BROKEN, "The vector store failed the search."),
    code("embeddings_auth_failed", BROKEN, "The embeddings provider rejected the service's credentials."),
    code("embeddings_rejected", BROKEN, "The embeddings provider rejected the request."),
    code("embeddings_invalid_response", BROKEN, "The embeddings provider sent an invalid response."),
    code("model_auth_failed", BROKEN, "The model provider rejected the service's credentials."),
    code("model_rejected", BROKEN, "The model provider rejected the request."),
    code("model_invalid_response", BROKEN, "The model provider sent an invalid response."),
    INVALID_RESPONSE,
    BAD_GATEWAY,
    // The caller's input.
    code("invalid_query", INPUT, "The query is empty or too long."),
    code("invalid_top_k", INPUT, "top_k is out of range."),
    code("too_many_contexts", INPUT, "Too many contexts for the model."),
];

/// The table entry for a relayed `code`, if it is one.
pub fn relayed(code: &str) -> Option<&'static ErrorCode> {
    RELAYED.iter().find(|entry| entry.code == code)
}

/// The code a caller answers with when the callee answered `status` without
/// a code of [`RELAYED`].
pub fn by_status(status: StatusCode) -> &'static ErrorCode {
    match status {
        StatusCode::SERVICE_UNAVAILABLE => &SERVICE_UNAVAILABLE,
        StatusCode::GATEWAY_TIMEOUT => &TIMEOUT,
        _ => &BAD_GATEWAY,
    }
}

/// The public message for `code`: the table's, or [`BAD_GATEWAY`]'s for a
/// code the table does not hold.
pub fn public_message(code: &str) -> &'static str {
    relayed(code).map_or(BAD_GATEWAY.message, |entry| entry.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_messages_short_and_clean() {
        for (i, entry) in RELAYED.iter().enumerate() {
            assert!(
                RELAYED[..i].iter().all(|other| other.code != entry.code),
                "{} twice",
                entry.code
            );
            assert!(entry.message.len() <= 80, "{}", entry.code);
            for detail in ["http", "127.0.0.1", "://", "{", ":"] {
                assert!(!entry.message.contains(detail), "{}", entry.code);
            }
        }
    }

    #[test]
    fn unknown_codes_fall_back_by_status() {
        assert_eq!(relayed("not_found"), None);
        assert_eq!(by_status(StatusCode::NOT_FOUND).code, "bad_gateway");
        assert_eq!(
            by_status(StatusCode::SERVICE_UNAVAILABLE).code,
            "service_unavailable"
        );
        assert_eq!(by_status(StatusCode::GATEWAY_TIMEOUT).code, "timeout");
        assert_eq!(public_message("jsonrpc_-32602"), BAD_GATEWAY.message);
    }
}
