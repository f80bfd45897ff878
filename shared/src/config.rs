//! Small helpers for reading settings from the environment, with errors that
//! name the variable.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
    pub reason: String,
}

/// `name` parsed as `T`, or `default` when unset or empty.
pub fn env_or<T>(name: &'static str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(value) if !value.trim().is_empty() => {
            value.trim().parse().map_err(|err: T::Err| ConfigError {
                name,
                value,
                reason: err.to_string(),
            })
        }
        _ => Ok(default),
    }
}

/// `name` as a string, or `default`.
pub fn env_string(name: &'static str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// `LISTEN_ADDR`, or the service's default address.
pub fn listen_addr(default: &str) -> Result<SocketAddr, ConfigError> {
    env_or(
        "LISTEN_ADDR",
        default.parse().expect("default listen address is valid"),
    )
}

/// A duration given in milliseconds.
pub fn env_millis(name: &'static str, default_ms: u64) -> Result<Duration, ConfigError> {
    env_or(name, default_ms).map(Duration::from_millis)
}

/// `name`, when set and not blank.
pub fn env_opt(name: &'static str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}
