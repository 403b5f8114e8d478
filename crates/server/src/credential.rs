//! What a credential read can ask for beyond the stored value: `{{param}}` placeholders filled
//! from the caller's query parameters (only the names the owner declared), and `select` on JSON
//! values.

use brine_bridge::select::Selector;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{ApiError, ApiResult};

/// A credential's settings that are not secret (stored as JSON beside it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialPolicy {
    /// Names that `{{name}}` in the value may be filled with, from query parameters.
    pub params: Vec<String>,
}

impl CredentialPolicy {
    pub fn new(params: Vec<String>) -> ApiResult<Self> {
        for name in &params {
            let valid = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !valid || name == "select" {
                return Err(ApiError::bad_request(
                    "params are names of letters, digits, '_' and '-' (and not 'select').",
                ));
            }
        }
        Ok(Self { params })
    }

    pub fn of(stored: Option<&str>) -> Self {
        stored
            .and_then(|text| serde_json::from_str(text).ok())
            .unwrap_or_default()
    }
}

/// The value a read returns, as JSON: declared placeholders filled, then `select` applied. The
/// selection is handed on as the JSON text it is, never parsed again, so however deeply it nests
/// it cannot fail after the selection succeeded.
pub fn answer(
    value: String,
    policy: &CredentialPolicy,
    query: Option<&str>,
) -> ApiResult<Box<RawValue>> {
    let pairs: Vec<(String, String)> = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let value = if policy.params.is_empty() {
        value
    } else {
        fill(&value, &policy.params, &pairs)?
    };
    match pairs.iter().find(|(k, _)| k == "select") {
        None => serde_json::value::to_raw_value(&value).map_err(|_| ApiError::internal()),
        Some((_, expr)) => {
            let selector =
                Selector::parse(expr).map_err(|e| ApiError::bad_request(format!("select: {e}")))?;
            let selected = selector.apply(value.as_bytes()).map_err(|e| {
                ApiError::bad_request(format!("select: {e} (select works on JSON values)"))
            })?;
            // `apply` has validated its output as JSON.
            String::from_utf8(selected)
                .ok()
                .and_then(|text| RawValue::from_string(text).ok())
                .ok_or_else(|| ApiError::bad_request("select: the selection is not valid JSON."))
        }
    }
}

/// Replaces `{{name}}` for each declared name; other braces are left as they are.
fn fill(value: &str, params: &[String], pairs: &[(String, String)]) -> ApiResult<String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) if params.iter().any(|p| p == &after[..end]) => {
                let name = &after[..end];
                let value = pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str())
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("Missing query parameter '{name}'."))
                    })?;
                out.push_str(value);
                rest = &after[end + 2..];
            }
            _ => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn policy(names: &[&str]) -> CredentialPolicy {
        CredentialPolicy::new(names.iter().map(|s| s.to_string()).collect()).unwrap()
    }

    #[test]
    fn declared_placeholders_are_filled_and_others_kept() {
        let p = policy(&["db", "user"]);
        let v = answer(
            "postgres://{{user}}@h/{{db}}?x={{other}}".into(),
            &p,
            Some("db=app&user=ana"),
        )
        .unwrap();
        assert_eq!(v.get(), r#""postgres://ana@h/app?x={{other}}""#);
        assert!(answer("{{db}}".into(), &p, Some("user=x")).is_err());
        assert!(
            answer("{{DB}}".into(), &p, None).is_ok(),
            "names are case-sensitive"
        );
    }

    #[test]
    fn select_reads_json_values() {
        let p = CredentialPolicy::default();
        let v = answer(
            r#"{"key":"k1","region":"eu"}"#.into(),
            &p,
            Some("select=region"),
        )
        .unwrap();
        assert_eq!(v.get(), r#""eu""#);
        assert!(answer("not json".into(), &p, Some("select=a")).is_err());
        assert!(answer("{}".into(), &p, Some("select=%7B")).is_err());
    }

    #[test]
    fn deep_selections_are_bad_requests_not_failures() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        let p = CredentialPolicy::default();
        let ok = answer(nested(129), &p, Some("select=0")).unwrap();
        assert_eq!(ok.get(), nested(128));
        let err = answer(nested(130), &p, Some("select=0")).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(err.body.message.contains("nested"), "{}", err.body.message);
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "a b", "select", "ü"] {
            assert!(CredentialPolicy::new(vec![bad.into()]).is_err(), "{bad}");
        }
    }
}
