mod test;

pub use test::{MAX_CALLS, Step, Steps, TestError, test};

/// How the outbound calls are made.
pub struct CallSettings {
    pub timeout: std::time::Duration,
}
