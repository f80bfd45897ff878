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
        // stdin closed before any request: nothing to serve.
        Err(err) => tracing::info!(error = %err, "MCP stdio: no session"),
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
    let (mut line, mut session_began) = (Vec::new(), false);
    while read_line(&mut stdin, &mut line, MAX_LINE_BYTES).await? {
        // Only the lines before the first request need a second look.
        let message = match session_began {
            true => Kind::Other,
            false => message_kind(&line),
        };
        match rejection(&line) {
            Some(error) => lines.send(error).await.map_err(std::io::Error::other)?,
            // rmcp ends the session on a notification or a response before
            // the first request: there is nothing to answer, so drop it.
            None if !session_began && message == Kind::Unasked => {
                tracing::warn!("MCP stdio: a notification or response before any request, dropped");
            }
            None => {
                session_began |= message == Kind::Request;
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

/// What a line is, as far as the start of a session goes.
#[derive(Debug, PartialEq, Eq)]
enum Kind {
    /// A JSON-RPC request: it gets an answer.
    Request,
    /// A notification or a response: it gets none.
    Unasked,
    /// Anything else (rmcp answers what is not JSON-RPC).
    Other,
}

fn message_kind(line: &[u8]) -> Kind {
    let Ok(serde_json::Value::Object(message)) = serde_json::from_slice(line) else {
        return Kind::Other;
    };
    let has = |key: &str| message.contains_key(key);
    match (has("method"), has("id")) {
        (true, true) => Kind::Request,
        (true, false) => Kind::Unasked,
        _ if has("result") || has("error") => Kind::Unasked,
        _ => Kind::Other,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], max: usize) -> Vec<Vec<u8>> {
        let mut reader = BufReader::with_capacity(4, input);
        let (mut line, mut out) = (Vec::new(), Vec::new());
        while read_line(&mut reader, &mut line, max).await.unwrap() {
            out.push(line.clone());
        }
        out
    }

    #[tokio::test]
    async fn lines_are_split_at_newlines_and_long_ones_cut_after_max_plus_one() {
        let read = lines(b"ab\n\nlonger line\nlast", 5).await;
        let read: Vec<&[u8]> = read.iter().map(Vec::as_slice).collect();
        assert_eq!(read, [&b"ab"[..], b"", b"longer", b"last"]);
    }

    #[test]
    fn only_what_rmcp_would_skip_is_answered_here() {
        let error = |line: &[u8]| {
            let answer: serde_json::Value = serde_json::from_slice(&rejection(line)?).unwrap();
            assert_eq!(answer["id"], serde_json::Value::Null);
            answer["error"]["code"].as_i64()
        };
        assert_eq!(error(b"not json"), Some(-32700));
        assert_eq!(error(br#"{"jsonrpc":"2.0","id":1,"#), Some(-32700));
        assert_eq!(error(&[b'x'; MAX_LINE_BYTES + 1]), Some(-32600));
        // JSON that is no JSON-RPC message is rmcp's to answer (-32600).
        assert_eq!(error(br#"{"not":"json-rpc"}"#), None);
        assert_eq!(error(br#"{"jsonrpc":"2.0","method":"ping","id":1}"#), None);
        assert_eq!(error(b"  "), None);
    }

    #[test]
    fn notifications_and_responses_are_told_from_requests() {
        let kind = |line: &str| message_kind(line.as_bytes());
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","id":1,"method":"initialize"}"#),
            Kind::Request
        );
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Kind::Unasked
        );
        assert_eq!(
            kind(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#),
            Kind::Unasked
        );
        assert_eq!(kind(r#"{"not":"json-rpc"}"#), Kind::Other);
        assert_eq!(kind("[1,2]"), Kind::Other);
    }
}
