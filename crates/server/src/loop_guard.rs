//! Loop detection with `CDN-Loop` (RFC 8586). Every upstream call brine makes carries this
//! installation's id in that header; a request that arrives carrying it has already passed
//! through this installation, so it is refused at once (508) instead of being served again.
//! A bridge whose `url` or fallbacks lead back to brine — by any address or name — therefore
//! makes one refused call, not a cascade.
//!
//! The id is random per installation (every node of one database shares it), so brine servers
//! of different installations may still call each other; because callers' `CDN-Loop` values are
//! passed on and brine only appends its own, a loop through another installation is caught too.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use brine_store::{MetaStore, StoreError};

use crate::access::{Gate, GateError, Try};
use crate::audit::{Channel, Outcome};
use crate::error::ApiError;
use crate::extract::{ClientInfo, canonical_uuid};
use crate::fault::Fault;
use crate::state::AppState;

pub const CDN_LOOP: HeaderName = HeaderName::from_static("cdn-loop");

const META_KEY: &str = "installation_id";

#[derive(Clone)]
pub struct LoopGuard {
    id: Arc<str>,
    value: HeaderValue,
}

impl LoopGuard {
    /// The installation's id, created by the first node that starts on the database.
    pub async fn load(meta: &dyn MetaStore) -> Result<Self, StoreError> {
        let fresh = uuid::Uuid::new_v4().simple().to_string();
        meta.insert_meta_if_absent(META_KEY, &fresh.as_bytes()[..16])
            .await?;
        let stored = meta
            .meta(META_KEY)
            .await?
            .ok_or_else(|| StoreError::Corrupt("no installation id".into()))?;
        let id = String::from_utf8(stored)
            .ok()
            .filter(|id| id.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| StoreError::Corrupt("unreadable installation id".into()))?;
        Ok(Self::new(&id))
    }

    fn new(hex: &str) -> Self {
        let id = format!("brine-{hex}");
        let value = HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("brine"));
        Self {
            id: id.into(),
            value,
        }
    }

    /// Whether a request's `CDN-Loop` names this installation.
    pub fn seen_in(&self, headers: &HeaderMap) -> bool {
        headers
            .get_all(CDN_LOOP)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|info| info.split(';').next())
            .any(|cdn_id| cdn_id.trim().eq_ignore_ascii_case(&self.id))
    }

    /// Adds this installation to an outbound call's `CDN-Loop` (after any the caller sent, and
    /// after the bridge's stored headers, which cannot remove it).
    pub fn mark(&self, outbound: &mut HeaderMap) {
        outbound.append(CDN_LOOP, self.value.clone());
    }
}

/// Middleware: refuses requests that already passed through this installation. A refused call
/// to a record (`/r/{uuid}`) is audited on that record.
pub async fn refuse_loops(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !state.proxy.upstream.loops().seen_in(request.headers()) {
        return next.run(request).await;
    }
    let (mut parts, _) = request.into_parts();
    let record = parts
        .uri
        .path()
        .strip_prefix("/r/")
        .map(|rest| rest.split('/').next().unwrap_or_default())
        .and_then(canonical_uuid);
    if let Some(uuid) = record {
        let client = match ClientInfo::from_request_parts(&mut parts, &state).await {
            Ok(client) => client,
            Err(never) => match never {},
        };
        if let Err(fault) = audit_loop(&state.gate, uuid, &client).await {
            return ApiError::from(fault).into_response();
        }
    }
    ApiError::loop_detected().into_response()
}

async fn audit_loop(gate: &Gate, uuid: uuid::Uuid, client: &ClientInfo) -> Result<(), Fault> {
    let found = match gate.find(uuid, client, Try::FIRST).await {
        Ok(found) => found,
        // A disabled record whose copy in memory was out of date: refused all the same.
        Err(GateError::Fault(Fault::Stale)) => return Ok(()),
        Err(GateError::Fault(fault)) => return Err(fault),
        // No record (or a disabled one, audited by the gate): nothing to hold the event.
        Err(GateError::Refused(_)) => return Ok(()),
    };
    let channel = match found.record().kind {
        brine_core::RecordKind::Bridge => Channel::Bridge,
        brine_core::RecordKind::Credential => Channel::Read,
    };
    let detail = Some(r#"{"refused_by":"loop"}"#.to_owned());
    match found.via(channel).note(Outcome::Loop, detail).await {
        Ok(_) | Err(Fault::Stale) => Ok(()),
        Err(fault) => Err(fault),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(CDN_LOOP, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn finds_its_own_id_among_others() {
        let guard = LoopGuard::new("00ff00ff00ff00ff");
        assert!(!guard.seen_in(&HeaderMap::new()));
        assert!(!guard.seen_in(&headers(&["cloudflare", "brine-1111111111111111"])));
        assert!(guard.seen_in(&headers(&["brine-00ff00ff00ff00ff"])));
        assert!(guard.seen_in(&headers(&["cloudflare, BRINE-00FF00FF00FF00FF; v=1"])));
        assert!(guard.seen_in(&headers(&["fastly", " brine-00ff00ff00ff00ff ,akamai"])));
        let mut out = headers(&["cloudflare"]);
        guard.mark(&mut out);
        assert!(guard.seen_in(&out));
        assert_eq!(
            out.get_all(CDN_LOOP).iter().count(),
            2,
            "the caller's entries stay"
        );
    }
}
