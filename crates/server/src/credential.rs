//! A credential read, after the gate's first stage: the value, shaped as the caller asked —
//! `{{param}}` placeholders filled from the query (only the names the owner declared), then
//! `select` on JSON values.

use brine_bridge::select::Selector;
use brine_core::CredentialPolicy;
use brine_limits::Decision;
use serde_json::value::RawValue;

use crate::access::{Credential, Found, GateError, Refusal};
use crate::audit::Outcome;

/// A successful read.
pub struct Reading {
    pub data: Box<RawValue>,
    /// The budget left under the record's rate limits, for the answer's headers.
    pub rate: Option<Decision>,
}

/// Reads the credential that `found` holds, with what the caller presented.
pub async fn read(
    found: Found,
    credential: Credential,
    query: Option<&str>,
) -> Result<Reading, GateError> {
    let params = found
        .record()
        .policy
        .credential()
        .cloned()
        .unwrap_or_default();
    let charged = found
        .admit()
        .await?
        .unlock(credential)
        .await?
        .charge()
        .await?;
    let value = charged.value()?;
    match answer(&value, &params, query) {
        Err(message) => {
            let refusal = Refusal::BadRequest(message);
            Err(charged.refuse(Outcome::Denied, refusal).await)
        }
        Ok(data) => {
            let rate = charged.rate().cloned();
            charged.finish(Outcome::Ok).await?;
            Ok(Reading { data, rate })
        }
    }
}

/// The value a read returns, as JSON: declared placeholders filled, then `select` applied. The
/// selection is handed on as the JSON text it is, never parsed again, so however deeply it nests
/// it cannot fail after the selection succeeded.
pub fn answer(
    value: &str,
    policy: &CredentialPolicy,
    query: Option<&str>,
) -> Result<Box<RawValue>, String> {
    let pairs: Vec<(String, String)> = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let filled;
    let value = if policy.params.is_empty() {
        value
    } else {
        filled = zeroize::Zeroizing::new(fill(value, &policy.params, &pairs)?);
        filled.as_str()
    };
    match pairs.iter().find(|(k, _)| k == "select") {
        None => serde_json::value::to_raw_value(value)
            .map_err(|_| "The value cannot be sent as JSON.".to_owned()),
        Some((_, expr)) => {
            let selector = Selector::parse(expr).map_err(|e| format!("select: {e}"))?;
            let selected = selector
                .apply(value.as_bytes())
                .map_err(|e| format!("select: {e} (select works on JSON values)"))?;
            // `apply` has validated its output as JSON.
            String::from_utf8(selected)
                .ok()
                .and_then(|text| RawValue::from_string(text).ok())
                .ok_or_else(|| "select: the selection is not valid JSON.".to_owned())
        }
    }
}

/// Replaces `{{name}}` for each declared name; other braces are left as they are.
fn fill(value: &str, params: &[String], pairs: &[(String, String)]) -> Result<String, String> {
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
                    .ok_or_else(|| format!("Missing query parameter '{name}'."))?;
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

    fn answer(
        value: String,
        policy: &CredentialPolicy,
        query: Option<&str>,
    ) -> Result<Box<RawValue>, String> {
        super::answer(&value, policy, query)
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
        assert!(err.contains("nested"), "{err}");
    }
}
