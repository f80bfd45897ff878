//! The tool `search_documents` and the corpus documents as resources.
//!
//! The tool runs the same [`Retriever::retrieve`] as `POST /retrieve`, so
//! the same `retrieval`, `embeddings` and `search` spans open under the MCP
//! SERVER span. Its arguments and result are content: recorded, redacted,
//! only under content capture.
//!
//! A call the tool cannot start (an unknown tool, arguments missing or
//! mistyped, a value out of bounds) is a JSON-RPC error: `-32602`, invalid
//! params, naming the argument but never quoting its value (that would be
//! content). The 2025-11-25 specification (SEP-1303) also allows argument
//! errors as tool results with `isError: true`, so a model can read them
//! and try again; this tool's callers are programs, which act on a code. A
//! retrieval that fails (the store is down) is a tool result with
//! `isError: true`.

use std::sync::Arc;

use rmcp::model::{
    CallToolResult, ErrorData, Implementation, JsonObject, ListResourcesResult, ReadResourceResult,
    Resource, ResourceContents, ServerCapabilities, ServerConfig, Tool,
};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::dialects;
use shared::query;
use shared::redact::Content;
use shared::wire::{DEFAULT_TOP_K, ErrorBody, MAX_TOP_K, RetrieveResponse};
use tracing::Span;

use crate::chunker::Chunk;
use crate::retriever::{Retriever, body_message, error_code};

pub const TOOL_NAME: &str = "search_documents";
const TOOL_DESCRIPTION: &str =
    "Search the corpus: the passages that best match a query, with id, source, score and text";
/// Resource URIs: `corpus:///{source}`, the document's path in the corpus.
const RESOURCE_SCHEME: &str = "corpus:///";

/// The arguments of `search_documents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchArgs {
    query: String,
    top_k: Option<u32>,
}

/// A corpus document, served as a resource.
struct Document {
    source: String,
    title: String,
    text: String,
}

/// The retriever behind the tool, and the documents behind the resources.
pub struct SearchDocuments {
    retriever: Arc<Retriever>,
    documents: Vec<Document>,
}

impl SearchDocuments {
    /// `chunks`: the corpus as ingested; each source becomes one resource.
    pub fn new(retriever: Arc<Retriever>, chunks: &[Chunk]) -> Self {
        let mut documents: Vec<Document> = Vec::new();
        for chunk in chunks {
            match documents.last_mut() {
                Some(doc) if doc.source == chunk.source => {
                    doc.text.push_str("\n\n");
                    doc.text.push_str(&chunk.text);
                }
                _ => documents.push(Document {
                    source: chunk.source.clone(),
                    title: chunk.title.clone(),
                    text: chunk.text.clone(),
                }),
            }
        }
        Self {
            retriever,
            documents,
        }
    }

    /// The tool as `tools/list` describes it.
    pub fn tool() -> Tool {
        let input = json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "What to search for"},
                "top_k": {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K,
                          "default": DEFAULT_TOP_K, "description": "How many passages"}
            },
            "required": ["query"],
            "additionalProperties": false
        });
        let output = json!({
            "type": "object",
            "properties": {
                "contexts": {"type": "array", "items": {"type": "object", "properties": {
                    "id": {"type": "string"}, "source": {"type": "string"},
                    "score": {"type": "number"}, "text": {"type": "string"}}}},
                "embedder": {"type": "string"},
                "data_source": {"type": "string"}
            },
            "required": ["contexts"]
        });
        Tool::new(TOOL_NAME, TOOL_DESCRIPTION, as_object(input))
            .with_raw_output_schema(Arc::new(as_object(output)))
    }

    /// `search_documents`: validate, retrieve, answer as structured content
    /// and as text. Runs inside the request's MCP SERVER span.
    async fn search(&self, arguments: Option<JsonObject>) -> Result<CallToolResult, ErrorData> {
        let span = Span::current();
        let arguments = Value::Object(arguments.unwrap_or_default());
        dialects::tool_call_arguments(&span, &Content::capture_with(|| arguments.to_string()));
        let args: SearchArgs = serde_path_to_error::deserialize(arguments).map_err(|err| {
            let message = format!(
                "invalid arguments for {TOOL_NAME}: {}",
                without_values(&err)
            );
            ErrorData::invalid_params(message, None)
        })?;
        let invalid = |err: query::QueryError| ErrorData::invalid_params(err.to_string(), None);
        let query = query::validate(&args.query).map_err(invalid)?;
        let top_k = query::top_k(args.top_k).map_err(invalid)?;

        match self.retriever.retrieve(&query, top_k as usize).await {
            Ok(contexts) => {
                let found = json!(RetrieveResponse {
                    contexts,
                    embedder: self.retriever.embedder_name(),
                    data_source: self.retriever.collection().to_owned(),
                });
                dialects::tool_call_result(&span, &Content::capture_with(|| found.to_string()));
                Ok(CallToolResult::structured(found))
            }
            Err(err) => Ok(CallToolResult::structured_error(json!(ErrorBody {
                error: error_code(&err).to_owned(),
                message: body_message(&err),
                trace_id: shared::telemetry::current_trace_id(),
            }))),
        }
    }
}

impl SearchDocuments {
    /// What `initialize` answers: tools and resources.
    pub fn info() -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .build();
        let mut info = ServerConfig::new(capabilities);
        info.server_info = Implementation::new(crate::SERVICE_NAME, env!("CARGO_PKG_VERSION"));
        info.with_instructions(
            "Call search_documents to find passages of the ragtrace corpus; \
             read corpus:/// resources for whole documents.",
        )
    }

    /// `tools/call`: the one tool, or a JSON-RPC error for any other name.
    pub async fn call(
        &self,
        name: &str,
        arguments: Option<JsonObject>,
    ) -> Result<CallToolResult, ErrorData> {
        if name != TOOL_NAME {
            let message = format!("unknown tool: {name} (this server has {TOOL_NAME})");
            return Err(ErrorData::invalid_params(message, None));
        }
        self.search(arguments).await
    }

    /// `resources/list`: one resource per corpus document.
    pub fn resources(&self) -> ListResourcesResult {
        let resources = self.documents.iter().map(|doc| {
            Resource::new(
                format!("{RESOURCE_SCHEME}{}", doc.source),
                doc.source.clone(),
            )
            .with_title(doc.title.clone())
            .with_mime_type("text/plain")
        });
        ListResourcesResult::with_all_items(resources.collect())
    }

    /// `resources/read`: a document's text, as its passages were indexed
    /// (whitespace collapsed, headings left out), one paragraph each.
    pub fn read(&self, uri: &str) -> Result<ReadResourceResult, ErrorData> {
        let source = uri.strip_prefix(RESOURCE_SCHEME);
        let Some(doc) = self
            .documents
            .iter()
            .find(|d| Some(d.source.as_str()) == source)
        else {
            return Err(ErrorData::resource_not_found(
                format!("no such document: {uri}"),
                None,
            ));
        };
        let contents = ResourceContents::text(doc.text.clone(), uri.to_owned());
        Ok(ReadResourceResult::new(vec![contents]))
    }
}

/// The text of a tool result with `isError: true`: the `message` of its
/// structured error, else that the tool failed.
pub(crate) fn error_message(result: &CallToolResult) -> String {
    let structured = result.structured_content.as_ref();
    match structured
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
    {
        Some(message) => message.to_owned(),
        None => format!("{TOOL_NAME} failed"),
    }
}

fn as_object(value: Value) -> JsonObject {
    match value {
        Value::Object(object) => object,
        _ => unreachable!("a JSON object literal"),
    }
}

/// A deserialization error, said without the value it is about: where
/// (`top_k`), and what was wrong (`invalid type: string, expected u32`).
/// serde quotes the value (`string "3"`), and an argument is content.
fn without_values(err: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = err.path().to_string();
    let message = err.inner().to_string();
    let message = match message.split_once(": ") {
        Some((what @ ("invalid type" | "invalid value"), rest)) => {
            let (found, expected) = rest.rsplit_once(", expected ").unwrap_or((rest, "?"));
            let kind = found.split(' ').next().unwrap_or(found);
            format!("{what}: {kind}, expected {expected}")
        }
        _ => message,
    };
    match path.as_str() {
        "." => message,
        _ => format!("`{path}`: {message}"),
    }
}
