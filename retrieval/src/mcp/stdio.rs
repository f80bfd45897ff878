//! stdio (`ragtrace mcp`): newline-delimited JSON-RPC on stdin and stdout,
//! the transport desktop MCP hosts start a server with.
//!
//! rmcp's stdio transport skips a line that is not JSON (there is no id to
//! answer to, and the other SDKs do the same). This server answers it: a
//! JSON-RPC parse error (`-32700`, id `null`) on stdout, so a host, or a
//! person typing, sees what went wrong; a line over [`MAX_LINE_BYTES`] gets
//! `-32600`. Every other line passes through to rmcp unchanged. The pump
//! below owns stdin and stdout, so rmcp's answers and these errors never
//! interleave within a line. Logs go to stderr.

use std::sync::Arc;

use rmcp::ServiceExt;
use serde_json::json;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::{McpServer, SearchDocuments, Transport};

/// Longest line accepted: the same limit as an MCP request over HTTP.
pub const MAX_LINE_BYTES: usize = super::http::MAX_REQUEST_BYTES;

/// Serve MCP on this process's stdin and stdout until stdin closes.
pub async fn serve(search: Arc<SearchDocuments>) -> anyhow::Result<()> {
    let (rmcp_side, pump_side) = tokio::io::duplex(64 * 1024);
    let pump = tokio::spawn(pump(tokio::io::stdin(), tokio::io::stdout(), pump_side));
    let server = McpServer::new(search, Transport::Pipe);
    match server.serve(tokio::io::split(rmcp_side)).await {
        Ok(running) => {
            running.waiting().await?;
        }
        // stdin closed before a session began: nothing to serve.
        Err(err) => tracing::info!(error = %err, "MCP stdio session ended before it began"),
    }
    pump.await??;
    Ok(())
}

/// Copy stdin lines to rmcp (answering the ones it would skip) and rmcp's
/// lines to stdout, through one writer.
async fn pump(
    stdin: impl tokio::io::AsyncRead + Unpin,
    stdout: impl AsyncWrite + Unpin + Send + 'static,
    rmcp: tokio::io::DuplexStream,
) -> std::io::Result<()> {
    let (from_rmcp, mut to_rmcp) = tokio::io::split(rmcp);
    let (lines, outbox) = mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(write_lines(outbox, stdout));

    let answers = lines.clone();
    let relay = tokio::spawn(async move {
        let mut from_rmcp = BufReader::new(from_rmcp);
        let mut line = Vec::new();
        while read_line(&mut from_rmcp, &mut line, usize::MAX).await? {
            if answers.send(line.clone()).await.is_err() {
                break;
            }
        }
        Ok::<_, std::io::Error>(())
    });

    let mut stdin = BufReader::new(stdin);
    let mut line = Vec::new();
    while read_line(&mut stdin, &mut line, MAX_LINE_BYTES).await? {
        match rejection(&line) {
            Some(error) => lines.send(error).await.map_err(std::io::Error::other)?,
            None => {
                line.push(b'\n');
                to_rmcp.write_all(&line).await?;
            }
        }
    }
    // stdin closed: rmcp sees the end of its input and stops.
    to_rmcp.shutdown().await?;
    drop(lines);
    relay.await.map_err(std::io::Error::other)??;
    writer.await.map_err(std::io::Error::other)?
}

/// The JSON-RPC error a line gets instead of reaching rmcp, if any.
fn rejection(line: &[u8]) -> Option<Vec<u8>> {
    let (code, message) = if line.len() > MAX_LINE_BYTES {
        (-32600, format!("message exceeds {MAX_LINE_BYTES} bytes"))
    } else if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    } else if let Err(err) = serde_json::from_slice::<serde::de::IgnoredAny>(line) {
        (
            -32700,
            format!("parse error: not a JSON-RPC message ({err})"),
        )
    } else {
        return None;
    };
    let error = json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}});
    Some(error.to_string().into_bytes())
}

async fn write_lines(
    mut lines: mpsc::Receiver<Vec<u8>>,
    mut out: impl AsyncWrite + Unpin,
) -> std::io::Result<()> {
    while let Some(mut line) = lines.recv().await {
        line.push(b'\n');
        out.write_all(&line).await?;
        out.flush().await?;
    }
    Ok(())
}

/// Read one line, without its `\n`, into `line`; `false` at the end of
/// input. Of a line longer than `max`, only the first `max + 1` bytes are
/// kept (enough to tell it is too long); the rest is read and dropped.
async fn read_line(
    reader: &mut (impl AsyncBufRead + Unpin),
    line: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<bool> {
    line.clear();
    let mut read_any = false;
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(read_any);
        }
        read_any = true;
        let (chunk, used, done) = match buffer.iter().position(|&b| b == b'\n') {
            Some(end) => (&buffer[..end], end + 1, true),
            None => (buffer, buffer.len(), false),
        };
        let room = max.saturating_add(1).saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        reader.consume(used);
        if done {
            return Ok(true);
        }
    }
}
