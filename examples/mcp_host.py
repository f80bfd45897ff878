"""An MCP host in Python whose tool call joins ragtrace's trace.

It starts `ragtrace mcp` over stdio, as a desktop MCP host would, opens a
CLIENT span for the tool call, and sends that span's context in the
request's `params._meta` (SEP-414: the W3C `traceparent`, `tracestate` and
`baggage`, unprefixed). retrieval's MCP SERVER span becomes its child: one
trace across two processes and two SDKs.

    pip install mcp==2.3.0 opentelemetry-sdk==1.45.2 \
        opentelemetry-exporter-otlp-proto-http==1.45.2
    OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 \
        python examples/mcp_host.py "What does the traceparent header contain?"

`RAGTRACE` names the ragtrace binary (default: `ragtrace` on the PATH). Both
processes export to `OTEL_EXPORTER_OTLP_ENDPOINT`. It prints one JSON line:
the trace id, the host span's id, and the passages found.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

TOOL = "search_documents"


async def search(tracer: trace.Tracer, question: str) -> dict:
    server = StdioServerParameters(
        command=os.environ.get("RAGTRACE", "ragtrace"),
        args=["mcp"],
        env=dict(os.environ),
    )
    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            # The MCP conventions' CLIENT span: `{mcp.method.name} {target}`.
            with tracer.start_as_current_span(
                f"tools/call {TOOL}",
                kind=trace.SpanKind.CLIENT,
                attributes={
                    "mcp.method.name": "tools/call",
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": TOOL,
                    "network.transport": "pipe",
                },
            ) as span:
                # Context crosses the wire here: into params._meta.
                meta: dict = {}
                propagate.inject(meta)
                result = await session.call_tool(
                    TOOL, {"query": question, "top_k": 3}, meta=meta
                )
                context = span.get_span_context()
                return {
                    "trace_id": format(context.trace_id, "032x"),
                    "span_id": format(context.span_id, "016x"),
                    "is_error": result.is_error,
                    "passages": [
                        p["source"] for p in (result.structured_content or {}).get("contexts", [])
                    ],
                }


def main() -> None:
    question = " ".join(sys.argv[1:]) or "What does the traceparent header contain?"
    provider = TracerProvider(resource=Resource.create({"service.name": "mcp-host"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    try:
        found = asyncio.run(search(provider.get_tracer("mcp-host"), question))
    finally:
        provider.shutdown()
    print(json.dumps(found))


if __name__ == "__main__":
    main()
