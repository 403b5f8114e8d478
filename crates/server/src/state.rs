use std::sync::Arc;

use brine_crypto::{Argon2Settings, MasterKey};
use brine_store::Store;

use crate::auth::TokenKeys;
use crate::client_ip::TrustedProxies;
use crate::kdf::KdfPool;

/// Shared by every request. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub master: Arc<MasterKey>,
    pub tokens: Arc<TokenKeys>,
    pub kdf: KdfPool,
    pub argon2: Argon2Settings,
    pub signup_open: bool,
    pub lockout: crate::lockout::LockoutSettings,
    pub upstream: crate::bridge::forward::UpstreamClient,
    pub inflight: crate::bridge::inflight::InFlight,
    pub batch: crate::routes::batch::BatchSettings,
    pub audit: crate::audit::AuditLog,
    pub bridges: crate::bridge::cache::BridgeCache,
    pub trusted_proxies: Arc<TrustedProxies>,
    /// A hash of a random password, verified when a login names an unknown email, so that the
    /// answer takes as long as for a known one.
    pub decoy_password_hash: Arc<str>,
    pub limits: crate::limits::Limits,
    /// Upstream calls one client address may have in flight on this node.
    pub max_upstream_per_ip: u32,
    /// Cross-site protection of HTML forms.
    pub forms: crate::forms::FormGuard,
    /// Secure-page form loads, coalesced per client.
    pub page_loads: crate::page_loads::PageLoads,
}
