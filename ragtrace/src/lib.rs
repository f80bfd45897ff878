//! The `ragtrace` developer CLI's library: the process launcher
//! ([`launcher`]), the OTLP receiver ([`receiver`]), the console trace view
//! ([`tree`]) and the benchmark ([`bench`](mod@bench)). `main.rs` is the
//! command line on top of them; the end-to-end tests (the `e2e` crate) use
//! the same pieces.

pub mod bench;
pub mod launcher;
pub mod receiver;
pub mod tree;
