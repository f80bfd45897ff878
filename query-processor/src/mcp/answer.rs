//! What an MCP answer means for query-processor's caller: the passages, or
//! the [`DownstreamError`] that becomes its status and body, with the
//! `error.type` the CLIENT span records.

use actix_web::http::StatusCode;
use rmcp::model::{CallToolResult, ErrorData, ServerResult};
use rmcp::service::ServiceError;
use shared::error::ApiError;
use shared::http::downstream_error::DownstreamError;
use shared::wire::{ErrorBody, RetrieveResponse};

/// Where a call went, for the errors that name it.
pub(super) struct Callee<'a> {
    pub service: &'static str,
    pub url: &'a str,
    pub timeout: std::time::Duration,
}

/// One `tools/call`'s outcome.
pub(super) struct Answer {
    pub result: Result<RetrieveResponse, DownstreamError>,
    /// `error.type`: the JSON-RPC error code, `tool_error`, or our code for
    /// a transport failure.
    pub error_type: Option<String>,
    /// The JSON-RPC error code, for `rpc.response.status_code`.
    pub rpc_code: Option<String>,
    /// The session failed under the call: open a new one.
    pub session_broken: bool,
}

impl Answer {
    fn failed(err: DownstreamError, error_type: Option<String>) -> Self {
        let error_type = error_type.or_else(|| Some(err.code().to_owned()));
        Self {
            result: Err(err),
            error_type,
            rpc_code: None,
            session_broken: false,
        }
    }
}

impl Callee<'_> {
    pub fn answer(&self, answer: Result<ServerResult, ServiceError>) -> Answer {
        match answer {
            Ok(ServerResult::CallToolResult(result)) if result.is_error == Some(true) => {
                self.tool_error(result)
            }
            Ok(ServerResult::CallToolResult(result)) => {
                let found = serde_json::from_value(result.structured_content.unwrap_or_default());
                match found {
                    Ok(found) => Answer {
                        result: Ok(found),
                        error_type: None,
                        rpc_code: None,
                        session_broken: false,
                    },
                    Err(err) => Answer::failed(self.invalid(err.to_string()), None),
                }
            }
            Ok(_) => Answer::failed(self.invalid("another result than a tool's".into()), None),
            Err(ServiceError::McpError(error)) => self.jsonrpc_error(error),
            Err(ServiceError::Timeout { .. }) => Answer::failed(self.timed_out(), None),
            Err(err) => Answer {
                session_broken: true,
                ..Answer::failed(self.unavailable(err.to_string()), None)
            },
        }
    }

    /// A tool result with `isError: true`: retrieval's error body is its
    /// structured content, and its code (relayed as for `POST /retrieve`)
    /// decides our status.
    fn tool_error(&self, result: CallToolResult) -> Answer {
        let body = result.structured_content.unwrap_or_default();
        let body = serde_json::from_value::<ErrorBody>(body).ok();
        let status = StatusCode::BAD_GATEWAY;
        let err = DownstreamError::Status {
            service: self.service,
            status,
            body,
            retry_after: None,
        };
        Answer::failed(err, Some(shared::attributes::mcp::TOOL_ERROR.to_owned()))
    }

    fn jsonrpc_error(&self, error: ErrorData) -> Answer {
        let code = error.code.0.to_string();
        let body = ErrorBody {
            error: format!("jsonrpc_{code}"),
            message: error.message.to_string(),
            trace_id: shared::telemetry::current_trace_id(),
        };
        let status = StatusCode::BAD_GATEWAY;
        let err = DownstreamError::Status {
            service: self.service,
            status,
            body: Some(body),
            retry_after: None,
        };
        Answer {
            rpc_code: Some(code.clone()),
            ..Answer::failed(err, Some(code))
        }
    }

    fn invalid(&self, reason: String) -> DownstreamError {
        DownstreamError::InvalidResponse {
            service: self.service,
            reason,
        }
    }

    pub fn unavailable(&self, reason: String) -> DownstreamError {
        let (service, url) = (self.service, self.url.to_owned());
        DownstreamError::Unavailable {
            service,
            url,
            reason,
        }
    }

    pub fn timed_out(&self) -> DownstreamError {
        let (service, url, after) = (self.service, self.url.to_owned(), self.timeout);
        DownstreamError::Timeout {
            service,
            url,
            after,
        }
    }
}
