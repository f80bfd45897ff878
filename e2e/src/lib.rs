//! The end-to-end tests of the ragtrace pipeline, kept apart from the crates
//! they test. Each file in `tests/` starts the real binaries (gateway,
//! query-processor, retrieval, llm-service; `ragtrace ingest` where that is
//! the subject) as separate processes on free loopback ports, sends real
//! requests, and asserts only on what comes out: HTTP responses, logs, and
//! the OTLP spans and metrics the services' exporters send to a receiver
//! inside the test (`ragtrace::receiver`). `tests/support/` is the harness
//! that builds the binaries and starts them; `tests/snapshots/` holds the
//! exported attribute keys per span dialect, checked by `tests/dialects.rs`.
//! Run them with `cargo test -p e2e`. This library has no code of its own.
