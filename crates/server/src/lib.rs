//! The brine HTTP server. [`Server::bind`] opens the database, loads the master key and binds the
//! listener; [`Server::run`] serves until the shutdown future completes. Tests start it on
//! `127.0.0.1:0` with a fresh data directory.

mod access;
mod accounts;
mod app;
mod audit;
mod audit_file;
mod auth;
mod client_ip;
mod client_origin;
mod clock;
pub mod config;
mod credential;
mod dashboard;
mod error;
mod extract;
mod fault;
mod forms;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod handoffs;
mod http;
mod id_token;
mod intake;
mod kdf;
mod lockout;
mod loop_guard;
pub mod master_key;
mod memory;
mod metrics;
mod open;
mod openapi;
mod owner;
mod page_loads;
mod proxy;
mod retention;
pub mod rotation;
mod routes;
mod service_tokens;
mod state;
#[cfg(test)]
mod test_support;
mod throttle;
mod vault;
mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use brine_crypto::{Argon2Settings, hash_account_password};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

pub use app::openapi;
pub use brine_core::FailMode;
pub use client_origin::{AddressForm, UserAgentForm};
pub use config::Settings;
pub use lockout::LockoutSettings;
pub use throttle::RateLimitSettings;

use crate::access::{Gate, Records};
use crate::accounts::Accounts;
use crate::auth::TokenKeys;
use crate::kdf::KdfPool;
use crate::lockout::Lockout;
use crate::owner::Owners;
use crate::proxy::Proxy;
use crate::proxy::upstream::UpstreamClient;
use crate::state::AppState;
use crate::vault::Vault;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("master key: {0}")]
    MasterKey(String),
    #[error("data directory: {0}")]
    DataDir(String),
    // Sources are not repeated in the messages: `{:#}` prints the whole chain.
    #[error("database")]
    Store(#[from] brine_store::StoreError),
    #[error("cannot listen on {addr}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid setting: {0}")]
    Setting(String),
    #[error("cryptography")]
    Crypto(#[from] brine_crypto::CryptoError),
}

/// The shared limiter, connected lazily: Redis being down at start-up is logged loudly, and
/// each record's failure mode applies until it answers.
async fn shared_limiter(url: &str) -> Result<brine_limits::RedisLimiter, StartupError> {
    if url.starts_with("rediss:") {
        return Err(StartupError::Setting(
            "redis_url: TLS (rediss://) is not supported; reach Redis over a private network or \
             a local tunnel"
                .into(),
        ));
    }
    // The URL may hold a password: it is never part of a message.
    let limiter = brine_limits::RedisLimiter::new(url)
        .map_err(|_| StartupError::Setting("redis_url is not a valid Redis URL".into()))?;
    match limiter.ping().await {
        Ok(()) => tracing::info!("rate limits are shared through Redis"),
        Err(error) => tracing::error!(
            %error,
            "SHARED RATE LIMITS UNAVAILABLE at start-up: fail-closed records answer 503 until \
             Redis answers"
        ),
    }
    Ok(limiter)
}

/// The longest a dashboard token may live (366 days).
const MAX_TOKEN_TTL_SECS: i64 = 366 * 24 * 3600;

pub struct Server {
    listener: TcpListener,
    /// The metrics listener, when configured, with what it reports.
    metrics: Option<(TcpListener, metrics::Metrics, Vault)>,
    router: axum::Router,
    store: Arc<dyn brine_store::Store>,
    head_limits: http::HeadLimits,
    webhooks: webhooks::Webhooks,
    handoffs: handoffs::Handoffs,
    /// The handoffs' end task on this node.
    handoff_task: tokio::task::JoinHandle<()>,
}

/// Ends the handoffs past their end date at once, as each node's end task does every 30
/// seconds: for tests and tools that should not wait for the next round.
#[derive(Clone)]
pub struct HandoffEnder(handoffs::Handoffs);

impl HandoffEnder {
    /// Ends what is due now; returns how many handoffs this call ended.
    pub async fn end_due(&self) -> Result<usize, String> {
        self.0
            .end_due(clock::now_ms())
            .await
            .map_err(|e| format!("{e:?}"))
    }
}

impl Server {
    /// Prepares everything that can fail before the first request: data directory, database and
    /// migrations, master key, listener.
    pub async fn bind(settings: Settings) -> Result<Self, StartupError> {
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| StartupError::Listen {
                    addr: settings.listen,
                    source,
                })?;
        Self::with_listener(settings, listener).await
    }

    pub async fn with_listener(
        settings: Settings,
        listener: TcpListener,
    ) -> Result<Self, StartupError> {
        // The data directory holds the SQLite file and, unless the key comes from the
        // environment, the master key file.
        if settings.database_url.is_none()
            || (settings.master_key.is_none() && settings.master_keys.is_none())
        {
            master_key::ensure_data_dir(&settings.data_dir)?;
        }
        // Capped at 366 days: a longer dashboard token makes no sense, and an absurd one would
        // overflow the expiry time at every sign-in.
        let token_ttl = i64::try_from(settings.token_ttl_secs)
            .ok()
            .filter(|s| (1..=MAX_TOKEN_TTL_SECS).contains(s))
            .map(time::Duration::seconds)
            .ok_or_else(|| {
                StartupError::Setting(format!(
                    "token_ttl_secs must be between 1 and {MAX_TOKEN_TTL_SECS} (366 days)"
                ))
            })?;
        let cli_session = i64::try_from(settings.cli_session_days)
            .ok()
            .filter(|d| (1..=3650).contains(d))
            .map(time::Duration::days)
            .ok_or_else(|| {
                StartupError::Setting("cli_session_days must be between 1 and 3650".into())
            })?;
        let lockout = settings.lockout;
        if lockout.per_client == 0 || lockout.per_record == 0 || lockout.window_secs == 0 {
            return Err(StartupError::Setting(
                "lockout.per_client, lockout.per_record and lockout.window_secs must be at least 1"
                    .into(),
            ));
        }
        if settings.max_upstream_per_ip == 0 || settings.max_headers == 0 {
            return Err(StartupError::Setting(
                "max_upstream_per_ip and max_headers must be at least 1".into(),
            ));
        }
        if settings.select_buffer_bytes < 64 * 1024 {
            return Err(StartupError::Setting(
                "select_buffer_bytes must be at least 65536".into(),
            ));
        }
        if settings.max_header_bytes < 8192 {
            return Err(StartupError::Setting(
                "max_header_bytes must be at least 8192".into(),
            ));
        }
        if settings.header_read_timeout_ms == 0 || settings.body_read_timeout_ms == 0 {
            return Err(StartupError::Setting(
                "header_read_timeout_ms and body_read_timeout_ms must be positive".into(),
            ));
        }
        let public_url = settings.public_url().map_err(StartupError::Setting)?;
        let cache_bytes = memory::check_cache(settings.record_cache_mib)?;
        let shared_limits = match &settings.redis_url {
            None => None,
            Some(url) => Some(shared_limiter(url.expose_secret()).await?),
        };
        let store = brine_store::connect(&settings.database_url()).await?;
        let master = Arc::new(master_key::load(&settings, store.as_ref(), true).await?);
        // Keys that only check (form tokens) accept every version; the current one makes them.
        let older = |purpose: &str| -> Result<Vec<zeroize::Zeroizing<[u8; 32]>>, StartupError> {
            let current = master.current().version();
            Ok(master
                .keys()
                .iter()
                .filter(|k| k.version() != current)
                .map(|k| k.derive_subkey(purpose))
                .collect::<Result<_, _>>()?)
        };
        let loops = loop_guard::LoopGuard::load(store.as_ref()).await?;
        let key_error = |what: &str| StartupError::Setting(format!("cannot key the {what}"));
        let metrics = metrics::Metrics::default();
        let tokens = TokenKeys::new(&master.subkeys("brine jwt v1")?, token_ttl);
        let limits = throttle::Limits::new(
            settings.rate_limits.clone(),
            shared_limits,
            store.clone(),
            metrics.clone(),
            master
                .current()
                .derive_subkey("brine login limits v1")?
                .as_slice(),
        )
        .map_err(|_| key_error("sign-in limits"))?;
        let older_forms = older("brine forms v1")?;
        let forms = forms::FormGuard::new(
            master.current().derive_subkey("brine forms v1")?.as_slice(),
            public_url.as_ref(),
        )
        .and_then(|g| g.with_older_keys(older_forms.iter().map(|k| k.as_slice())))
        .map_err(|_| key_error("form tokens"))?;
        store.keep_rollups(settings.usage_rollups);
        let geo = match &settings.geoip_db {
            Some(path) => Some(client_origin::GeoDb::open(path).map_err(StartupError::Setting)?),
            None => None,
        };
        let origins = client_origin::Origins::new(
            settings.keep_client_address,
            settings.keep_user_agent,
            master
                .current()
                .derive_subkey("brine client address v1")?
                .as_slice(),
            geo,
        )
        .map_err(|_| key_error("client address hash"))?;
        let audit_file = settings
            .audit_log_file
            .as_deref()
            .map(audit_file::AuditFile::open)
            .transpose()
            .map_err(|e| StartupError::Setting(format!("cannot open audit_log_file: {e}")))?;
        let audit = audit::AuditLog::start_with(store.clone(), metrics.clone(), audit_file);
        let page_loads = page_loads::PageLoads::default();
        page_loads.start_flushing(audit.clone());
        if settings.audit_retention_days == Some(0) {
            return Err(StartupError::Setting(
                "audit_retention_days must be at least 1 (leave it unset to keep every event)"
                    .into(),
            ));
        }
        if settings.audit_success_retention_hours == Some(0) {
            return Err(StartupError::Setting(
                "audit_success_retention_hours must be at least 1 (leave it unset to keep \
                 successful requests' events as long as the others)"
                    .into(),
            ));
        }
        retention::start(
            &store,
            retention::Retention {
                days: settings.audit_retention_days,
                success_hours: settings.audit_success_retention_hours,
            },
        );
        let argon2 = Argon2Settings::default();
        let kdf = KdfPool::new(settings.kdf_concurrency).map_err(|e| {
            StartupError::Setting(format!("cannot start key-derivation threads: {e}"))
        })?;
        let decoy = kdf
            .run(move || hash_account_password(b"decoy password, never a real one", argon2))
            .await
            .map_err(|_| StartupError::Setting("cannot run key derivation".into()))??;
        let challenge_keys = master.subkeys("brine sign-in challenge v1")?;
        let totp = accounts::TotpKey::new(&master)?;
        let vault = Vault::new(master.clone(), kdf, argon2);
        let upstream = UpstreamClient::new(
            settings.allow_private_upstreams,
            std::time::Duration::from_millis(settings.upstream_connect_timeout_ms),
            loops,
            settings.select_buffer_bytes,
            metrics.clone(),
        )
        .map_err(|e| StartupError::Setting(format!("cannot build the upstream client: {e}")))?;
        let gate = Gate::new(
            Records::new(store.clone(), cache_bytes, metrics.clone()),
            vault.clone(),
            audit.clone(),
            limits.clone(),
            Lockout::new(
                store.clone(),
                audit.clone(),
                settings.lockout,
                metrics.clone(),
            ),
        );
        settings.webhooks.check().map_err(StartupError::Setting)?;
        let webhooks = webhooks::Webhooks::new(
            &master,
            settings.webhooks.clone(),
            settings.allow_private_upstreams,
            audit.clone(),
            gate.records.clone(),
            upstream.loops().clone(),
        )?;
        let metrics_listener = match settings.metrics_listen {
            None => None,
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartupError::Listen { addr, source })?,
            ),
        };
        let metrics_page =
            metrics_listener.map(|listener| (listener, metrics.clone(), vault.clone()));
        let proxy = Proxy::new(upstream, vault.clone(), audit, settings.max_upstream_per_ip);
        // Links shown to owners name where people reach brine: `public_url`, or this listener.
        let base_url = match &public_url {
            Some(url) => url.origin().ascii_serialization(),
            None => {
                let mut addr = listener
                    .local_addr()
                    .map_err(|source| StartupError::Listen {
                        addr: settings.listen,
                        source,
                    })?;
                // Listening on every address: this machine's own is the one that surely works.
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{addr}")
            }
        };
        let site = dashboard::Site::new(dashboard::SiteParts {
            base_url,
            secure: public_url.as_ref().is_some_and(|u| u.scheme() == "https"),
            signup_open: settings.signup,
        });
        let owners = Owners::new(gate.clone(), proxy.clone());
        let intake = intake::IntakeDesk::new(
            owners.clone(),
            store.clone(),
            vault.clone(),
            settings.lockout,
        );
        let handoffs = handoffs::Handoffs::new(store.clone(), owners.clone());
        let state = AppState::new(state::StateParts {
            owners,
            intake,
            accounts: Accounts::new(accounts::AccountsConfig {
                store: store.clone(),
                tokens: Arc::new(tokens),
                cli_session,
                challenge_keys,
                totp,
                vault,
                limits,
                decoy_hash: decoy.into(),
                signup_open: settings.signup,
            }),
            tokens: gate.tokens().clone(),
            gate,
            proxy,
            trusted_proxies: Arc::new(client_ip::TrustedProxies::new(
                settings.trusted_proxies.clone(),
            )),
            origins: Arc::new(origins),
            forms,
            site,
            page_loads,
            batch: settings.batch,
            store: store.clone(),
            webhooks: webhooks.clone(),
            handoffs: handoffs.clone(),
        });
        // Last: nothing below can fail, so no task is left running by a failed start.
        webhooks
            .start()
            .await
            .map_err(|e| StartupError::Setting(format!("cannot start webhooks: {e}")))?;
        let handoff_task = handoffs.start();
        Ok(Self {
            listener,
            metrics: metrics_page,
            router: app::router(
                state,
                settings.max_body_bytes,
                std::time::Duration::from_millis(settings.body_read_timeout_ms),
            ),
            store,
            webhooks,
            handoffs,
            handoff_task,
            head_limits: http::HeadLimits {
                read_timeout: std::time::Duration::from_millis(settings.header_read_timeout_ms),
                max_headers: settings.max_headers,
                max_bytes: settings.max_header_bytes,
            },
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Ends due handoffs on demand (see [`HandoffEnder`]).
    pub fn handoff_ender(&self) -> HandoffEnder {
        HandoffEnder(self.handoffs.clone())
    }

    /// Where the metrics are served, when they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .and_then(|(l, _, _)| l.local_addr().ok())
    }

    /// Serves until `shutdown` completes, finishes the requests in flight, then closes the
    /// database.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let metrics = self.metrics.map(|(listener, metrics, vault)| {
            tokio::spawn(metrics::serve(listener, metrics, vault))
        });
        let served = http::serve(self.listener, self.router, self.head_limits, shutdown).await;
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        self.handoff_task.abort();
        self.webhooks.stop().await;
        self.store.close().await;
        served
    }
}
