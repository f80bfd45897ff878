//! The `ragtrace` developer CLI's library: the process launcher, the OTLP
//! receiver, the console trace view and the benchmark. The end-to-end tests
//! use the same pieces.

pub mod bench;
pub mod launcher;
pub mod otlp;
pub mod tree;
