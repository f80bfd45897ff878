//! `mcp.client.operation.duration` and `mcp.server.operation.duration`: how
//! long an MCP request took, seen from the caller and from the server
//! (MCP semantic conventions, `mcp.md`, status Development).
//!
//! Both are histograms in seconds, with the conventions' advisory buckets,
//! and the attributes of the request's span: `mcp.method.name`,
//! `gen_ai.tool.name` and `gen_ai.operation.name` for a tool call,
//! `mcp.protocol.version`, `network.transport`, on the client
//! `server.address` and `server.port`, and, when it failed, `error.type`
//! and (for a JSON-RPC error) `rpc.response.status_code`.

use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::metrics::Histogram;
use opentelemetry::{InstrumentationScope, KeyValue, global};

use super::METER_NAME;
use crate::attributes::{error, gen_ai, http, mcp};

pub const CLIENT_OPERATION_DURATION: &str = "mcp.client.operation.duration";
pub const SERVER_OPERATION_DURATION: &str = "mcp.server.operation.duration";

/// The conventions' advisory bucket boundaries for both histograms, in s.
pub const OPERATION_DURATION_BOUNDARIES: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Which end of the request a measurement comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// One finished MCP request, described by the attributes its metric carries:
/// the same values as on its span, except content and ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct McpOperation<'a> {
    pub method: &'a str,
    /// `gen_ai.tool.name`, for a `tools/call` of a tool the server has (a
    /// client could otherwise make a series per name it invents).
    pub tool: Option<&'a str>,
    pub protocol_version: Option<&'a str>,
    /// `tcp` or `pipe`.
    pub transport: &'a str,
    /// `error.type`: set exactly when the request failed.
    pub error_type: Option<&'a str>,
    /// `rpc.response.status_code`: the JSON-RPC error code, when there was one.
    pub rpc_code: Option<&'a str>,
    /// `server.address` and `server.port`, on the client side.
    pub server: Option<(&'a str, u16)>,
}

impl McpOperation<'_> {
    fn attributes(&self) -> Vec<KeyValue> {
        let mut attributes = vec![
            KeyValue::new(mcp::METHOD_NAME, self.method.to_owned()),
            KeyValue::new(mcp::NETWORK_TRANSPORT, self.transport.to_owned()),
        ];
        if let Some(tool) = self.tool {
            attributes.push(KeyValue::new(gen_ai::OPERATION_NAME, "execute_tool"));
            attributes.push(KeyValue::new(gen_ai::TOOL_NAME, tool.to_owned()));
        }
        if let Some(version) = self.protocol_version {
            attributes.push(KeyValue::new(mcp::PROTOCOL_VERSION, version.to_owned()));
        }
        if let Some(error_type) = self.error_type {
            attributes.push(KeyValue::new(error::TYPE, error_type.to_owned()));
        }
        if let Some(code) = self.rpc_code {
            attributes.push(KeyValue::new(
                mcp::RPC_RESPONSE_STATUS_CODE,
                code.to_owned(),
            ));
        }
        if let Some((address, port)) = self.server {
            attributes.push(KeyValue::new(http::SERVER_ADDRESS, address.to_owned()));
            attributes.push(KeyValue::new(http::SERVER_PORT, i64::from(port)));
        }
        attributes
    }
}

struct Instruments {
    client: Histogram<f64>,
    server: Histogram<f64>,
}

fn instruments() -> &'static Instruments {
    static INSTRUMENTS: OnceLock<Instruments> = OnceLock::new();
    INSTRUMENTS.get_or_init(|| {
        let scope = InstrumentationScope::builder(METER_NAME)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        let meter = global::meter_with_scope(scope);
        let histogram = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(OPERATION_DURATION_BOUNDARIES.to_vec())
                .build()
        };
        Instruments {
            client: histogram(
                CLIENT_OPERATION_DURATION,
                "The duration of the MCP request or notification as observed on the sender from the time it was sent until the response or ack is received.",
            ),
            server: histogram(
                SERVER_OPERATION_DURATION,
                "MCP request or notification duration as observed on the receiver from the time it was received until the result or ack is sent.",
            ),
        }
    })
}

/// Record one finished MCP request in the histogram of its `side`.
pub fn record(side: Side, operation: &McpOperation<'_>, duration: Duration) {
    let histogram = match side {
        Side::Client => &instruments().client,
        Side::Server => &instruments().server,
    };
    histogram.record(duration.as_secs_f64(), &operation.attributes());
}
