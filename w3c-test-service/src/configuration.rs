//! Settings from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use shared::config::{self, ConfigError};

/// Not 7777: that is where the W3C harness itself listens for the callbacks
/// (its `HARNESS_PORT` default). 5000 is the port the suite's README uses
/// for the service under test.
pub const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:5000";

/// Per callback. The harness gives a whole test case 5 s by default
/// (`HARNESS_TIMEOUT`), so one hung callback must fail well before that.
pub const DEFAULT_CALLBACK_TIMEOUT_MS: u64 = 3_000;

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen_addr: SocketAddr,
    /// `CALLBACK_TIMEOUT_MS`: how long one outbound call may take.
    pub callback_timeout: Duration,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen_addr: config::listen_addr(DEFAULT_LISTEN_ADDR)?,
            callback_timeout: config::env_millis(
                "CALLBACK_TIMEOUT_MS",
                DEFAULT_CALLBACK_TIMEOUT_MS,
            )?,
        })
    }
}
