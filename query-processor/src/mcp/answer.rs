//! What an MCP answer means for query-processor's caller: the passages, or
//! the [`DownstreamError`] that becomes its status and body, with the
//! `error.type` the CLIENT span records.

use actix_web::http::StatusCode;
use rmcp::model::ServerResult;
use rmcp::service::ServiceError;
use shared::error::ApiError;
use shared::http::downstream_error::DownstreamError;
use shared::wire::{ErrorBody, RetrieveResponse};

/// Where the call went, for the errors that name it.
pub(super) struct Peer<'a> {
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
    /// The session failed under the call (the server went away, or no
    /// longer knows it): open a new one.
    pub session_broken: bool,
}

impl Peer<'_> {
    pub fn answer(&self, answer: Result<ServerResult, ServiceError>) -> Answer {
        let service = self.service;
        let (result, error_type, rpc_code, session_broken) = match answer {
            Ok(ServerResult::CallToolResult(result)) if result.is_error != Some(true) => {
                let found = serde_json::from_value(result.structured_content.unwrap_or_default());
                let invalid = |err: serde_json::Error| DownstreamError::InvalidResponse {
                    service,
                    reason: err.to_string(),
                };
                (found.map_err(invalid), None, None, false)
            }
            // A tool error carries retrieval's error body as structured content.
            Ok(ServerResult::CallToolResult(result)) => {
                let body = result.structured_content.unwrap_or_default();
                let body = serde_json::from_value::<ErrorBody>(body).ok();
                let status = StatusCode::BAD_GATEWAY;
                let tool_error = Some(shared::attributes::mcp::TOOL_ERROR.to_owned());
                (
                    Err(DownstreamError::Status {
                        service,
                        status,
                        body,
                    }),
                    tool_error,
                    None,
                    false,
                )
            }
            Ok(_) => {
                let reason = "a tools/call answered with another result".to_owned();
                (
                    Err(DownstreamError::InvalidResponse { service, reason }),
                    None,
                    None,
                    false,
                )
            }
            Err(ServiceError::McpError(error)) => {
                let code = error.code.0.to_string();
                let body = ErrorBody {
                    error: format!("jsonrpc_{code}"),
                    message: error.message.to_string(),
                    trace_id: shared::telemetry::current_trace_id(),
                };
                let status = StatusCode::BAD_GATEWAY;
                let err = DownstreamError::Status {
                    service,
                    status,
                    body: Some(body),
                };
                (Err(err), Some(code.clone()), Some(code), false)
            }
            Err(ServiceError::Timeout { .. }) => (Err(self.timed_out()), None, None, false),
            Err(err) => (Err(self.unavailable(err.to_string())), None, None, true),
        };
        let error_type = match &result {
            Err(err) => error_type.or_else(|| Some(err.code().to_owned())),
            Ok(_) => None,
        };
        Answer {
            result,
            error_type,
            rpc_code,
            session_broken,
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
