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

/// `name` parsed as `T` when set, `None` when unset or blank.
pub fn env_parsed<T>(name: &'static str) -> Result<Option<T>, ConfigError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    env_opt(name)
        .map(|value| {
            value.trim().parse().map_err(|err: T::Err| ConfigError {
                name,
                reason: err.to_string(),
                value,
            })
        })
        .transpose()
}

/// Two variables that only make sense together (a base URL and a model):
/// both values, or `None` when neither is set; an error naming the missing
/// one when only one is.
pub fn env_pair(
    first: &'static str,
    second: &'static str,
) -> Result<Option<(String, String)>, ConfigError> {
    let missing = |name, other| ConfigError {
        name,
        value: String::new(),
        reason: format!("must be set when {other} is"),
    };
    match (env_opt(first), env_opt(second)) {
        (Some(a), Some(b)) => Ok(Some((a, b))),
        (None, None) => Ok(None),
        (Some(_), None) => Err(missing(second, first)),
        (None, Some(_)) => Err(missing(first, second)),
    }
}
