//! What brine keeps of where a request came from: the client address in the form the operator
//! chose (whole, masked to its network plus a keyed hash, or the keyed hash alone), the user agent
//! (whole, reduced to browser and system, or nothing) and, with a GeoIP database, the country and
//! city. Everything stored about a client (audit events, account events, sessions) goes through
//! [`Origins::describe`], and the lockout counts failures on the same stored form, so it works
//! in every mode. The per-client rate limits key on the same keyed hash ([`ClientTag`]), so
//! their storage (Redis included) never holds an address either.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::throttle::client_network;

/// How a client address is stored (`keep_client_address`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressForm {
    /// `203.0.113.7`: the address as it is.
    Full,
    /// `203.0.113.0/24 #3fa9c2d1`: the /24 (IPv4) or /48 (IPv6) and a keyed hash of the client.
    #[default]
    Masked,
    /// `#3fa9c2d1e07b`: the keyed hash alone.
    Hashed,
}

/// How a user agent is stored (`keep_user_agent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserAgentForm {
    /// As sent (up to 256 bytes).
    Full,
    /// `Chrome 131 on Windows`: browser or tool, major version, system.
    #[default]
    Reduced,
    /// Not stored.
    None,
}

/// A client as the rate limits know it: the first 16 bytes of the keyed hash of its address (or
/// IPv6 /64), in every mode.
pub type ClientTag = [u8; 16];

/// What is stored about one request's client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    /// ISO 3166-1 alpha-2 code, from the GeoIP database.
    pub country: Option<String>,
    pub city: Option<String>,
}

/// The operator's choices, the key of the hash and the GeoIP database: built once at start.
pub struct Origins {
    address: AddressForm,
    user_agent: UserAgentForm,
    /// HMAC-SHA256 keyed with a subkey of the master key: the same client always gets the same
    /// hash on every node, and nobody without the master key can tell which address it was.
    mac: Hmac<Sha256>,
    geo: Option<GeoDb>,
}

impl Origins {
    pub fn new(
        address: AddressForm,
        user_agent: UserAgentForm,
        key: &[u8],
        geo: Option<GeoDb>,
    ) -> Result<Self, hmac::digest::InvalidLength> {
        Ok(Self {
            address,
            user_agent,
            mac: <Hmac<Sha256> as KeyInit>::new_from_slice(key)?,
            geo,
        })
    }

    /// What to store for a client at `addr` that sent `user_agent`, and its tag for the rate
    /// limits. The place is looked up on the whole address before it is masked; without a
    /// database, no lookup is made.
    pub fn describe(
        &self,
        addr: Option<IpAddr>,
        user_agent: Option<&str>,
    ) -> (Origin, Option<ClientTag>) {
        let addr = addr.map(canonical);
        let place = match (&self.geo, addr) {
            (Some(geo), Some(ip)) => geo.place(ip),
            _ => Place::default(),
        };
        let digest = addr.map(|ip| self.digest(ip));
        let origin = Origin {
            client_ip: addr.zip(digest).map(|(ip, d)| self.address_text(ip, &d)),
            user_agent: user_agent.and_then(|ua| match self.user_agent {
                UserAgentForm::Full => Some(ua.to_owned()),
                UserAgentForm::Reduced => Some(reduce_user_agent(ua)),
                UserAgentForm::None => None,
            }),
            country: place.country,
            city: place.city,
        };
        (origin, digest)
    }

    fn address_text(&self, ip: IpAddr, digest: &ClientTag) -> String {
        match self.address {
            AddressForm::Full => ip.to_string(),
            AddressForm::Masked => format!("{} #{}", masked_network(ip), hex(digest, 8)),
            AddressForm::Hashed => format!("#{}", hex(digest, 12)),
        }
    }

    /// The keyed hash of the client: its IPv4 address or its IPv6 /64 (the block one subscriber
    /// gets, whose low bits privacy extensions change daily).
    fn digest(&self, ip: IpAddr) -> ClientTag {
        let mut mac = self.mac.clone();
        match client_network(ip) {
            IpAddr::V4(v4) => mac.update(&v4.octets()),
            IpAddr::V6(v6) => mac.update(&v6.octets()),
        }
        let mut tag = [0; 16];
        tag.copy_from_slice(&mac.finalize().into_bytes()[..16]);
        tag
    }
}

/// The first `digits` hex digits of `digest`.
fn hex(digest: &ClientTag, digits: usize) -> String {
    let mut text = String::with_capacity(digits + 1);
    for b in digest.iter().take(digits.div_ceil(2)) {
        text.push_str(&format!("{b:02x}"));
    }
    text.truncate(digits);
    text
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The /24 of an IPv4 address, the /48 of an IPv6 one (a site: no single subscriber).
fn masked_network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{}/24", Ipv4Addr::new(a, b, c, 0))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{}/48", Ipv6Addr::new(s[0], s[1], s[2], 0, 0, 0, 0, 0))
        }
    }
}

/// A GeoIP database in the MaxMind DB format (GeoLite2-City, GeoIP2-Country, ...), read into
/// memory once at start. Reading rather than mapping the file: the database can be replaced on
/// disk while brine runs (it is read again at the next start), and no unsafe code is involved.
pub struct GeoDb(maxminddb::Reader<Vec<u8>>);

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Place {
    pub country: Option<String>,
    pub city: Option<String>,
}

/// The few fields read from a City or Country record; the rest is skipped without decoding.
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(borrow, default)]
    country: Option<Named<'a>>,
    #[serde(borrow, default)]
    city: Option<Named<'a>>,
}

#[derive(Deserialize)]
struct Named<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
    #[serde(borrow, default)]
    names: Option<EnglishName<'a>>,
}

#[derive(Deserialize)]
struct EnglishName<'a> {
    #[serde(borrow, default)]
    en: Option<&'a str>,
}

impl GeoDb {
    pub fn open(path: &Path) -> Result<Self, String> {
        let reader = maxminddb::Reader::open_readfile(path).map_err(|e| {
            format!(
                "geoip_db: cannot read {} as a MaxMind database: {e}",
                path.display()
            )
        })?;
        tracing::info!(
            database = reader.metadata().database_type,
            "GeoIP database loaded"
        );
        Ok(Self(reader))
    }

    /// Where `ip` is, as far as the database knows; nothing when it does not (or cannot say).
    pub fn place(&self, ip: IpAddr) -> Place {
        let Ok(found) = self.0.lookup(ip) else {
            return Place::default();
        };
        let Ok(Some(record)) = found.decode::<Record>() else {
            return Place::default();
        };
        Place {
            country: record.country.and_then(|c| c.iso_code).map(str::to_owned),
            city: record
                .city
                .and_then(|c| c.names)
                .and_then(|n| n.en)
                .map(str::to_owned),
        }
    }
}

/// A user agent reduced to browser (or tool) and major version, and the system when it names
/// one: `Chrome 131 on Windows`, `Safari 18 on iOS`, `curl 8`. Version details, device models
/// and build numbers (what makes a user agent a fingerprint) are dropped.
pub fn reduce_user_agent(ua: &str) -> String {
    let browser = browser(ua);
    match (browser, system(ua)) {
        (Some(browser), Some(system)) => format!("{browser} on {system}"),
        (Some(browser), None) => browser,
        (None, Some(system)) => format!("Unknown on {system}"),
        (None, None) => "Unknown".to_owned(),
    }
}

/// Browsers in the order their tokens must be tried: Edge and Opera also say Chrome, Chrome also
/// says Safari.
const BROWSERS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("Chrome/", "Chrome"),
];

/// Product tokens that every browser sends and that name none.
const GENERIC_TOKENS: &[&str] = &[
    "Mozilla",
    "AppleWebKit",
    "KHTML",
    "Gecko",
    "Safari",
    "Mobile",
    "Version",
    "like",
    "compatible",
];

fn browser(ua: &str) -> Option<String> {
    for (token, name) in BROWSERS {
        if let Some(version) = major_after(ua, token) {
            return Some(format!("{name} {version}"));
        }
    }
    if ua.contains("Safari/")
        && let Some(version) = major_after(ua, "Version/")
    {
        return Some(format!("Safari {version}"));
    }
    // A tool or a bot: its own product token (`curl/8.5.0`, `Googlebot/2.1`).
    ua.split(|c: char| c.is_whitespace() || matches!(c, ';' | '(' | ')' | ','))
        .filter_map(|token| {
            let (name, version) = token.split_once('/').unwrap_or((token, ""));
            let plain = !name.is_empty()
                && name.len() <= 40
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
                && name.bytes().any(|b| b.is_ascii_alphabetic());
            (plain && !GENERIC_TOKENS.contains(&name)).then_some((name, major(version)))
        })
        .next()
        .map(|(name, version)| match version {
            Some(version) => format!("{name} {version}"),
            None => name.to_owned(),
        })
}

/// The system, most specific first: iPhones say "like Mac OS X", Android says Linux.
fn system(ua: &str) -> Option<&'static str> {
    const SYSTEMS: &[(&str, &str)] = &[
        ("Windows", "Windows"),
        ("iPhone", "iOS"),
        ("iPad", "iOS"),
        ("iPod", "iOS"),
        ("Android", "Android"),
        ("CrOS", "ChromeOS"),
        ("Macintosh", "macOS"),
        ("Mac OS X", "macOS"),
        ("FreeBSD", "FreeBSD"),
        ("Linux", "Linux"),
    ];
    SYSTEMS
        .iter()
        .find(|(token, _)| ua.contains(token))
        .map(|(_, name)| *name)
}

/// The major version right after `token`: `131` in `Chrome/131.0.0.0`.
fn major_after<'a>(ua: &'a str, token: &str) -> Option<&'a str> {
    let at = ua.find(token)? + token.len();
    major(&ua[at..])
}

fn major(version: &str) -> Option<&str> {
    let digits = version
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count()
        .min(6);
    (digits > 0).then(|| &version[..digits])
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
        (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const CHROME_ANDROID: &str = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, \
        like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36";
    const EDGE_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
        (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86";
    const FIREFOX_LINUX: &str =
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
    const FIREFOX_MAC: &str =
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0";
    const SAFARI_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) \
        AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) \
        AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1";
    const CHROME_IPAD: &str = "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 \
        (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1";
    const GOOGLEBOT: &str =
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn origins(address: AddressForm, key: &[u8]) -> Origins {
        Origins::new(address, UserAgentForm::Full, key, None).unwrap()
    }

    impl Origins {
        fn stored(&self, addr: IpAddr) -> String {
            self.describe(Some(addr), None).0.client_ip.unwrap()
        }
    }

    #[test]
    fn user_agents_reduce_to_browser_version_and_system() {
        for (ua, reduced) in [
            (CHROME_WINDOWS, "Chrome 131 on Windows"),
            (CHROME_ANDROID, "Chrome 131 on Android"),
            (EDGE_WINDOWS, "Edge 131 on Windows"),
            (FIREFOX_LINUX, "Firefox 133 on Linux"),
            (FIREFOX_MAC, "Firefox 133 on macOS"),
            (SAFARI_MAC, "Safari 18 on macOS"),
            (SAFARI_IPHONE, "Safari 18 on iOS"),
            (CHROME_IPAD, "Chrome 131 on iOS"),
            (GOOGLEBOT, "Googlebot 2"),
            ("curl/8.5.0", "curl 8"),
            ("python-requests/2.32.3", "python-requests 2"),
            ("deploy-bot/1.0", "deploy-bot 1"),
            (
                "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
                "Slackbot-LinkExpanding",
            ),
            ("", "Unknown"),
            ("<script>alert(1)</script>", "Unknown"),
        ] {
            assert_eq!(reduce_user_agent(ua), reduced, "{ua}");
        }
    }

    #[test]
    fn masked_addresses_keep_the_network_and_a_hash() {
        let o = origins(AddressForm::Masked, &[7; 32]);
        let v4 = o.stored(ip("203.0.113.77"));
        assert!(v4.starts_with("203.0.113.0/24 #"), "{v4}");
        assert_eq!(v4.len(), "203.0.113.0/24 #".len() + 8);
        let v6 = o.stored(ip("2001:db8:1:2:3:4:5:6"));
        assert!(v6.starts_with("2001:db8:1::/48 #"), "{v6}");
        // An IPv4-mapped IPv6 address is the IPv4 client it is.
        assert_eq!(o.stored(ip("::ffff:203.0.113.77")), v4);
        // The rate limits' tag is the same hash, in every mode.
        let tag = o.describe(Some(ip("203.0.113.77")), None).1.unwrap();
        assert!(v4.ends_with(&hex(&tag, 8)));
        let full = origins(AddressForm::Full, &[7; 32]);
        assert_eq!(full.describe(Some(ip("203.0.113.77")), None).1, Some(tag));
        // No part of the address beyond the network is kept.
        assert!(!v4.contains("77"), "{v4}");
    }

    #[test]
    fn hashes_are_stable_per_client_and_differ_between_clients_and_keys() {
        let o = origins(AddressForm::Masked, &[7; 32]);
        let a = o.stored(ip("203.0.113.77"));
        assert_eq!(a, o.stored(ip("203.0.113.77")));
        assert_eq!(
            a,
            origins(AddressForm::Masked, &[7; 32]).stored(ip("203.0.113.77"))
        );
        assert_ne!(a, o.stored(ip("203.0.113.78")));
        // Another installation (another master key) gives the same client another hash.
        assert_ne!(
            a,
            origins(AddressForm::Masked, &[8; 32]).stored(ip("203.0.113.77"))
        );
        // An IPv6 client is its /64: privacy addresses in it are one visitor, the next /64 not.
        assert_eq!(
            o.stored(ip("2001:db8:1:2::1")),
            o.stored(ip("2001:db8:1:2:aaaa::9"))
        );
        assert_ne!(
            o.stored(ip("2001:db8:1:2::1")),
            o.stored(ip("2001:db8:1:3::1"))
        );
        // The hashed form is the same hash, longer, without the network.
        let hashed = origins(AddressForm::Hashed, &[7; 32]).stored(ip("203.0.113.77"));
        assert_eq!(hashed.len(), 13);
        assert!(hashed.starts_with(&a[a.len() - 9..]), "{hashed} {a}");
        assert!(!hashed.contains("203"), "{hashed}");
    }

    #[test]
    fn full_mode_keeps_today_s_text_and_user_agent_modes_apply() {
        let full = Origins::new(AddressForm::Full, UserAgentForm::Full, &[1; 32], None).unwrap();
        let (o, _) = full.describe(Some(ip("::ffff:192.0.2.1")), Some(FIREFOX_LINUX));
        assert_eq!(o.client_ip.as_deref(), Some("192.0.2.1"));
        assert_eq!(o.user_agent.as_deref(), Some(FIREFOX_LINUX));
        assert_eq!((o.country, o.city), (None, None));
        let none = Origins::new(AddressForm::Full, UserAgentForm::None, &[1; 32], None).unwrap();
        assert_eq!(
            none.describe(None, Some(FIREFOX_LINUX)),
            (Origin::default(), None)
        );
        let reduced =
            Origins::new(AddressForm::Full, UserAgentForm::Reduced, &[1; 32], None).unwrap();
        assert_eq!(
            reduced
                .describe(None, Some(FIREFOX_LINUX))
                .0
                .user_agent
                .as_deref(),
            Some("Firefox 133 on Linux")
        );
    }

    fn fixture() -> GeoDb {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/tests/fixtures/geoip-test.mmdb");
        GeoDb::open(&path).unwrap()
    }

    #[test]
    fn the_fixture_database_places_its_networks() {
        let geo = fixture();
        let place = |s| geo.place(ip(s));
        let nz = Place {
            country: Some("NZ".into()),
            city: Some("Wellington".into()),
        };
        assert_eq!(place("127.0.0.1"), nz);
        assert_eq!(place("127.255.0.9"), nz);
        assert_eq!(
            place("::1"),
            Place {
                country: Some("IS".into()),
                city: None
            }
        );
        assert_eq!(place("198.51.100.200").city.as_deref(), Some("Paris"));
        assert_eq!(place("192.0.2.1"), Place::default());
        assert_eq!(place("2001:db8::1"), Place::default());
        // The place is looked up before the address is masked.
        let o = Origins::new(
            AddressForm::Hashed,
            UserAgentForm::None,
            &[1; 32],
            Some(geo),
        );
        let (o, _) = o.unwrap().describe(Some(ip("::ffff:127.0.0.1")), None);
        assert_eq!(o.country.as_deref(), Some("NZ"));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("not.mmdb");
        std::fs::write(&path, b"not a database").unwrap();
        let err = GeoDb::open(&path).err().unwrap();
        assert!(err.starts_with("geoip_db: cannot read"), "{err}");
        assert!(GeoDb::open(&dir.path().join("missing.mmdb")).is_err());
    }

    /// `cargo test -p brine-server --release lookup_cost -- --ignored --nocapture`
    #[test]
    #[ignore = "a measurement, not a test"]
    fn lookup_cost() {
        let geo = fixture();
        let o = Origins::new(
            AddressForm::Masked,
            UserAgentForm::Reduced,
            &[1; 32],
            Some(geo),
        );
        let o = o.unwrap();
        let n = 200_000u32;
        let time = |f: &dyn Fn(u32)| {
            let start = std::time::Instant::now();
            for i in 0..n {
                f(i);
            }
            start.elapsed().as_nanos() / u128::from(n)
        };
        let geo = o.geo.as_ref().unwrap();
        let hit = time(&|i| {
            std::hint::black_box(geo.place(IpAddr::from([127, 0, (i >> 8) as u8, i as u8])));
        });
        let miss = time(&|i| {
            std::hint::black_box(geo.place(IpAddr::from([192, 0, (i >> 8) as u8, i as u8])));
        });
        let whole = time(&|i| {
            let addr = IpAddr::from([127, 0, (i >> 8) as u8, i as u8]);
            std::hint::black_box(o.describe(Some(addr), Some(CHROME_WINDOWS)));
        });
        println!(
            "geo lookup, found: {hit} ns; not found: {miss} ns; describe (masked, reduced, geo): {whole} ns"
        );
    }
}
