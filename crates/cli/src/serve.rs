//! `brine serve`: settings from defaults < TOML file < `BRINE_*` environment < flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use brine_server::{Server, Settings};
use clap::Args;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use tracing_subscriber::EnvFilter;

#[derive(Args, Serialize, Default)]
pub struct ServeArgs {
    /// Address to listen on, as IP:PORT (localhost:PORT and a bare PORT mean 127.0.0.1)
    /// [default: 127.0.0.1:8080].
    #[arg(long, value_name = "IP:PORT", value_parser = parse_listen)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// The address people reach brine at, e.g. https://vault.example.com (forms accept posts
    /// from this origin only; over https their cookies are Secure).
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    public_url: Option<String>,
    /// Serve Prometheus metrics on this address (GET /metrics), apart from the API.
    #[arg(long, value_name = "IP:PORT", value_parser = parse_listen)]
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_listen: Option<SocketAddr>,
    /// A MaxMind-format GeoIP database (e.g. GeoLite2-City.mmdb): events also store the client's
    /// country and city [default: none].
    #[arg(long, value_name = "PATH")]
    #[serde(skip_serializing_if = "Option::is_none")]
    geoip_db: Option<PathBuf>,
    /// Directory for the SQLite database and the master key file [default: ./brine-data].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// Database URL [default: sqlite://DATA_DIR/brine.db].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    /// Lifetime of dashboard tokens in seconds [default: 3600].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    token_ttl_secs: Option<u64>,
    /// A reverse proxy (address or CIDR) whose X-Forwarded-For is believed; repeatable.
    #[arg(long = "trusted-proxy", value_name = "CIDR", value_parser = brine_server::config::parse_net)]
    #[serde(rename = "trusted_proxies", skip_serializing_if = "Vec::is_empty")]
    trusted_proxy: Vec<ipnet::IpNet>,
    /// Redis shared by every node for rate limits, e.g. redis://127.0.0.1:6379 [default: none,
    /// each node counts on its own].
    #[arg(long, value_name = "URL")]
    #[serde(skip_serializing_if = "Option::is_none")]
    redis_url: Option<String>,
    /// Let bridges reach loopback, private and link-local addresses (internal APIs).
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    allow_private_upstreams: bool,
    /// Refuse new sign-ups (existing accounts keep working).
    #[arg(long)]
    #[serde(skip)]
    no_signup: bool,
    /// A TOML file with any of the settings (keys as in docs/configuration.md).
    #[arg(long, env = "BRINE_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "BRINE_LOG_FORMAT", value_parser = ["text", "json"], default_value = "text")]
    #[serde(skip)]
    log_format: String,
}

/// The settings `serve` would use, from every source in order of precedence.
fn settings(args: &ServeArgs) -> anyhow::Result<Settings> {
    // Settings fills anything not given from its own defaults.
    let mut figment = Figment::new();
    if let Some(path) = &args.config {
        anyhow::ensure!(
            path.exists(),
            "config file {} does not exist",
            path.display()
        );
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment
        .merge(Env::prefixed("BRINE_").only(&[
            "listen",
            "public_url",
            "data_dir",
            "database_url",
            "master_key",
            "master_keys",
            "token_ttl_secs",
            "cli_session_days",
            "signup",
            "kdf_concurrency",
            "max_body_bytes",
            "trusted_proxies",
            "allow_private_upstreams",
            "upstream_connect_timeout_ms",
            "select_buffer_bytes",
            "record_cache_mib",
            "audit_retention_days",
            "audit_success_retention_hours",
            "audit_log_file",
            "usage_rollups",
            "geoip_db",
            "keep_client_address",
            "keep_user_agent",
            "metrics_listen",
            "redis_url",
            "max_upstream_per_ip",
            "header_read_timeout_ms",
            "body_read_timeout_ms",
            "max_headers",
            "max_header_bytes",
        ]))
        .merge(Serialized::defaults(args));
    if args.no_signup {
        figment = figment.merge(("signup", false));
    }
    figment.extract().context("invalid configuration")
}

/// A listening address in the forms people type: `IP:PORT`, `localhost:PORT`, `PORT`.
/// Other host names are not looked up (which of their addresses to bind would be a guess).
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let port = match text.rsplit_once(':') {
        Some((host, port)) if host.eq_ignore_ascii_case("localhost") => port,
        None => text,
        Some(_) => "",
    };
    match port.parse::<u16>() {
        Ok(port) => Ok(SocketAddr::from(([127, 0, 0, 1], port))),
        Err(_) => Err(format!(
            "{text:?} is not an address to listen on; write IP:PORT, such as 127.0.0.1:8080 \
             (this machine only) or 0.0.0.0:8080 (every interface)"
        )),
    }
}

fn init_logging(format: &str) {
    let filter = EnvFilter::try_from_env("BRINE_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging(&args.log_format);
    let settings = settings(&args)?;
    let server = Server::bind(settings).await?;
    let addr = server.local_addr()?;
    tracing::info!(%addr, version = env!("CARGO_PKG_VERSION"), "brine is listening");
    if let Some(metrics) = server.metrics_addr() {
        tracing::info!(%metrics, "metrics are served at /metrics");
    }
    server.run(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_are_read_as_people_write_them() {
        let local = |port| Ok(SocketAddr::from(([127, 0, 0, 1], port)));
        assert_eq!(parse_listen("127.0.0.1:8080"), local(8080));
        assert_eq!(parse_listen("localhost:8092"), local(8092));
        assert_eq!(parse_listen("8093"), local(8093));
        assert_eq!(
            parse_listen("[::]:80"),
            Ok(SocketAddr::from(([0u16; 8], 80)))
        );
        for bad in ["vault.example.com:80", "localhost:http", "", "1.2.3.4"] {
            let error = parse_listen(bad).unwrap_err();
            assert!(error.contains("write IP:PORT"), "{error}");
        }
    }
}
