//! The bridge form on a record page, as a JSON merge patch (RFC 7396) of the stored bridge:
//! what the owner left blank stays as it is. Stored URLs and header values are never shown, so
//! a blank URL or header value keeps the stored one. The key test (the probe) is shown in full,
//! so it is sent in full, or removed when its box is not ticked.

use serde_json::{Map, Value, json};

use super::fields::Fields;

/// The patch, or a message for the form when a field cannot be read.
pub fn merge_patch(f: &Fields) -> Result<Value, String> {
    let mut patch = Map::new();
    if let Some(url) = f.filled("bridge_url") {
        patch.insert("url".into(), json!(url));
    }
    let mut headers = Map::new();
    for (name, value) in f.all("header_name").iter().zip(f.all("header_value")) {
        let name = name.trim();
        if !name.is_empty() && !value.is_empty() {
            headers.insert(name.to_owned(), json!(value));
        }
    }
    for name in f.text("remove_headers").split(',') {
        let name = name.trim();
        if !name.is_empty() {
            headers.insert(name.to_owned(), Value::Null);
        }
    }
    if !headers.is_empty() {
        patch.insert("headers".into(), Value::Object(headers));
    }
    if f.ticked("remove_fallbacks") {
        patch.insert("fallback_urls".into(), json!([]));
    } else {
        let fallbacks = f.lines("fallbacks");
        if !fallbacks.is_empty() {
            patch.insert("fallback_urls".into(), json!(fallbacks));
        }
    }
    // The policy's fields are shown in full, so the form sends them in full.
    patch.insert("allowed_methods".into(), json!(f.all("methods")));
    patch.insert("allowed_origins".into(), json!(f.lines("origins")));
    patch.insert("allowed_paths".into(), json!(f.lines("paths")));
    let params: Vec<&str> = f
        .text("bridge_params")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|n| !n.is_empty())
        .collect();
    patch.insert("params".into(), json!(params));
    for field in ["timeout_ms", "total_timeout_ms"] {
        if let Some(ms) = f.filled(field) {
            match ms.parse::<u64>() {
                Ok(ms) => patch.insert(field.into(), json!(ms)),
                // A number the API refuses with its own message.
                Err(_) => patch.insert(field.into(), json!(ms)),
            };
        }
    }
    patch.insert("probe".into(), probe(f)?);
    Ok(Value::Object(patch))
}

/// The key test as the form gives it, or `null` to remove it (also for the Add secret form).
pub fn probe(f: &Fields) -> Result<Value, String> {
    if !f.ticked("probe_on") {
        return Ok(Value::Null);
    }
    let mut accepted = Vec::new();
    for status in f
        .text("probe_accepted")
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        let status: u16 = status.parse().map_err(|_| {
            "probe.accepted: enter HTTP statuses such as 200, separated by commas.".to_owned()
        })?;
        accepted.push(status);
    }
    let mut params = Map::new();
    for line in f.lines("probe_params") {
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| "probe.params: write one name=value per line.".to_owned())?;
        params.insert(name.trim().to_owned(), json!(value.trim()));
    }
    let mut probe = Map::new();
    probe.insert(
        "method".into(),
        json!(f.filled("probe_method").unwrap_or("GET")),
    );
    probe.insert("path".into(), json!(f.text("probe_path").trim()));
    if !accepted.is_empty() {
        probe.insert("accepted".into(), json!(accepted));
    }
    probe.insert("params".into(), Value::Object(params));
    Ok(Value::Object(probe))
}
