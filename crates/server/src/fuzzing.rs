//! The properties the fuzz targets in `fuzz/` check (`headers`, `client_addr`, `config`,
//! `tokens`, `bridge_spec`), one function per target taking the raw fuzz input. They live here
//! (feature `fuzzing`, off by default, and in this crate's tests) so that the committed seeds
//! and every crash kept under `fuzz/regressions/` are replayed by a plain `cargo test` with the
//! same assertions. They call the real parsers; no check is skipped. A property that does not
//! hold panics.

use std::collections::BTreeMap;
use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use brine_bridge::headers::{connection_listed, forward_request_header};
use brine_bridge::scrub::{REDACTED, Scrubber};
use brine_core::{BridgePolicy, Probe, RecordKind};
use brine_crypto::{Keyring, MasterKey};
use figment::Figment;
use figment::providers::{Format, Toml};
use secrecy::ExposeSecret;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::auth::{Claims, TokenKeys};
use crate::config::{Settings, parse_net};
use crate::proxy::compiled::{Bridge, BridgeSecrets};

/// Prefix of every secret the targets make up, so that a leak is easy to spot.
pub const CANARY: &str = "canary-";

/// The upstream of every bridge the targets build (never called).
const UPSTREAM: &str = "https://api.example.com/v1";

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Pieces of `hay` between the `[REDACTED]` markers, lowercased.
fn between_redactions(hay: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = hay;
    while let Some(i) = rest.windows(REDACTED.len()).position(|w| w == REDACTED) {
        out.push(rest[..i].to_ascii_lowercase());
        rest = &rest[i + REDACTED.len()..];
    }
    out.push(rest.to_ascii_lowercase());
    out
}

/// Lines `NAME: VALUE` after a one-letter tag, e.g. `S Authorization: Bearer x`.
fn tagged_headers(text: &str, tag: char) -> Vec<(&str, &str)> {
    text.split('\n')
        .filter_map(|line| line.strip_prefix(tag)?.strip_prefix(' ')?.split_once(':'))
        .map(|(name, value)| (name.trim(), value.trim()))
        .collect()
}

fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            map.append(name, value);
        }
    }
    map
}

/// Headers no caller may ever send upstream, whatever the denylist says.
const NEVER_FORWARDED: &[&str] = &[
    "authorization",
    "cookie",
    "x-api-key",
    "host",
    "connection",
    "transfer-encoding",
    "content-length",
    "forwarded",
];

/// `headers`: lines `S NAME: VALUE` (a stored bridge header; the value gets the canary
/// prefix), `C NAME: VALUE` (the caller's) and `U NAME: VALUE` (the upstream's answer). Stored
/// headers always win, denied caller headers never cross, no stored secret comes back in the
/// answer's headers, and errors never show a stored value.
pub fn headers(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let stored: BTreeMap<String, String> = tagged_headers(&text, 'S')
        .into_iter()
        .map(|(n, v)| (n.to_owned(), format!("{CANARY}{v}")))
        .collect();
    let secrets = BridgeSecrets {
        url: UPSTREAM.to_owned(),
        headers: stored.clone(),
        fallback_urls: Vec::new(),
    };
    let bridge = match Bridge::compile(&secrets, BridgePolicy::default()) {
        Ok(bridge) => bridge,
        Err(e) => {
            let message = e.to_string();
            // An error may name a header; a value is found in it only if some name holds it.
            for value in stored.values() {
                assert!(
                    stored.keys().any(|n| n.contains(value.as_str()))
                        || !message.contains(value.as_str()),
                    "a bridge error shows a stored header value"
                );
            }
            return;
        }
    };

    let caller = header_map(&tagged_headers(&text, 'C'));
    let listed = connection_listed(&caller);
    let out = crate::proxy::upstream::outbound_headers(&caller, &bridge);
    for (name, value) in &bridge.headers {
        let sent: Vec<&HeaderValue> = out.get_all(name).iter().collect();
        assert_eq!(sent, vec![value], "a stored header did not win");
    }
    for (name, value) in &out {
        if bridge.headers.iter().any(|(n, _)| n == name) {
            continue;
        }
        assert!(
            forward_request_header(name) && !listed.contains(name),
            "a denied caller header crossed: {name}"
        );
        assert!(!NEVER_FORWARDED.contains(&name.as_str()), "{name} crossed");
        assert!(
            caller.get_all(name).iter().any(|v| v == value),
            "a header value was made up"
        );
    }

    let scrubber = Scrubber::new(bridge.secrets.iter().map(String::as_str));
    let upstream = header_map(&tagged_headers(&text, 'U'));
    let back = crate::proxy::upstream::returned_headers(&upstream, &scrubber);
    for (name, value) in &back {
        assert!(
            !matches!(
                name.as_str(),
                "set-cookie" | "content-length" | "connection" | "transfer-encoding"
            ),
            "{name} came back"
        );
        let pieces = between_redactions(value.as_bytes());
        for secret in bridge.secrets.iter().filter(|s| s.len() >= 8) {
            let secret = secret.to_ascii_lowercase();
            assert!(
                !pieces.iter().any(|p| contains(p, secret.as_bytes())),
                "a stored secret came back in {name}"
            );
        }
    }
}

/// `client_addr`: line 1 the socket peer, line 2 the trusted proxies (comma-separated), then
/// header lines `NAME: VALUE` (`Forwarded`, `X-Forwarded-For`). An untrusted peer is the client
/// whatever the headers say; without headers the peer is the client; an IPv4-mapped address is
/// always reported as IPv4.
pub fn client_addr(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines = text.split('\n');
    let Ok(peer) = lines.next().unwrap_or_default().trim().parse::<IpAddr>() else {
        return;
    };
    let nets: Vec<ipnet::IpNet> = lines
        .next()
        .unwrap_or_default()
        .split(',')
        .filter_map(|n| parse_net(n).ok())
        .collect();
    let pairs: Vec<(&str, &str)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim(), v.trim()))
        .collect();
    let headers = header_map(&pairs);
    let canonical = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let peer = canonical(peer);
    let trusted = nets.iter().any(|n| n.contains(&peer));
    let client = crate::client_ip::TrustedProxies::new(nets.clone()).client_ip(peer, &headers);
    if !trusted || headers.is_empty() {
        assert_eq!(client, peer, "the client chose its address");
    }
    assert_eq!(client, canonical(client), "a mapped address was reported");
    if client != peer {
        let named = ["forwarded", "x-forwarded-for"]
            .iter()
            .any(|h| headers.contains_key(*h));
        assert!(named, "an address came from nowhere");
    }
}

/// `config`: input is a TOML file's text. Whatever it holds, reading it either gives settings
/// whose derived values can be computed, or an error; never a panic.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(settings) = Figment::new()
        .merge(Toml::string(text))
        .extract::<Settings>()
    else {
        return;
    };
    let _ = settings.public_url();
    let _ = settings.database_url();
    if let Some(keys) = &settings.master_keys {
        let _ = Keyring::parse(keys.expose_secret());
    }
    if let Some(key) = &settings.master_key {
        let _ = MasterKey::from_base64(key.expose_secret());
    }
    let _ = crate::memory::check_cache(settings.record_cache_mib);
    let _ = settings.webhooks.check();
}

/// `tokens`: input is a presented token (or a tamper position and byte, for bearer tokens).
/// Service and refresh tokens parse only in their exact shape and name the id they carry; the
/// X-API-Key header comes out trimmed; a bearer token verifies only as issued, untouched.
pub fn tokens(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for (token, prefix, parsed) in [
        (
            text.as_ref(),
            crate::service_tokens::PREFIX,
            crate::service_tokens::parse(&text),
        ),
        (
            text.trim(),
            "brrt_",
            crate::accounts::refresh::parse_refresh(&text),
        ),
    ] {
        if let Some((id, _)) = parsed {
            assert!(
                token.starts_with(prefix),
                "a token without its prefix parsed"
            );
            assert_eq!(
                token.len(),
                prefix.len() + 32 + 1 + 43,
                "a token of odd length"
            );
            let named = token
                .get(prefix.len()..prefix.len() + 32)
                .unwrap_or_default();
            assert!(
                named.eq_ignore_ascii_case(&id.simple().to_string()),
                "a token parsed to another id"
            );
        }
    }

    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(data) {
        headers.insert("x-api-key", value);
    }
    if let Some(key) = crate::proxy::api_key(&headers) {
        assert_eq!(key, key.trim());
        assert!(key.is_ascii());
    }
    assert_eq!(crate::owner::intake::token_hash(&text).len(), 32);

    bearer(data, &text);
}

fn bearer(data: &[u8], text: &str) {
    let Ok(master) = MasterKey::from_bytes(&[7u8; 32]) else {
        return;
    };
    let Ok(subkeys) = Keyring::single(master).subkeys("fuzz bearer tokens") else {
        return;
    };
    let keys = TokenKeys::new(&subkeys, Duration::hours(1));
    // A fuzzed text is never a token we issued.
    assert!(
        keys.verify(text).is_none(),
        "a made-up bearer token verified"
    );

    let now = OffsetDateTime::now_utc();
    let claims = Claims::new(
        Uuid::from_u128(u128::from(data.len() as u64)),
        Uuid::from_u128(0x5e55_1011),
        now,
        Duration::hours(1),
    );
    let Ok(token) = keys.issue(&claims) else {
        return;
    };
    let verified = keys.verify(&token);
    assert!(
        verified.is_some_and(|c| c.sub == claims.sub && c.sid == claims.sid),
        "an issued bearer token did not verify"
    );
    // Tamper: replace one byte, at a position and with a byte the input chooses.
    if let [a, b, byte, ..] = *data {
        let mut bytes = token.clone().into_bytes();
        let at = usize::from(u16::from_be_bytes([a, b])) % bytes.len();
        bytes[at] = byte;
        if let Ok(tampered) = String::from_utf8(bytes)
            && tampered != token
        {
            assert!(
                keys.verify(&tampered).is_none(),
                "a tampered token verified"
            );
        }
    }
}

/// `bridge_spec`: input is JSON (a bridge as the API takes it, as stored, or a probe) or an
/// intake header template. Whatever is accepted compiles again from what would be stored; a
/// checked probe never counts 401/403 as accepted; a template renders to a header value whose
/// refusal never shows the value.
pub fn bridge_spec(data: &[u8]) {
    if let Ok(body) = serde_json::from_slice::<brine_proto::BridgeBody>(data)
        && let Ok((value, checked)) =
            crate::owner::create::content(RecordKind::Bridge, None, Some(body), None)
    {
        let stored = serde_json::from_slice::<BridgeSecrets>(value.as_bytes());
        assert!(stored.is_ok(), "a stored bridge does not read back");
        if let (Ok(stored), brine_core::Policy::Bridge(policy)) = (stored, checked) {
            assert!(
                Bridge::compile(&stored, policy).is_ok(),
                "a stored bridge does not compile"
            );
        }
    }
    if let Ok(stored) = serde_json::from_slice::<BridgeSecrets>(data) {
        let _ = Bridge::compile(&stored, BridgePolicy::default());
    }
    if let Ok(probe) = serde_json::from_slice::<Probe>(data)
        && let Ok(checked) = probe.checked()
    {
        assert!(!checked.accepts(401) && !checked.accepts(403));
        let again = checked.clone().checked();
        assert!(
            again.as_ref() == Ok(&checked),
            "checking a probe twice changed it"
        );
        let _ = checked.request_line();
        let _ = checked.http_method();
    }

    let text = String::from_utf8_lossy(data);
    if let Ok(template) = crate::owner::intake::template(&text) {
        assert_eq!(template.matches("{{value}}").count(), 1);
        let value = format!("{CANARY}intake-value-0123456789");
        let rendered = template.replacen("{{value}}", &value, 1);
        let secrets = BridgeSecrets {
            url: UPSTREAM.to_owned(),
            headers: BTreeMap::from([("authorization".to_owned(), rendered)]),
            fallback_urls: Vec::new(),
        };
        if let Err(e) = Bridge::compile(&secrets, BridgePolicy::default()) {
            assert!(!e.to_string().contains(&value), "an error shows the value");
        }
    }
}

#[cfg(test)]
mod tests {
    //! Replays the committed seeds and every kept crash through the same checks.

    include!("../../../fuzz/replay.rs");

    #[test]
    fn headers_seeds_and_regressions() {
        replay("headers", super::headers);
    }

    #[test]
    fn client_addr_seeds_and_regressions() {
        replay("client_addr", super::client_addr);
    }

    #[test]
    fn config_seeds_and_regressions() {
        replay("config", super::config);
    }

    #[test]
    fn tokens_seeds_and_regressions() {
        replay("tokens", super::tokens);
    }

    #[test]
    fn bridge_spec_seeds_and_regressions() {
        replay("bridge_spec", super::bridge_spec);
    }
}
