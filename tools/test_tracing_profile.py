#!/usr/bin/env python3
"""Tests for tools/tracing_profile.py: each sample is charged to the right
component, on a `perf script` excerpt written the way perf writes it.

Run:  python3 tools/test_tracing_profile.py     (CI: .ci/run)
"""

import io
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tracing_profile as tp  # noqa: E402


def sample(comm, *frames):
    body = "".join(f"\t    55d0c0ffee {frame}\n" for frame in frames)
    return f"{comm}  4242 \n{body}\n"


class Classify(unittest.TestCase):
    def charge(self, comm, *frames):
        [(_, parsed_comm, parsed)] = list(tp.samples(io.StringIO(sample(comm, *frames))))
        return tp.classify(parsed_comm, parsed)

    def test_the_allocator_under_the_layer_is_recording(self):
        self.assertEqual(
            self.charge(
                "actix-rt|system",
                "_int_malloc",
                "alloc::raw_vec::finish_grow",
                "<tracing_opentelemetry::layer::OpenTelemetryLayer<S,T> as tracing_subscriber::layer::Layer<S>>::on_new_span",
                "tracing::span::Span::new",
                "gateway::routes::chat::chat::{{closure}}",
            ),
            "recording",
        )

    def test_work_inside_a_span_is_the_services(self):
        self.assertEqual(
            self.charge(
                "actix-rt|system",
                "memchr::memchr",
                "serde_json::de::from_slice",
                "tracing::span::Span::in_scope",
            ),
            "service",
        )

    def test_export_thread_parts(self):
        thread = "OpenTelemetry.T"
        self.assertEqual(
            self.charge(thread, "otlp_fast::encode::Writer::bytes_always", "otlp_fast::http::ProtobufHttpExporter::send"),
            "encoding",
        )
        self.assertEqual(
            self.charge(thread, "entry_SYSCALL_64", "hyper::proto::h1::io::Buffered<T,B>::poll_flush"),
            "sending",
        )
        self.assertEqual(
            self.charge(thread, "shared::dialects::translate::translate", "shared::dialects::translate::Translate<E>::export"),
            "translate",
        )
        self.assertEqual(
            self.charge(
                thread,
                "_int_free",
                "core::ptr::drop_in_place<opentelemetry_sdk::trace::export::SpanData>",
                "<otlp_fast::http::ProtobufHttpExporter as opentelemetry_sdk::trace::export::SpanExporter>::export",
            ),
            "freeing",
        )
        self.assertEqual(self.charge(thread, "futex_wait", "std::sync::mpmc::array::Channel<T>::recv"), "processor")

    def test_metrics_hashing_opentelemetry_values_is_metrics(self):
        self.assertEqual(
            self.charge(
                "actix-rt|system",
                "<opentelemetry::common::KeyValue as core::hash::Hash>::hash",
                "opentelemetry_sdk::metrics::internal::ValueMap<A>::measure",
                "shared::metrics::Instruments::record_http_server_request",
            ),
            "metrics",
        )

    def test_per_request_divides_by_rate_and_requests(self):
        text = sample("actix-rt|system", "tracing_core::dispatcher::Dispatch::new_span") * 10
        us, _ = tp.per_request(io.StringIO(text), hz=1000, requests=100)
        self.assertEqual(us, {"recording": 100.0})  # 10 samples x 1 ms / 100 requests


if __name__ == "__main__":
    unittest.main()
