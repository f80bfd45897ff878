//! Facts about OpenAI-compatible endpoints that both the embeddings client
//! (retrieval) and the chat client (llm-service) need for their spans.

/// `gen_ai.provider.name` for an OpenAI-compatible base URL.
///
/// The GenAI conventions define well-known values per provider; the API a
/// request speaks (OpenAI's) is not the provider. Known hosts map to their
/// well-known value; anything else (Ollama, vLLM, llama.cpp, a proxy) gets
/// the `override_name` if one is configured, else `openai_compatible`, a
/// custom value, as the conventions allow, rather than a misleading `openai`.
pub fn provider_name(base_url: &str, override_name: Option<&str>) -> String {
    if let Some(name) = override_name.filter(|n| !n.trim().is_empty()) {
        return name.trim().to_owned();
    }
    let host = host_port(base_url).0.to_ascii_lowercase();
    let known = [
        ("api.openai.com", "openai"),
        (".openai.azure.com", "azure.ai.openai"),
        ("api.groq.com", "groq"),
        ("api.deepseek.com", "deepseek"),
        ("api.mistral.ai", "mistral_ai"),
        ("api.x.ai", "x_ai"),
        ("generativelanguage.googleapis.com", "gcp.gemini"),
        ("api.anthropic.com", "anthropic"),
    ];
    known
        .iter()
        .find(|(suffix, _)| host == suffix.trim_start_matches('.') || host.ends_with(suffix))
        .map_or_else(
            || "openai_compatible".to_owned(),
            |(_, name)| (*name).to_owned(),
        )
}

/// An OpenAI-compatible API endpoint: the `async-openai` client, plus what
/// its spans need to say about it (`gen_ai.provider.name`, `server.address`,
/// `server.port`). Shared by the embeddings and the chat clients.
#[derive(Clone)]
pub struct Endpoint {
    pub client: async_openai::Client<async_openai::config::OpenAIConfig>,
    pub provider: String,
    pub host: String,
    pub port: u16,
    /// Kept only to redact it from provider error messages.
    api_key: Secret,
}

impl Endpoint {
    pub fn new(base_url: &str, api_key: &Secret, provider_override: Option<&str>) -> Self {
        let config = async_openai::config::OpenAIConfig::new()
            .with_api_base(base_url.trim_end_matches('/'))
            .with_api_key(api_key.expose());
        let (host, port) = host_port(base_url);
        Self {
            client: async_openai::Client::with_config(config),
            provider: provider_name(base_url, provider_override),
            host,
            port,
            api_key: api_key.clone(),
        }
    }

    /// The metric attributes of an `operation` on `request_model` at this
    /// endpoint (provider, `server.address`, `server.port`); the caller adds
    /// the outcome (`response_model` or `error_type`).
    pub fn operation<'a>(
        &'a self,
        operation: &'a str,
        request_model: &'a str,
    ) -> crate::metrics::GenAiOperation<'a> {
        crate::metrics::GenAiOperation {
            operation,
            provider: &self.provider,
            request_model,
            response_model: None,
            server_address: Some(&self.host),
            server_port: Some(self.port),
            error_type: None,
        }
    }

    /// Await one API call within `deadline`, classifying its failure.
    ///
    /// async-openai retries 429, 5xx and refused connections (3 times, with
    /// backoff); the deadline bounds the whole call, retries included, so a
    /// retry never outlives the caller's own timeout.
    pub async fn call<T>(
        &self,
        deadline: std::time::Duration,
        call: impl std::future::Future<Output = Result<T, async_openai::error::OpenAIError>>,
    ) -> Result<T, ProviderError> {
        tokio::time::timeout(deadline, call)
            .await
            .map_err(|_| ProviderError::Timeout {
                provider: self.provider.clone(),
                after: deadline,
            })?
            .map_err(|err| self.error(err))
    }

    /// Classify an error the API reported outside [`call`](Self::call), such
    /// as one arriving mid-stream.
    pub fn error(&self, err: async_openai::error::OpenAIError) -> ProviderError {
        ProviderError::from_openai(&self.provider, err, &self.api_key)
    }
}

/// `server.address` and `server.port` of a base URL (port defaulted by scheme).
pub fn host_port(base_url: &str) -> (String, u16) {
    let (scheme, rest) = base_url.split_once("://").unwrap_or(("http", base_url));
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let default_port = if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    };
    if let Some(stripped) = authority.strip_prefix('[') {
        // [ipv6]:port
        let (host, port) = stripped.split_once(']').unwrap_or((stripped, ""));
        let port = port.trim_start_matches(':').parse().unwrap_or(default_port);
        return (host.to_owned(), port);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) && !port.is_empty() => {
            (host.to_owned(), port.parse().unwrap_or(default_port))
        }
        _ => (authority.to_owned(), default_port),
    }
}

/// An API key as it may appear in logs: never. Debug-printing a config that
/// holds one prints this instead.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(<empty>)"
        } else {
            "Secret(<redacted>)"
        })
    }
}

/// The API key from `primary`, falling back to `OPENAI_API_KEY`.
pub fn api_key(primary: &str) -> Secret {
    let read = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    Secret(
        read(primary)
            .or_else(|| read("OPENAI_API_KEY"))
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_map_to_well_known_provider_names() {
        assert_eq!(provider_name("https://api.openai.com/v1", None), "openai");
        assert_eq!(
            provider_name("https://my-res.openai.azure.com/openai", None),
            "azure.ai.openai"
        );
        assert_eq!(
            provider_name("https://api.groq.com/openai/v1", None),
            "groq"
        );
        assert_eq!(
            provider_name("http://ollama:11434/v1", None),
            "openai_compatible"
        );
        assert_eq!(
            provider_name("http://ollama:11434/v1", Some("ollama")),
            "ollama"
        );
    }

    #[test]
    fn host_and_port_with_defaults() {
        assert_eq!(
            host_port("https://api.openai.com/v1"),
            ("api.openai.com".into(), 443)
        );
        assert_eq!(
            host_port("http://127.0.0.1:9000/v1"),
            ("127.0.0.1".into(), 9000)
        );
        assert_eq!(host_port("http://[::1]:9000/v1"), ("::1".into(), 9000));
        assert_eq!(host_port("http://ollama/v1"), ("ollama".into(), 80));
    }

    #[test]
    fn secrets_never_debug_print() {
        let secret = Secret::new("sk-very-secret".into());
        assert!(!format!("{secret:?}").contains("sk-"));
        assert_eq!(secret.expose(), "sk-very-secret");
    }
}

/// Which OpenAI-compatible API failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Chat,
    Embeddings,
}

/// A failed call to an OpenAI-compatible API, classified for the error body,
/// `error.type` and the status we answer with. Messages never contain the
/// API key (see [`redact`]).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{provider} rejected the API key ({status}): {message}")]
    Unauthorized {
        provider: String,
        status: u16,
        message: String,
    },
    #[error("{provider} is rate limiting us: {message}")]
    RateLimited { provider: String, message: String },
    #[error("{provider} rejected the request ({status}): {message}")]
    Rejected {
        provider: String,
        status: u16,
        message: String,
    },
    #[error("{provider} failed ({status}): {message}")]
    Failed {
        provider: String,
        status: u16,
        message: String,
    },
    #[error("{provider} did not answer within {after:?}")]
    Timeout {
        provider: String,
        after: std::time::Duration,
    },
    #[error("{provider} is unreachable: {message}")]
    Unavailable { provider: String, message: String },
    #[error("{provider} sent a response we cannot read: {message}")]
    InvalidResponse { provider: String, message: String },
}

impl ProviderError {
    /// Classify an async-openai error. `key` is redacted from every message.
    pub fn from_openai(
        provider: &str,
        err: async_openai::error::OpenAIError,
        key: &Secret,
    ) -> Self {
        use async_openai::error::OpenAIError;
        let provider = provider.to_owned();
        match err {
            OpenAIError::ApiError(response) => {
                let status = response.status_code.as_u16();
                let message = redact(&response.api_error.to_string(), key);
                match status {
                    401 | 403 => Self::Unauthorized {
                        provider,
                        status,
                        message,
                    },
                    429 => Self::RateLimited { provider, message },
                    400..=499 => Self::Rejected {
                        provider,
                        status,
                        message,
                    },
                    _ => Self::Failed {
                        provider,
                        status,
                        message,
                    },
                }
            }
            OpenAIError::Reqwest(err) if err.is_timeout() => Self::Timeout {
                provider,
                after: std::time::Duration::ZERO,
            },
            OpenAIError::Reqwest(err) if err.is_decode() => Self::InvalidResponse {
                provider,
                message: redact(&err.to_string(), key),
            },
            OpenAIError::Reqwest(err) => Self::Unavailable {
                provider,
                message: redact(&err.to_string(), key),
            },
            OpenAIError::JSONDeserialize(err, _) => Self::InvalidResponse {
                provider,
                message: err.to_string(),
            },
            other => Self::InvalidResponse {
                provider,
                message: redact(&other.to_string(), key),
            },
        }
    }

    /// The stable machine code for a failure of `api`, in the caller's terms
    /// (`model_timeout`, `embeddings_unavailable`, `rate_limited`, ...; the
    /// table is `crate::http::error_codes`).
    pub fn code(&self, api: Api) -> &'static str {
        use Api::{Chat, Embeddings};
        match (api, self) {
            (_, Self::RateLimited { .. }) => "rate_limited",
            (Chat, Self::Unauthorized { .. }) => "model_auth_failed",
            (Chat, Self::Rejected { .. }) => "model_rejected",
            (Chat, Self::Failed { .. } | Self::Unavailable { .. }) => "model_unavailable",
            (Chat, Self::Timeout { .. }) => "model_timeout",
            (Chat, Self::InvalidResponse { .. }) => "model_invalid_response",
            (Embeddings, Self::Unauthorized { .. }) => "embeddings_auth_failed",
            (Embeddings, Self::Rejected { .. }) => "embeddings_rejected",
            (Embeddings, Self::Failed { .. } | Self::Unavailable { .. }) => {
                "embeddings_unavailable"
            }
            (Embeddings, Self::Timeout { .. }) => "embeddings_timeout",
            (Embeddings, Self::InvalidResponse { .. }) => "embeddings_invalid_response",
        }
    }

    /// The failure for an error body: what failed, without the provider's
    /// own message, which may quote the prompt (the span and the log line
    /// keep it, redacted).
    pub fn summary(&self) -> String {
        match self {
            Self::Unauthorized {
                provider, status, ..
            } => format!("{provider} rejected the API key ({status})"),
            Self::RateLimited { provider, .. } => format!("{provider} is rate limiting us"),
            Self::Rejected {
                provider, status, ..
            } => format!("{provider} rejected the request ({status})"),
            Self::Failed {
                provider, status, ..
            } => format!("{provider} failed ({status})"),
            Self::Timeout { .. } => self.to_string(),
            Self::Unavailable { provider, .. } => format!("{provider} is unreachable"),
            Self::InvalidResponse { provider, .. } => {
                format!("{provider} sent a response we cannot read")
            }
        }
    }

    /// What we answer our caller: the status of its code in the table
    /// (`crate::http::error_codes`), which every hop keeps: 504 on timeout;
    /// 503 when the provider asks us to back off, fails with a 5xx or cannot
    /// be reached (a later retry may succeed); 502 when it rejects our key
    /// or our request, or answers what we cannot read (a misconfiguration a
    /// retry does not fix). A chat and an embeddings failure of one kind
    /// have the same status.
    pub fn status(&self) -> actix_web::http::StatusCode {
        crate::http::error_codes::relayed(self.code(Api::Chat))
            .map_or(actix_web::http::StatusCode::BAD_GATEWAY, |entry| {
                entry.status
            })
    }
}

/// Remove `key`, and anything shaped like an OpenAI-style secret (`sk-...`),
/// from `message`. Provider error messages quote (masked) keys; we quote none.
pub fn redact(message: &str, key: &Secret) -> String {
    let mut out = if key.is_empty() {
        message.to_owned()
    } else {
        message.replace(key.expose(), "[redacted]")
    };
    while let Some(start) = out.find("sk-") {
        let end = out[start..]
            .find(|c: char| c.is_whitespace() || c == '.' || c == ',' || c == '"' || c == '\'')
            .map_or(out.len(), |i| start + i);
        out.replace_range(start..end, "[redacted]");
    }
    out
}

#[cfg(test)]
mod redact_tests {
    use super::*;

    #[test]
    fn every_failure_has_a_code_of_the_table_with_one_status_for_both_apis() {
        use actix_web::http::StatusCode;
        let p = || "provider".to_owned();
        let m = || "message".to_owned();
        let after = std::time::Duration::from_secs(1);
        let cases = [
            (
                ProviderError::Unauthorized {
                    provider: p(),
                    status: 401,
                    message: m(),
                },
                502,
            ),
            (
                ProviderError::RateLimited {
                    provider: p(),
                    message: m(),
                },
                503,
            ),
            (
                ProviderError::Rejected {
                    provider: p(),
                    status: 404,
                    message: m(),
                },
                502,
            ),
            (
                ProviderError::Failed {
                    provider: p(),
                    status: 500,
                    message: m(),
                },
                503,
            ),
            (
                ProviderError::Timeout {
                    provider: p(),
                    after,
                },
                504,
            ),
            (
                ProviderError::Unavailable {
                    provider: p(),
                    message: m(),
                },
                503,
            ),
            (
                ProviderError::InvalidResponse {
                    provider: p(),
                    message: m(),
                },
                502,
            ),
        ];
        for (err, status) in cases {
            assert_eq!(err.status(), StatusCode::from_u16(status).unwrap(), "{err}");
            for api in [Api::Chat, Api::Embeddings] {
                let entry = crate::http::error_codes::relayed(err.code(api))
                    .unwrap_or_else(|| panic!("{} is not in the table", err.code(api)));
                assert_eq!(entry.status, err.status(), "{}", entry.code);
            }
        }
    }

    #[test]
    fn keys_are_removed_from_messages() {
        let key = Secret::new("my-own-key-123".into());
        let message = "Incorrect API key provided: sk-abc***wxyz. Also my-own-key-123 leaked";
        let clean = redact(message, &key);
        assert!(
            !clean.contains("sk-abc") && !clean.contains("my-own-key-123"),
            "{clean}"
        );
        assert!(
            clean.contains("Incorrect API key provided: [redacted]."),
            "{clean}"
        );
    }
}
