#!/usr/bin/env python3
"""Where the tracing CPU goes: a `perf script` profile, per component.

Reads the text of `perf script` (a profile taken with
`perf record -F <hz> -a --call-graph dwarf` while `ragtrace bench` drives
the pipeline) and charges every sample taken in one of the four services to
one component, in microseconds of CPU per request:

    recording   building the span: tracing's registry, the
                tracing-opentelemetry layer (new span, record, enter/exit,
                events), the OpenTelemetry API and the SDK span start
    processor   ending the span and handing it over: SDK span end,
                SpanData, our counting processor, the batch thread
    translate   the vendor keys derived at export (shared::dialects)
    encoding    SpanData to OTLP protobuf (otlp-fast, or the SDK exporter)
    sending     HTTP to the collector (reqwest, hyper, the syscalls)
    freeing     freeing the exported spans (memory the request threads
                allocated, freed on the export thread)
    logs        log lines
    propagation extract and inject (W3C headers, baggage)
    metrics     recording and exporting metrics
    service     everything else: the services' own work

Usage:
    perf record -F 499 --call-graph dwarf,16384 -p <the four services' pids> -- sleep 10
    perf script --no-inline -F comm,tid,ip,sym > traced.txt   # and untraced.txt
    tools/tracing_profile.py --hz 499 --requests N < traced.txt \
        --against untraced.txt --against-requests M

N and M are the requests served in each window (throughput x 10 s);
`docs/bench.md` has the whole recipe.

Each sample is charged by its deciding frame: the first frame, from the leaf
up, that is not the standard library, the allocator, a runtime or the
kernel. So a `malloc` under `on_new_span` is the span's, and a syscall
under the exporter is sending.
"""

import argparse
import collections
import re
import sys

# Each sample is charged by the first frame, from the leaf up, that is not
# the standard library, the allocator or the kernel (a `malloc` under
# `on_new_span` is the span's; a syscall under the exporter is sending).
GENERIC_CRATES = {
    "core", "alloc", "std", "str", "char", "[u8]", "[T]", "usize", "u8", "sharded_slab", "hashbrown",
    "parking_lot", "parking_lot_core", "lock_api", "crossbeam_channel", "crossbeam_utils",
    "once_cell", "tokio", "mio", "bytes", "futures_util", "futures_core", "pin_project_lite",
    "thread_local", "smallvec", "memchr", "rand", "rand_core", "rand_chacha",
}


def crate_of(frame):
    """The first path segment of a Rust frame (`<a::B as c::D>::f` is `a`),
    or None for frames without a path: the kernel, libc, inlined helpers."""
    name = frame.lstrip("<&").removeprefix("mut ").removeprefix("dyn ").lstrip("<&[(")
    path = re.split(r"[<\s]", name, maxsplit=1)[0].replace(">::", "::")
    if "::" not in path:
        return None
    return path.split("::", 1)[0]


# Components whose code calls into others (metrics hash OpenTelemetry
# `KeyValue`s): charged when any frame of the stack is theirs.
ANYWHERE = [
    # Freeing a batch of spans on the export thread (memory the request
    # threads allocated).
    ("freeing", re.compile(r"drop_in_place<.*(SpanData|opentelemetry::common::(KeyValue|Value))")),
    ("metrics", re.compile(r"opentelemetry_sdk::metrics|shared::metrics")),
    ("logs", re.compile(r"tracing_subscriber::fmt|shared::logs")),
    ("propagation", re.compile(r"shared::propagation::(inject|extract)|TextMapCompositePropagator")),
]
# (component, pattern on the deciding frame), first match wins.
RULES = [
    ("translate", re.compile(r"shared::dialects::translate")),
    ("encoding", re.compile(r"otlp_fast::encode|opentelemetry_proto|prost::|opentelemetry_otlp::.*(transform|encode)")),
    ("sending", re.compile(r"otlp_fast::http|\breqwest::|\bhyper::|\bhyper_util::|\bh2::|opentelemetry_otlp::")),
    ("processor", re.compile(r"opentelemetry_sdk::trace::(span_processor|span::Span.*(end|drop|Drop)|export)|export_stats|CountingProcessor|CountingExporter")),
    ("propagation", re.compile(r"propagation|shared::w3c|opentelemetry::baggage")),
    ("metrics", re.compile(r"opentelemetry_sdk::metrics|shared::metrics|opentelemetry::metrics")),
    ("logs", re.compile(r"tracing_subscriber::fmt|shared::logs")),
    ("recording", re.compile(
        r"tracing_opentelemetry|tracing_subscriber|tracing_core::|^<?tracing::|tracing_actix_web|"
        r"opentelemetry_sdk::trace|^<?opentelemetry::|shared::server::ServerSpan|shared::client::Call::span|"
        r"shared::propagation::record_baggage|shared::dialects|shared::telemetry::record_error")),
]
DEMANGLE_HASH = re.compile(r"::h[0-9a-f]{16}")
EXPORT_THREADS = ("OpenTelemetry.T", "reqwest-interna")  # comm is cut at 15 bytes


def deciding_frame(frames):
    for frame in frames:
        crate = crate_of(frame)
        if crate is None or crate in GENERIC_CRATES:
            continue
        return frame
    return ""


def classify(comm, frames):
    for component, pattern in ANYWHERE:
        if component == "freeing" and not comm.startswith(EXPORT_THREADS):
            continue
        if any(pattern.search(frame) for frame in frames):
            return component
    frame = deciding_frame(frames)
    for component, pattern in RULES:
        if pattern.search(frame):
            return component
    if comm.startswith(EXPORT_THREADS):
        return "sending" if comm.startswith("reqwest") else "processor"
    return "service"


def samples(lines):
    """(process, comm, frames) for each sample of `perf script`'s output."""
    header, frames = None, []
    for line in lines:
        if not line.strip():
            if header:
                yield header[0], header[1], frames
            header, frames = None, []
        elif not line[0].isspace():
            comm = line.split(maxsplit=1)[0] if line.split() else ""
            header = (comm, comm)
        else:
            parts = line.split(maxsplit=1)
            frames.append(DEMANGLE_HASH.sub("", parts[1] if len(parts) > 1 else ""))
    if header:
        yield header[0], header[1], frames


def per_request(lines, hz, requests):
    """Microseconds of CPU per request for each component, and the samples
    behind each deciding frame."""
    counts = collections.Counter()
    deciders = collections.Counter()
    for _, comm, frames in samples(lines):
        component = classify(comm, frames)
        counts[component] += 1
        deciders[(component, deciding_frame(frames).strip()[:110])] += 1
    us = {component: n * 1e6 / hz / requests for component, n in counts.items()}
    return us, deciders


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hz", type=float, required=True, help="perf record -F")
    parser.add_argument("--requests", type=float, required=True, help="requests in the window")
    parser.add_argument("--against", help="a profile of the untraced pipeline (perf script text)")
    parser.add_argument("--against-requests", type=float, help="requests in its window")
    parser.add_argument("--top", type=int, default=0, help="also list the N busiest frames")
    args = parser.parse_args()
    us, deciders = per_request(sys.stdin, args.hz, args.requests)
    base = {}
    if args.against:
        if not args.against_requests:
            parser.error("--against needs --against-requests")
        with open(args.against) as lines:
            base, _ = per_request(lines, args.hz, args.against_requests)
    print(f"{'component':12} {'us/request':>11}" + (f" {'untraced':>9} {'traced-untraced':>16}" if base else ""))
    for component in sorted(set(us) | set(base), key=lambda c: -(us.get(c, 0) - base.get(c, 0))):
        line = f"{component:12} {us.get(component, 0):11.1f}"
        if base:
            line += f" {base.get(component, 0):9.1f} {us.get(component, 0) - base.get(component, 0):+16.1f}"
        print(line)
    total = sum(us.values())
    line = f"{'total':12} {total:11.1f}"
    if base:
        line += f" {sum(base.values()):9.1f} {total - sum(base.values()):+16.1f}"
    print(line)
    if args.top:
        print("\nthe deciding frames that took the most samples:")
        for (component, frame), count in deciders.most_common(args.top):
            print(f"  {count:6} {component:12} {frame}")


if __name__ == "__main__":
    main()
