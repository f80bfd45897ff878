mod process;

pub use process::{ProcessError, process, process_stream};

use actix_web::{HttpResponse, web};
use shared::client::Downstream;

use crate::mcp::McpRetrieval;
use shared::http::routes::{probe, readiness};

pub struct Downstreams {
    pub retrieval: Downstream,
    pub llm_service: Downstream,
    /// Set with `RETRIEVAL_PROTOCOL=mcp`: retrieval is called as an MCP tool.
    pub retrieval_mcp: Option<McpRetrieval>,
}

/// Ready when both downstream services answer their liveness probe.
pub async fn readyz(
    client: web::Data<awc::Client>,
    downstreams: web::Data<Downstreams>,
) -> HttpResponse {
    let (retrieval, llm) = futures_util::join!(
        probe(&client, downstreams.retrieval.base_url()),
        probe(&client, downstreams.llm_service.base_url()),
    );
    readiness(&[("retrieval", retrieval), ("llm-service", llm)])
}
