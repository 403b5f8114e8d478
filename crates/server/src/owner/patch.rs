//! `PATCH /api/v1/records/{uuid}` with `{"bridge": {...}}`: a JSON merge patch (RFC 7396) of the
//! stored bridge, in the shape create takes (`BridgeBody`: url, headers, fallback_urls and the
//! policy's fields; a `probe` object replaces the stored probe whole). The stored bridge is
//! opened with the server slot (bridges are never sealed), patched here, and then checked and
//! sealed again exactly like a new one. (A sealed bridge cannot be opened: its patch starts from
//! its policy alone, so it must bring url and headers.)

use brine_core::RecordKind;
use brine_proto::BridgeBody;
use brine_store::Record;
use serde_json::{Map, Value};

use super::{OwnerError, OwnerResult, Owners};
use crate::proxy::compiled::BridgeSecrets;

/// Applies `patch` to `target` as RFC 7396 says: `null` removes, objects merge recursively, any
/// other value (arrays too) replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Spells each header the patch names as the stored bridge spells it, so that `authorization`
/// changes (or removes) a stored `Authorization` instead of adding a second one.
fn match_header_names(stored: &Value, patch: &mut Value) {
    let (Some(stored), Some(Value::Object(headers))) = (
        stored.get("headers").and_then(Value::as_object),
        patch.get_mut("headers"),
    ) else {
        return;
    };
    let renamed: Map<String, Value> = std::mem::take(headers)
        .into_iter()
        .map(|(name, value)| {
            let name = stored
                .keys()
                .find(|s| s.eq_ignore_ascii_case(&name))
                .cloned()
                .unwrap_or(name);
            (name, value)
        })
        .collect();
    *headers = renamed;
}

fn invalid(message: &str) -> OwnerError {
    OwnerError::invalid(message)
}

impl Owners {
    /// The bridge as it is stored, patched with `patch`; checked by the caller as on create.
    /// Also says whether its secret part (URL, headers, fallbacks: where a key lives) changed.
    pub(super) fn patched_bridge(
        &self,
        record: &Record,
        patch: Value,
    ) -> OwnerResult<(BridgeBody, bool)> {
        if record.kind != RecordKind::Bridge {
            return Err(invalid("A credential takes 'data', not 'bridge'."));
        }
        let Value::Object(_) = patch else {
            return Err(invalid(
                "'bridge' is a JSON merge patch: an object with the fields to change.",
            ));
        };
        let Some(policy) = record.policy.bridge() else {
            return Err(corrupt(record));
        };
        let secrets = if record.sealed {
            // The server cannot open a sealed bridge: its patch starts from the stored policy
            // and no URL or headers, so it must carry the whole secret part again.
            BridgeSecrets {
                url: String::new(),
                headers: Default::default(),
                fallback_urls: Vec::new(),
            }
        } else {
            let dek = self
                .vault
                .open_with_server(record)
                .map_err(OwnerError::from_vault)?;
            let plain = self
                .vault
                .decrypt(record, &dek)
                .map_err(OwnerError::from_vault)?;
            serde_json::from_str(&plain).map_err(|_| corrupt(record))?
        };
        let stored = BridgeBody {
            url: secrets.url,
            headers: secrets.headers,
            fallback_urls: secrets.fallback_urls,
            policy: policy.clone(),
        };
        let mut merged = serde_json::to_value(&stored).map_err(|_| corrupt(record))?;
        let mut patch = patch;
        match_header_names(&merged, &mut patch);
        // A probe is one request: a new one replaces the stored one whole, so that a parameter
        // or status left out is not kept from the old one.
        if patch.get("probe").is_some_and(Value::is_object)
            && let Some(fields) = merged.as_object_mut()
        {
            fields.remove("probe");
        }
        merge_patch(&mut merged, &patch);
        // serde's own message could quote a value from the patch (a header value is a secret).
        let patched: BridgeBody = serde_json::from_value(merged).map_err(|_| {
            invalid(
                "The patched bridge is not valid: url is a string, headers an object of strings \
                 (null removes one), fallback_urls and the allowed_* lists arrays of strings, \
                 timeouts numbers, probe an object; unknown fields are refused.",
            )
        })?;
        // A sealed bridge's patch always carries its whole secret part again.
        let secrets_changed = record.sealed
            || patched.url != stored.url
            || patched.headers != stored.headers
            || patched.fallback_urls != stored.fallback_urls;
        Ok((patched, secrets_changed))
    }
}

fn corrupt(record: &Record) -> OwnerError {
    OwnerError::Fault(crate::fault::Fault::Store(
        brine_store::StoreError::Corrupt(format!("bridge {}: unreadable upstream", record.uuid)),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merges_as_rfc_7396_says() {
        // The examples of RFC 7396, appendix A (a selection).
        for (target, patch, result) in [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ] {
            let mut t = target.clone();
            merge_patch(&mut t, &patch);
            assert_eq!(t, result, "{target} + {patch}");
        }
    }

    #[test]
    fn header_names_match_whatever_their_case() {
        let stored = json!({"headers": {"Authorization": "Bearer a", "X-Old": "1"}});
        let mut patch =
            json!({"headers": {"authorization": "Bearer b", "x-old": null, "X-New": "2"}});
        match_header_names(&stored, &mut patch);
        let mut merged = stored.clone();
        merge_patch(&mut merged, &patch);
        assert_eq!(
            merged,
            json!({"headers": {"Authorization": "Bearer b", "X-New": "2"}})
        );
    }
}
