//! A bridge's configuration: the secret part (URL, headers, fallbacks), sealed like any record
//! value, and the policy (methods, origins, params, paths, timeouts), which holds nothing secret
//! and is stored in the clear so the owner can always see it.

use std::collections::BTreeMap;

use axum::http::{HeaderName, HeaderValue, Method};
use brine_bridge::template::{ParamSpec, UrlTemplate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};

/// What the owner sends to create or replace a bridge.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BridgeBody {
    /// The upstream URL, with optional `{{param}}` placeholders in its path and query.
    #[schema(example = "https://api.openai.com/v1")]
    pub url: String,
    /// Headers added to every upstream call, replacing any the caller sent.
    #[serde(default)]
    #[schema(example = json!({"Authorization": "Bearer sk-..."}))]
    pub headers: BTreeMap<String, String>,
    /// Tried in order when the upstream fails (connection error, timeout or 5xx); at most
    /// [`MAX_FALLBACKS`].
    #[serde(default)]
    pub fallback_urls: Vec<String>,
    #[serde(flatten)]
    pub policy: BridgePolicy,
}

/// The part of a bridge that is not secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BridgePolicy {
    /// Methods callers may use (default `["GET"]`).
    pub allowed_methods: Vec<String>,
    /// Browser origins allowed to call, exact match (`https://app.example.com`). A request without
    /// `Origin` (curl, a server) is not affected: CORS is browser hygiene, not authentication.
    pub allowed_origins: Vec<String>,
    /// Declared `{{param}}` names, filled from the caller's query parameters.
    #[schema(value_type = Vec<Object>)]
    pub params: Vec<ParamSpec>,
    /// Path prefixes a caller may append: `/r/{uuid}/chat/completions`.
    pub allowed_paths: Vec<String>,
    /// Time to wait for the upstream's answer to start, per hop.
    pub timeout_ms: u64,
    /// Time for the whole answer, body included.
    pub total_timeout_ms: u64,
    /// Try fallbacks for POST and PATCH too (they may then run twice upstream).
    pub fallback_non_idempotent: bool,
    /// Upstream calls in flight at once through this bridge (on one node); more get 503.
    pub max_concurrent: u32,
    /// Let caller paths under `allowed_paths` carry `;` path parameters (`/files;v=2`). Off by
    /// default: servers such as Tomcat and Spring drop them before routing, so `/public/..;/admin`
    /// would reach `/admin`.
    pub allow_path_params: bool,
}

impl Default for BridgePolicy {
    fn default() -> Self {
        Self {
            allowed_methods: vec!["GET".into()],
            allowed_origins: Vec::new(),
            params: Vec::new(),
            allowed_paths: Vec::new(),
            timeout_ms: 30_000,
            total_timeout_ms: 300_000,
            fallback_non_idempotent: false,
            max_concurrent: 64,
            allow_path_params: false,
        }
    }
}

/// The secret part, sealed as the record's payload.
#[derive(Serialize, Deserialize)]
pub struct BridgeSecrets {
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub fallback_urls: Vec<String>,
}

/// Fallback URLs a bridge may have: one call makes at most `1 + MAX_FALLBACKS` upstream
/// attempts, so a record's rate limits and quota bound what its upstreams see.
pub const MAX_FALLBACKS: usize = 3;

impl BridgeSecrets {
    /// Checks what only new or replaced bridges must obey (bridges stored before a rule existed
    /// keep working; see [`Bridge::compile`]).
    pub fn check_new(&self) -> ApiResult<()> {
        if self.fallback_urls.len() > MAX_FALLBACKS {
            return Err(ApiError::bad_request(format!(
                "fallback_urls: at most {MAX_FALLBACKS} fallback URLs are allowed."
            )));
        }
        Ok(())
    }

    /// Stored fallbacks beyond [`MAX_FALLBACKS`], which calls never try.
    pub fn unused_fallbacks(&self) -> usize {
        self.fallback_urls.len().saturating_sub(MAX_FALLBACKS)
    }
}

/// A bridge ready to forward: parsed templates, headers and policy.
pub struct Bridge {
    pub policy: BridgePolicy,
    /// The primary URL first, then at most [`MAX_FALLBACKS`] fallbacks.
    pub hops: Vec<UrlTemplate>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Every stored secret value, for scrubbing answers.
    pub secrets: Vec<String>,
}

const MAX_TIMEOUT_MS: u64 = 3_600_000;

/// Stored headers whose values are not secret (scrubbing them would damage ordinary answers,
/// such as a `Content-Type` equal to a stored `Accept`). Every other stored value is a secret.
const BENIGN_HEADERS: &[&str] = &[
    "accept",
    "accept-language",
    "content-type",
    "user-agent",
    "cache-control",
    "x-requested-with",
];

impl BridgePolicy {
    /// The allowed methods, parsed. Cheap: this runs on every call, while the rest of
    /// [`Self::validate`] ran when the policy was stored.
    pub fn methods(&self) -> ApiResult<Vec<Method>> {
        if self.allowed_methods.is_empty() {
            return Err(ApiError::bad_request(
                "allowed_methods must list at least one method.",
            ));
        }
        let mut methods = Vec::with_capacity(self.allowed_methods.len());
        for m in &self.allowed_methods {
            let method = Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| ApiError::bad_request(format!("'{m}' is not an HTTP method.")))?;
            if method == Method::OPTIONS || method == Method::CONNECT || method == Method::TRACE {
                return Err(ApiError::bad_request(format!(
                    "{method} cannot be forwarded (brine answers OPTIONS preflights itself)."
                )));
            }
            methods.push(method);
        }
        Ok(methods)
    }

    /// Checks every field; a stored policy has passed this.
    pub fn validate(&self) -> ApiResult<Vec<Method>> {
        let methods = self.methods()?;
        for origin in &self.allowed_origins {
            check_origin(origin)?;
        }
        for path in &self.allowed_paths {
            if !path.starts_with('/')
                || path.contains("//")
                || path.split('/').any(|s| s == "." || s == "..")
                || path.contains(['?', '#', '%', '\\'])
                || path.chars().any(char::is_control)
            {
                return Err(ApiError::bad_request(format!(
                    "allowed_paths entries are plain paths starting with '/': '{path}' is not."
                )));
            }
        }
        if self.max_concurrent == 0 || self.max_concurrent > 10_000 {
            return Err(ApiError::bad_request(
                "max_concurrent must be between 1 and 10000.",
            ));
        }
        for (name, ms) in [
            ("timeout_ms", self.timeout_ms),
            ("total_timeout_ms", self.total_timeout_ms),
        ] {
            if ms == 0 || ms > MAX_TIMEOUT_MS {
                return Err(ApiError::bad_request(format!(
                    "{name} must be between 1 and {MAX_TIMEOUT_MS}."
                )));
            }
        }
        Ok(methods)
    }
}

/// An origin is `scheme://host[:port]`, nothing more; `null` and wildcards are never allowed.
fn check_origin(origin: &str) -> ApiResult<()> {
    let bad = || {
        ApiError::bad_request(format!(
            "allowed_origins entries look like https://app.example.com (no path, no wildcard): \
             '{origin}' is not."
        ))
    };
    let parsed = url::Url::parse(origin).map_err(|_| bad())?;
    let canonical = parsed.origin().ascii_serialization();
    if !matches!(parsed.scheme(), "http" | "https") || canonical != origin {
        return Err(bad());
    }
    Ok(())
}

impl Bridge {
    /// Checks and compiles a bridge; every problem is a 400 that names the field, never a value.
    /// Fallbacks beyond [`MAX_FALLBACKS`] (stored before that limit existed) are left out.
    pub fn compile(secrets: &BridgeSecrets, policy: BridgePolicy) -> ApiResult<Self> {
        policy.validate()?;
        let fallbacks = &secrets.fallback_urls[..secrets.fallback_urls.len().min(MAX_FALLBACKS)];
        let mut hops = Vec::with_capacity(1 + fallbacks.len());
        for (i, url) in std::iter::once(&secrets.url).chain(fallbacks).enumerate() {
            let template = UrlTemplate::parse(url, &policy.params).map_err(|e| {
                let field = if i == 0 {
                    "url".to_owned()
                } else {
                    format!("fallback_urls[{}]", i - 1)
                };
                ApiError::bad_request(format!("{field}: {e}"))
            })?;
            hops.push(template);
        }
        let mut headers = Vec::with_capacity(secrets.headers.len());
        let mut values = Vec::new();
        for (name, value) in &secrets.headers {
            let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ApiError::bad_request(format!("'{name}' is not a valid header name."))
            })?;
            let mut value_header = HeaderValue::from_str(value).map_err(|_| {
                ApiError::bad_request(format!("The value of header '{name}' is not valid."))
            })?;
            value_header.set_sensitive(true);
            if !BENIGN_HEADERS.contains(&header.as_str()) {
                values.push(value.clone());
            }
            headers.push((header, value_header));
        }
        values.extend(url_secrets(
            std::iter::once(&secrets.url).chain(&secrets.fallback_urls),
        ));
        Ok(Self {
            policy,
            hops,
            headers,
            secrets: values,
        })
    }
}

/// The parts of stored URLs that may be secret: query values (API keys in `?key=...`), user
/// info (`https://sk_live_...@api.stripe.com/` sends the key as Basic auth), and long path
/// segments.
fn url_secrets<'a>(urls: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut out = Vec::new();
    for url in urls {
        let Ok(parsed) = url::Url::parse(url) else {
            continue;
        };
        // As written in the URL and as sent (percent-decoded).
        for part in [Some(parsed.username()), parsed.password()]
            .into_iter()
            .flatten()
        {
            if part.is_empty() {
                continue;
            }
            out.push(part.to_owned());
            let decoded = percent_encoding::percent_decode_str(part).decode_utf8_lossy();
            if decoded != part {
                out.push(decoded.into_owned());
            }
        }
        // Keys in paths (`/bot<token>/sendMessage`): long segments that hold a digit.
        for segment in parsed.path_segments().into_iter().flatten() {
            let templated = segment.contains("%7B");
            if segment.len() >= 16 && segment.bytes().any(|b| b.is_ascii_digit()) && !templated {
                out.push(segment.to_owned());
            }
        }
        for (_, value) in parsed.query_pairs() {
            if !value.contains("{{") {
                out.push(value.into_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(url: &str, fallbacks: usize) -> BridgeSecrets {
        BridgeSecrets {
            url: url.into(),
            headers: BTreeMap::new(),
            fallback_urls: (0..fallbacks)
                .map(|i| format!("https://fallback-{i}.example/v1"))
                .collect(),
        }
    }

    #[test]
    fn new_bridges_have_at_most_max_fallbacks_and_old_ones_use_the_first() {
        assert!(
            secrets("https://api.example/v1", MAX_FALLBACKS)
                .check_new()
                .is_ok()
        );
        let legacy = secrets("https://api.example/v1", MAX_FALLBACKS + 4);
        assert!(legacy.check_new().is_err());
        assert_eq!(legacy.unused_fallbacks(), 4);
        let bridge = Bridge::compile(&legacy, BridgePolicy::default()).unwrap();
        assert_eq!(bridge.hops.len(), 1 + MAX_FALLBACKS);
        let last = bridge.hops.last().unwrap().render(&|_| None).unwrap();
        assert_eq!(last.host_str(), Some("fallback-2.example"));
    }

    #[test]
    fn every_part_of_stored_user_info_is_a_secret() {
        let found = url_secrets(
            [
                "https://sk_live_user%2Bname@api.example/".to_owned(),
                "https://user:pass%20word-long@api.example/".to_owned(),
            ]
            .iter(),
        );
        for expected in [
            "sk_live_user%2Bname",
            "sk_live_user+name",
            "user",
            "pass%20word-long",
            "pass word-long",
        ] {
            assert!(found.iter().any(|s| s == expected), "{expected}: {found:?}");
        }
    }
}
