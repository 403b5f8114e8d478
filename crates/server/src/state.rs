//! The router's state: the handles the routes hand to the layers below. Each route takes only the
//! handles it uses (`State<Gate>`, `State<Owners>`, ...); nothing below the routes sees this.

use std::sync::Arc;

use axum::extract::FromRef;
use brine_store::Store;

use crate::access::Gate;
use crate::accounts::Accounts;
use crate::client_ip::TrustedProxies;
use crate::client_origin::Origins;
use crate::dashboard::Site;
use crate::forms::FormGuard;
use crate::owner::Owners;
use crate::page_loads::PageLoads;
use crate::proxy::Proxy;
use crate::routes::batch::BatchSettings;
use crate::service_tokens::ServiceTokens;
use crate::webhooks::Webhooks;

/// Shared by every request; one reference count to clone.
#[derive(Clone)]
pub struct AppState(Arc<StateParts>);

impl AppState {
    pub fn new(parts: StateParts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = StateParts;

    fn deref(&self) -> &StateParts {
        &self.0
    }
}

pub struct StateParts {
    pub gate: Gate,
    pub proxy: Proxy,
    pub owners: Owners,
    pub accounts: Accounts,
    pub trusted_proxies: Arc<TrustedProxies>,
    /// What is stored of each client (address form, user agent, place).
    pub origins: Arc<Origins>,
    pub forms: FormGuard,
    pub site: Site,
    pub page_loads: PageLoads,
    pub batch: BatchSettings,
    pub webhooks: Webhooks,
    pub tokens: ServiceTokens,
    /// For the loop guard's audit of refused calls (see `loop_guard`).
    pub store: Arc<dyn Store>,
}

macro_rules! handles {
    ($($field:ident: $ty:ty),* $(,)?) => {$(
        impl FromRef<AppState> for $ty {
            fn from_ref(state: &AppState) -> Self {
                state.$field.clone()
            }
        }
    )*};
}

handles! {
    gate: Gate,
    proxy: Proxy,
    owners: Owners,
    accounts: Accounts,
    trusted_proxies: Arc<TrustedProxies>,
    origins: Arc<Origins>,
    forms: FormGuard,
    site: Site,
    page_loads: PageLoads,
    batch: BatchSettings,
    webhooks: Webhooks,
    tokens: ServiceTokens,
}
