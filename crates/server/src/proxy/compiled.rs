//! A bridge ready to forward: its secret part (URL, headers, fallbacks) decrypted and parsed,
//! with its policy. The secret part is sealed like any record value; the policy holds nothing
//! secret and lives in `brine_core::BridgePolicy`.

use std::collections::BTreeMap;

use axum::http::{HeaderName, HeaderValue};
use brine_bridge::template::UrlTemplate;
use brine_core::{BridgePolicy, ValidationError};
use serde::{Deserialize, Serialize};

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
    pub fn check_new(&self) -> Result<(), ValidationError> {
        if self.fallback_urls.len() > MAX_FALLBACKS {
            return Err(invalid(format!(
                "fallback_urls: at most {MAX_FALLBACKS} fallback URLs are allowed."
            )));
        }
        let mut names = std::collections::BTreeSet::new();
        for name in self.headers.keys() {
            if !names.insert(name.to_ascii_lowercase()) {
                return Err(invalid(format!(
                    "headers: '{name}' is given twice (header names are not case-sensitive)."
                )));
            }
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

fn invalid(message: String) -> ValidationError {
    ValidationError::new("bridge", message)
}

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

impl Bridge {
    /// Checks and compiles a bridge (its policy already checked); every problem names the field,
    /// never a value. Fallbacks beyond [`MAX_FALLBACKS`] (stored before that limit existed) are
    /// left out.
    pub fn compile(secrets: &BridgeSecrets, policy: BridgePolicy) -> Result<Self, ValidationError> {
        let fallbacks = &secrets.fallback_urls[..secrets.fallback_urls.len().min(MAX_FALLBACKS)];
        let mut hops = Vec::with_capacity(1 + fallbacks.len());
        for (i, url) in std::iter::once(&secrets.url).chain(fallbacks).enumerate() {
            let template = UrlTemplate::parse(url, &policy.params).map_err(|e| {
                let field = if i == 0 {
                    "url".to_owned()
                } else {
                    format!("fallback_urls[{}]", i - 1)
                };
                invalid(format!("{field}: {e}"))
            })?;
            hops.push(template);
        }
        let mut headers = Vec::with_capacity(secrets.headers.len());
        let mut values = Vec::new();
        for (name, value) in &secrets.headers {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(format!("'{name}' is not a valid header name.")))?;
            let mut value_header = HeaderValue::from_str(value)
                .map_err(|_| invalid(format!("The value of header '{name}' is not valid.")))?;
            value_header.set_sensitive(true);
            if !BENIGN_HEADERS.contains(&header.as_str()) {
                values.push(value.clone());
            }
            // Spellings of one name (stored before `check_new` refused them) are one header:
            // the last in the stored order wins, as it always did on the wire.
            match headers.iter_mut().find(|(n, _)| *n == header) {
                Some(same) => same.1 = value_header,
                None => headers.push((header, value_header)),
            }
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
        let bridge = Bridge::compile(&legacy, BridgePolicy::default().checked().unwrap()).unwrap();
        assert_eq!(bridge.hops.len(), 1 + MAX_FALLBACKS);
        let last = bridge.hops.last().unwrap().render(&|_| None).unwrap();
        assert_eq!(last.host_str(), Some("fallback-2.example"));
    }

    #[test]
    fn a_header_name_in_two_spellings_is_refused_and_old_ones_send_one_value() {
        let mut twice = secrets("https://api.example/v1", 0);
        twice.headers = BTreeMap::from([
            ("API-Key".to_owned(), "first-secret-value".to_owned()),
            ("api-key".to_owned(), "second-secret-value".to_owned()),
        ]);
        let refused = twice.check_new().unwrap_err();
        assert!(refused.message.contains("'api-key' is given twice"));
        assert!(!refused.message.contains("secret-value"));
        let bridge = Bridge::compile(&twice, BridgePolicy::default().checked().unwrap()).unwrap();
        assert_eq!(bridge.headers.len(), 1);
        assert_eq!(bridge.headers[0].1, "second-secret-value");
        // Both values stay secrets: an upstream echoing either is scrubbed.
        assert!(bridge.secrets.iter().any(|s| s == "first-secret-value"));
        assert!(bridge.secrets.iter().any(|s| s == "second-secret-value"));
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
