//! The model behind `/generate`, chosen once at startup from the settings
//! and shared by every worker.

use crate::configuration::Settings;
use crate::generator::GeneratorConfig;
use crate::remote::RemoteChat;

/// The model behind `/generate`.
pub enum Model {
    /// The offline extractive generator (embedded default).
    Offline(GeneratorConfig),
    /// An OpenAI-compatible chat completions API.
    Remote(Box<RemoteChat>),
}

impl Model {
    /// The remote API when `LLM_BASE_URL` and `LLM_MODEL` are set, the
    /// offline generator otherwise.
    pub fn from_settings(settings: &Settings) -> Self {
        match &settings.remote {
            Some(remote) => Self::Remote(Box::new(RemoteChat::new(remote.clone()))),
            None => Self::Offline(settings.generator),
        }
    }
}
