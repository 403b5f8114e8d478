//! The owner's playground: one call through a bridge with the same policy, templating, headers,
//! select and scrubbing as a caller gets (no origin or key needed), the answer buffered.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::http::Method;
use brine_bridge::select::Selector;
use brine_proto::{TryCall, TryResult};
use brine_store::Record;

use super::upstream::{self, Call, Failure};
use super::{Proxy, allowed_prefix, cache};
use crate::owner::OwnerError;

/// Largest answer the playground shows.
const BODY_LIMIT: usize = 1024 * 1024;

impl Proxy {
    /// Runs `call` through `record` (a bridge of the owner's).
    pub async fn try_call(&self, record: &Record, call: TryCall) -> Result<TryResult, OwnerError> {
        let invalid = |message: &str| OwnerError::invalid(message.to_owned());
        let policy = record
            .policy
            .bridge()
            .ok_or_else(|| invalid("Only bridges can be tried."))?;
        let method = Method::from_bytes(
            call.method
                .as_deref()
                .unwrap_or("GET")
                .to_ascii_uppercase()
                .as_bytes(),
        )
        .map_err(|_| invalid("'method' is not an HTTP method."))?;
        if !policy.methods().contains(&method) {
            return Err(invalid("This bridge does not accept that method."));
        }
        let prefix = allowed_prefix(policy, &call.path)
            .filter(|_| call.path.is_empty() || call.path.starts_with('/'))
            .ok_or_else(|| invalid("That path is not in the bridge's allowed_paths."))?
            .to_owned();
        let dek = self
            .vault
            .open_with_server(record)
            .map_err(OwnerError::from_vault)?;
        let compiled = cache::compile(record, &self.vault, &dek)?;
        let select = call
            .select
            .as_deref()
            .map(Selector::parse)
            .transpose()
            .map_err(|e| OwnerError::invalid(format!("select: {e}")))?;
        let (headers, body) =
            crate::extract::call_parts(&call.headers, call.body).map_err(OwnerError::invalid)?;
        let mut query: Vec<(String, String)> = call.params.into_iter().collect();
        if let Some(expr) = call.select {
            query.push(("select".into(), expr));
        }
        let started = Instant::now();
        let answer = upstream::call(
            &self.upstream,
            &compiled.bridge,
            &compiled.scrubber,
            Call {
                method,
                extra_path: &call.path,
                path_prefix: &prefix,
                query,
                headers: &headers,
                body,
                select: select.as_ref(),
            },
        )
        .await
        .map_err(OwnerError::Upstream)?;
        let is_json = upstream::is_json(&answer.headers);
        let bytes = answer
            .body
            .collect(BODY_LIMIT)
            .await
            .map_err(OwnerError::Upstream)?;
        let text = || serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned());
        let body = if is_json || select.is_some() {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| text())
        } else {
            text()
        };
        Ok(TryResult {
            status: answer.status.as_u16(),
            headers: answer
                .headers
                .iter()
                .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
                .collect::<BTreeMap<_, _>>(),
            body,
            hop: answer.hop,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        })
    }
}

impl From<Failure> for OwnerError {
    fn from(f: Failure) -> Self {
        OwnerError::Upstream(f)
    }
}
