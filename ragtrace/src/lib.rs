//! The `ragtrace` developer CLI's library: the process launcher, the OTLP
//! receiver and the console trace view. The end-to-end tests use the same
//! pieces.

pub mod launcher;
pub mod otlp;
pub mod tree;
