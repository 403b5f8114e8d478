//! A bridge's probe: one request that tells whether the upstream accepts the bridge's key
//! (`GET /models` → 200 for OpenAI). brine sends it with a new key before storing it, and on
//! demand. Nothing in it is secret: the key travels in the bridge's sealed headers or URL.

use std::collections::BTreeMap;

use http::Method;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::ValidationError;

/// The request that tests a bridge's key, and the answers that mean "accepted".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    /// `GET` (default) or `HEAD`: a probe must not change anything upstream.
    #[serde(default = "default_method")]
    #[schema(example = "GET")]
    pub method: String,
    /// A path below the bridge's URL, as callers append one (`/models` under
    /// `https://api.openai.com/v1`); empty for the URL itself. It need not be in
    /// `allowed_paths`: only the owner sends it.
    #[serde(default)]
    #[schema(example = "/models")]
    pub path: String,
    /// The statuses that mean the key was accepted (default `[200]`). 401 and 403 always mean
    /// it was refused.
    #[serde(default = "default_accepted")]
    #[schema(example = json!([200]))]
    pub accepted: Vec<u16>,
    /// Values for the URL's `{{param}}` placeholders and extra query parameters, as a caller
    /// would send them. Stored in the clear: never put a key here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

fn default_method() -> String {
    "GET".into()
}

fn default_accepted() -> Vec<u16> {
    vec![200]
}

const MAX_PATH: usize = 512;
const MAX_ACCEPTED: usize = 20;
const MAX_PARAMS: usize = 20;
const MAX_PARAM_VALUE: usize = 1024;

impl Probe {
    /// Checks every field and spells the method in capitals.
    pub fn checked(mut self) -> Result<Self, ValidationError> {
        let invalid = |message: String| ValidationError::new("bridge", message);
        let method = self.method.to_ascii_uppercase();
        if method != "GET" && method != "HEAD" {
            return Err(invalid(format!(
                "probe.method is GET or HEAD (a probe must not change anything upstream): \
                 '{}' is not.",
                self.method
            )));
        }
        self.method = method;
        let path = &self.path;
        if !path.is_empty()
            && (!path.starts_with('/')
                || path.len() > MAX_PATH
                || path.contains("//")
                || path.split('/').any(|s| s == "." || s == "..")
                || path.contains(['?', '#', '%', '\\'])
                || path.chars().any(|c| c.is_control() || c.is_whitespace()))
        {
            return Err(invalid(format!(
                "probe.path is empty or a plain path starting with '/' (at most {MAX_PATH} \
                 characters, no '..', '?', '#' or '%'): '{path}' is not."
            )));
        }
        if self.accepted.is_empty() || self.accepted.len() > MAX_ACCEPTED {
            return Err(invalid(format!(
                "probe.accepted lists 1 to {MAX_ACCEPTED} HTTP statuses."
            )));
        }
        if let Some(bad) = self.accepted.iter().find(|s| !(100..=599).contains(*s)) {
            return Err(invalid(format!(
                "probe.accepted holds HTTP statuses (100 to 599): {bad} is not one."
            )));
        }
        if let Some(refusal) = self.accepted.iter().find(|s| matches!(s, 401 | 403)) {
            return Err(invalid(format!(
                "probe.accepted cannot hold {refusal}: 401 and 403 always mean the key was \
                 refused."
            )));
        }
        self.accepted.sort_unstable();
        self.accepted.dedup();
        if self.params.len() > MAX_PARAMS {
            return Err(invalid(format!(
                "probe.params holds at most {MAX_PARAMS} parameters."
            )));
        }
        for (name, value) in &self.params {
            let name_ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !name_ok || name == "select" {
                return Err(invalid(
                    "probe.params names are letters, digits, '_', '-' and '.' (and not \
                     'select')."
                        .into(),
                ));
            }
            if value.len() > MAX_PARAM_VALUE || value.chars().any(char::is_control) {
                return Err(invalid(format!(
                    "probe.params values are at most {MAX_PARAM_VALUE} bytes, without control \
                     characters."
                )));
            }
        }
        Ok(self)
    }

    /// The parsed method (GET or HEAD once checked).
    pub fn http_method(&self) -> Method {
        if self.method == "HEAD" {
            Method::HEAD
        } else {
            Method::GET
        }
    }

    /// Whether `status` means the key was accepted.
    pub fn accepts(&self, status: u16) -> bool {
        !matches!(status, 401 | 403) && self.accepted.contains(&status)
    }

    /// The request as a person reads it: `GET /models` (`GET /` for the URL itself).
    pub fn request_line(&self) -> String {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        format!("{} {path}", self.method)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn probe(value: serde_json::Value) -> Result<Probe, String> {
        let probe: Probe = serde_json::from_value(value).map_err(|e| e.to_string())?;
        probe.checked().map_err(|e| e.message)
    }

    #[test]
    fn defaults_are_get_the_url_and_200() {
        let p = probe(serde_json::json!({})).unwrap();
        assert_eq!((p.method.as_str(), p.path.as_str()), ("GET", ""));
        assert_eq!(p.accepted, vec![200]);
        assert_eq!(p.request_line(), "GET /");
        let p = probe(serde_json::json!({"method": "head", "path": "/v1/models",
                                         "accepted": [204, 200, 200]}))
        .unwrap();
        assert_eq!(p.request_line(), "HEAD /v1/models");
        assert_eq!(p.accepted, vec![200, 204]);
        assert!(p.accepts(204) && !p.accepts(401) && !p.accepts(500));
    }

    #[test]
    fn bad_probes_are_refused_with_a_reason() {
        for (bad, says) in [
            (serde_json::json!({"method": "POST"}), "GET or HEAD"),
            (serde_json::json!({"method": "DELETE"}), "GET or HEAD"),
            (serde_json::json!({"path": "models"}), "plain path"),
            (serde_json::json!({"path": "/a/../admin"}), "plain path"),
            (serde_json::json!({"path": "/a?key=1"}), "plain path"),
            (
                serde_json::json!({"path": "//evil.example/x"}),
                "plain path",
            ),
            (serde_json::json!({"accepted": []}), "1 to 20"),
            (serde_json::json!({"accepted": [99]}), "99 is not"),
            (
                serde_json::json!({"accepted": [200, 401]}),
                "cannot hold 401",
            ),
            (serde_json::json!({"accepted": [403]}), "cannot hold 403"),
            (
                serde_json::json!({"params": {"select": "x"}}),
                "not 'select'",
            ),
            (
                serde_json::json!({"params": {"a": "line\nbreak"}}),
                "control",
            ),
        ] {
            let message = probe(bad.clone()).unwrap_err();
            assert!(message.contains(says), "{bad}: {message}");
        }
        assert!(probe(serde_json::json!({"status": 200})).is_err());
    }
}
