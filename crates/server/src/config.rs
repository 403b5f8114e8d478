//! Server settings. The binary fills them from defaults, a TOML file, `BRINE_*` variables and
//! flags (in that order of precedence, last wins); tests build them directly.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// The address people reach brine at, such as `https://vault.example.com` (behind a reverse
    /// proxy, the proxy's). Forms accept posts only from this origin, and over https their
    /// cookies are marked `Secure`. Without it, a form's origin is compared with the request's
    /// `Host`.
    pub public_url: Option<String>,
    /// Directory for the SQLite database and the generated master key.
    pub data_dir: PathBuf,
    /// `sqlite:` URL; defaults to `DATA_DIR/brine.db`.
    pub database_url: Option<String>,
    /// Base64 of 32 bytes: the master key as version 1. When absent (and `master_keys` too),
    /// `DATA_DIR/master.keyring` or else `DATA_DIR/master.key` is used (created on first start).
    pub master_key: Option<SecretString>,
    /// A keyring of versioned master keys: `VERSION:BASE64` entries and an optional
    /// `current:VERSION`, separated by commas, spaces or newlines (the highest version is
    /// current when none is named). Every version reads; the current one writes.
    pub master_keys: Option<SecretString>,
    /// Lifetime of a dashboard token, in seconds.
    pub token_ttl_secs: u64,
    /// How long a signed-in CLI stays signed in without being used, in days (its refresh token
    /// renews the session on each use).
    pub cli_session_days: u64,
    /// Whether anyone may create an account with `POST /api/v1/auth/signup`.
    pub signup: bool,
    /// How many Argon2 computations may run at once (each uses ~19 MiB and one core).
    pub kdf_concurrency: usize,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Reverse proxies (addresses or CIDR ranges) whose `X-Forwarded-For` header is believed.
    /// Empty by default: the client address is the socket's peer.
    #[serde(deserialize_with = "nets")]
    pub trusted_proxies: Vec<IpNet>,
    /// Failed password unlocks allowed before a lockout (secure pages, record passwords).
    pub lockout: crate::lockout::LockoutSettings,
    /// Let bridges reach loopback, private and link-local addresses (internal APIs). Off by
    /// default: a bridge is then no way into the server's own network.
    pub allow_private_upstreams: bool,
    /// Time to open a connection to an upstream, in milliseconds.
    pub upstream_connect_timeout_ms: u64,
    /// Bytes of upstream answers that `select` may hold in memory at once, across all calls;
    /// a select that would need more answers 503.
    pub select_buffer_bytes: usize,
    /// Memory for records kept decoded between requests, in MiB (0 keeps none). Refused at
    /// start-up when more than half of the machine's memory.
    pub record_cache_mib: u64,
    /// Days that audit events are kept; older ones are deleted by a background task (at start
    /// and every hour). Unset keeps every event.
    pub audit_retention_days: Option<u32>,
    /// Hours that the events of successful requests (reads, bridge calls, page loads) are kept;
    /// their counts stay in the usage roll-ups. Refusals, errors and owner actions follow
    /// `audit_retention_days`. Unset keeps them as long as the others.
    pub audit_success_retention_hours: Option<u32>,
    /// Also write every audit event, as it is stored, as one JSON line to this file (appended
    /// to, mode 0600) or to stdout (`-`), for a log shipper. Unset writes none.
    pub audit_log_file: Option<String>,
    /// Keep usage roll-ups (the Logs page's sums and charts) as events are written. Turned
    /// off, the summary and series stay empty and each group of events is one write lighter.
    pub usage_rollups: bool,
    /// A GeoIP database in the MaxMind DB format (`GeoLite2-City.mmdb`, `GeoLite2-Country.mmdb`):
    /// events then also store the client's country and, where the database knows it, city.
    /// Read at start; a file that cannot be read is a start-up error. None by default.
    pub geoip_db: Option<PathBuf>,
    /// How client addresses are stored in events, account events and sessions: `full`,
    /// `masked` (the /24 or /48 and a keyed hash, the default) or `hashed` (the hash alone).
    pub keep_client_address: crate::client_origin::AddressForm,
    /// How user agents are stored: `full`, `reduced` (browser and system, the default) or `none`.
    pub keep_user_agent: crate::client_origin::UserAgentForm,
    /// Where to serve Prometheus metrics (`GET /metrics`), apart from the API; none by default.
    pub metrics_listen: Option<SocketAddr>,
    /// Limits of `POST /batch`.
    pub batch: crate::routes::batch::BatchSettings,
    /// `redis://` URL of a Redis that every node shares its rate-limit budgets through. Without
    /// it, each node counts on its own.
    pub redis_url: Option<SecretString>,
    /// Server-wide rate limits: defaults for records, an account-wide cap, sign-in limits.
    pub rate_limits: crate::throttle::RateLimitSettings,
    /// Upstream calls one client address may have in flight at once, on one node.
    pub max_upstream_per_ip: u32,
    /// Time a client has to send a request's headers (slow-client protection), in milliseconds.
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a request's body, in milliseconds.
    pub body_read_timeout_ms: u64,
    /// Most header fields a request may carry.
    pub max_headers: usize,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
    /// Webhook deliveries: retries, backoff, timeouts.
    pub webhooks: crate::webhooks::WebhookSettings,
}

/// An address or CIDR range: `10.0.0.0/8`, `192.0.2.1` (one address), `::1`.
pub fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if text.contains('/') {
        text.parse()
            .map_err(|_| format!("'{text}' is not a CIDR range"))
    } else {
        text.parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| format!("'{text}' is not an IP address or CIDR range"))
    }
}

/// A list of nets, or one string of comma-separated nets (handy in an environment variable).
fn nets<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(d)? {
        OneOrMany::One(list) => list.split(',').map(str::to_owned).collect(),
        OneOrMany::Many(items) => items,
    };
    items
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| parse_net(s).map_err(serde::de::Error::custom))
        .collect()
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            data_dir: PathBuf::from("brine-data"),
            database_url: None,
            master_key: None,
            master_keys: None,
            token_ttl_secs: 3600,
            cli_session_days: 30,
            signup: true,
            kdf_concurrency: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            max_body_bytes: 256 * 1024,
            trusted_proxies: Vec::new(),
            lockout: crate::lockout::LockoutSettings::default(),
            allow_private_upstreams: false,
            upstream_connect_timeout_ms: 5_000,
            select_buffer_bytes: 64 * 1024 * 1024,
            record_cache_mib: 64,
            audit_retention_days: None,
            audit_success_retention_hours: None,
            audit_log_file: None,
            usage_rollups: true,
            geoip_db: None,
            keep_client_address: crate::client_origin::AddressForm::default(),
            keep_user_agent: crate::client_origin::UserAgentForm::default(),
            metrics_listen: None,
            batch: crate::routes::batch::BatchSettings::default(),
            redis_url: None,
            rate_limits: crate::throttle::RateLimitSettings::default(),
            max_upstream_per_ip: 64,
            header_read_timeout_ms: 10_000,
            body_read_timeout_ms: 30_000,
            max_headers: 100,
            max_header_bytes: 64 * 1024,
            webhooks: crate::webhooks::WebhookSettings::default(),
        }
    }
}

impl Settings {
    /// `public_url`, checked: an http(s) origin, with no path beyond `/`.
    pub fn public_url(&self) -> Result<Option<url::Url>, String> {
        let Some(text) = &self.public_url else {
            return Ok(None);
        };
        let url = url::Url::parse(text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
            .filter(|u| u.path() == "/" && u.query().is_none() && u.username().is_empty())
            .ok_or_else(|| {
                format!("public_url must look like https://vault.example.com, not '{text}'")
            })?;
        Ok(Some(url))
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("brine.db").display()),
        }
    }
}
