//! Which addresses an upstream may have (invariant 7: brine is not an open proxy).
//!
//! The check runs on *resolved addresses*, inside the HTTP client's resolver, so the address that
//! was checked is the address that gets connected to (no DNS-rebinding window). reqwest does not
//! call the resolver for IP-literal hosts, so [`check_url`] covers those before the request.
//!
//! Rather than listing every special range, IPv6 is judged by allow-list: only global unicast
//! (`2000::/3`) can be an upstream, minus the special blocks inside it; forms that embed an IPv4
//! address are judged by that address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an upstream address was refused. Messages are safe to show callers: they never include
/// the host or address (the URL is secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsrfError {
    #[error("the upstream address is not allowed (internal or reserved network)")]
    ForbiddenAddress,
    #[error("the upstream URL must use http or https")]
    UnsupportedScheme,
    #[error("the upstream URL has no host")]
    MissingHost,
}

/// True if `ip` must never be an upstream: anything that is not a public unicast address.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    const NETS: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),       // "this network", incl. 0.0.0.0
        ([10, 0, 0, 0], 8),      // private
        ([100, 64, 0, 0], 10),   // CGNAT
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local, incl. cloud metadata 169.254.169.254
        ([172, 16, 0, 0], 12),   // private
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // TEST-NET-1
        ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast
        ([192, 168, 0, 0], 16),  // private
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // TEST-NET-2
        ([203, 0, 113, 0], 24),  // TEST-NET-3
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, incl. broadcast 255.255.255.255
    ];
    NETS.iter().any(|&(net, prefix)| in_v4(ip, net, prefix))
}

fn in_v6(ip: Ipv6Addr, net: [u16; 8], prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == u128::from(Ipv6Addr::from(net)) & mask
}

/// The low 32 bits as an IPv4 address.
fn low_v4(ip: Ipv6Addr) -> Ipv4Addr {
    // Truncation is the point: the embedded address is the last 32 bits.
    Ipv4Addr::from((u128::from(ip) & 0xffff_ffff) as u32)
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Forms that carry an IPv4 address: an attacker picks them precisely to reach 127.0.0.1 or
    // 169.254.169.254 past a naive v6 check, so judge the embedded address.
    if in_v6(ip, [0, 0, 0, 0, 0, 0xffff, 0, 0], 96) // IPv4-mapped ::ffff:a.b.c.d
        || in_v6(ip, [0, 0, 0, 0, 0, 0, 0, 0], 96) // IPv4-compatible ::a.b.c.d (and ::, ::1)
        || in_v6(ip, [0, 0, 0, 0, 0xffff, 0, 0, 0], 96) // IPv4-translated ::ffff:0:a.b.c.d
        || in_v6(ip, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96)
    // NAT64 64:ff9b::/96
    {
        return forbidden_v4(low_v4(ip));
    }
    if in_v6(ip, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        // 6to4: the IPv4 address sits in bits 16..48.
        let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
        return forbidden_v4(v4);
    }
    // Only global unicast can be an upstream; this excludes ::/8, 64:ff9b:1::/48, 100::/64,
    // fc00::/7, fe80::/10, fec0::/10, ff00::/8 and every unassigned block at once.
    if !in_v6(ip, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3) {
        return true;
    }
    const SPECIAL: &[([u16; 8], u32)] = &[
        // IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID, AMT, AS112...
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        ([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),     // documentation (RFC 9637)
    ];
    SPECIAL.iter().any(|&(net, prefix)| in_v6(ip, net, prefix))
}

/// Refuses URLs whose host is a forbidden IP literal. Hostnames pass here: the resolver checks
/// the addresses they resolve to at connect time.
pub fn check_url(url: &url::Url, allow_private: bool) -> Result<(), SsrfError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(SsrfError::UnsupportedScheme);
    }
    let ip = match url.host() {
        None => return Err(SsrfError::MissingHost),
        Some(url::Host::Domain(_)) => return Ok(()),
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
    };
    if !allow_private && is_forbidden(ip) {
        return Err(SsrfError::ForbiddenAddress);
    }
    Ok(())
}

/// Finds an [`SsrfError`] anywhere in an error's source chain. reqwest wraps resolver failures
/// (its outer message is a generic connect/"error resolving DNS"), so this is how the caller
/// tells "address not allowed" apart from a real network failure.
pub fn find_ssrf_error<'e>(err: &'e (dyn std::error::Error + 'static)) -> Option<&'e SsrfError> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(found) = e.downcast_ref::<SsrfError>() {
            return Some(found);
        }
        cur = e.source();
    }
    None
}

/// A reqwest DNS resolver that drops forbidden addresses. Install it with
/// `ClientBuilder::dns_resolver` — and also disable system proxies (`.no_proxy()`), since with a
/// proxy the upstream name is resolved by the proxy, not here.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl GuardedResolver {
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }

    /// The allowed subset of `addrs`, or `ForbiddenAddress` if nothing is left.
    pub fn filter(
        &self,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Vec<SocketAddr>, SsrfError> {
        let allowed: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| self.allow_private || !is_forbidden(a.ip()))
            .collect();
        if allowed.is_empty() {
            return Err(SsrfError::ForbiddenAddress);
        }
        Ok(allowed)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = *self;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest substitutes the URL's port (or the scheme's default).
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let addrs: Addrs = Box::new(guard.filter(found)?.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forbidden_ipv4() {
        for s in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.0.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "192.0.0.8",
            "192.0.0.170",
            "198.18.0.1",
            "198.19.255.255",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "192.88.99.1",
        ] {
            assert!(is_forbidden(ip(s)), "{s} must be forbidden");
        }
    }

    #[test]
    fn allowed_ipv4() {
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "93.184.215.14",
            "172.15.255.255", // just below 172.16/12
            "172.32.0.1",     // just above
            "100.63.255.255", // just below CGNAT
            "100.128.0.1",    // just above
            "169.253.255.255",
            "192.167.255.255",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.255", // last unicast before multicast
            "11.0.0.1",
            "126.255.255.255",
            "128.0.0.1",
        ] {
            assert!(!is_forbidden(ip(s)), "{s} should be allowed");
        }
    }

    #[test]
    fn forbidden_ipv6() {
        for s in [
            "::",
            "::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff05::1:3",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "3fff::1",
            "100::1", // discard-only
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo
            "2001:2::1",                            // benchmarking
            "2001:20::1",                           // ORCHIDv2
            "64:ff9b:1::1",                         // local-use NAT64
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "::10.1.2.3",
            "::ffff:0:127.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe", // 169.254.169.254
            "2002:7f00:1::",      // 6to4 of 127.0.0.1
            "2002:a9fe:a9fe::1",  // 6to4 of 169.254.169.254
            "2002:c0a8:0101::1",  // 6to4 of 192.168.1.1
        ] {
            assert!(is_forbidden(ip(s)), "{s} must be forbidden");
        }
    }

    #[test]
    fn allowed_ipv6() {
        for s in [
            "2606:4700::1111",
            "2606:4700:4700::1001",
            "2001:4860:4860::8888",
            "2a00:1450:4001:82a::200e",
            "2001:200::1", // just past 2001::/23
            "::ffff:8.8.8.8",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",  // NAT64 of 8.8.8.8
            "2002:0808:0808::1", // 6to4 of 8.8.8.8
            "3ffe::1",           // below 3fff::/20, still global unicast
        ] {
            assert!(!is_forbidden(ip(s)), "{s} should be allowed");
        }
    }

    #[test]
    fn url_literals() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        for s in [
            "http://127.0.0.1/",
            "http://127.1/",
            "http://2130706433/", // decimal 127.0.0.1, normalised by the url crate
            "http://0x7f.0.0.1/",
            "http://0/",
            "https://[::1]:8443/x",
            "http://[::ffff:169.254.169.254]/latest/meta-data",
            "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.1:8080/",
        ] {
            assert_eq!(
                check_url(&u(s), false),
                Err(SsrfError::ForbiddenAddress),
                "{s}"
            );
            assert_eq!(check_url(&u(s), true), Ok(()), "{s} with allow_private");
        }
        for s in [
            "https://8.8.8.8/",
            "https://[2606:4700::1111]/",
            "https://api.example.com/v1",
            "http://localhost/", // a name: the resolver judges it
        ] {
            assert_eq!(check_url(&u(s), false), Ok(()), "{s}");
        }
        assert_eq!(
            check_url(&u("ftp://8.8.8.8/"), true),
            Err(SsrfError::UnsupportedScheme)
        );
        assert_eq!(
            check_url(&u("file:///etc/passwd"), true),
            Err(SsrfError::UnsupportedScheme)
        );
    }

    #[test]
    fn filter_keeps_only_allowed() {
        let g = GuardedResolver::new(false);
        let a: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let b: SocketAddr = "[2606:4700::1111]:0".parse().unwrap();
        assert_eq!(g.filter([a, b]), Ok(vec![b]));
        assert_eq!(g.filter([a]), Err(SsrfError::ForbiddenAddress));
        assert_eq!(g.filter([]), Err(SsrfError::ForbiddenAddress));
        assert_eq!(GuardedResolver::new(true).filter([a, b]), Ok(vec![a, b]));
    }

    #[tokio::test]
    async fn resolver_refuses_localhost() {
        let name = Name::from_str("localhost").unwrap();
        let err = match GuardedResolver::new(false).resolve(name).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(e) => e,
        };
        assert!(err.to_string().contains("not allowed"), "{err}");
        assert!(!err.to_string().to_lowercase().contains("dns"), "{err}");
        assert_eq!(find_ssrf_error(&*err), Some(&SsrfError::ForbiddenAddress));
    }

    #[tokio::test]
    async fn resolver_allows_localhost_when_private_allowed() {
        let name = Name::from_str("localhost").unwrap();
        let addrs: Vec<SocketAddr> = match GuardedResolver::new(true).resolve(name).await {
            Ok(a) => a.collect(),
            Err(e) => panic!("localhost should resolve: {e}"),
        };
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    /// Through a real reqwest client: the refusal surfaces in the error chain. Nothing is sent:
    /// the resolver refuses before any connection.
    #[tokio::test]
    async fn reqwest_surfaces_the_refusal() {
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(GuardedResolver::new(false))
            .build()
            .unwrap();
        let err = client.get("http://localhost:9/").send().await.unwrap_err();
        assert_eq!(
            find_ssrf_error(&err),
            Some(&SsrfError::ForbiddenAddress),
            "{err:?}"
        );
    }

    /// Documents why `check_url` exists: reqwest never asks the resolver about IP literals.
    /// (Connects only to a loopback port that was just freed, so it is refused.)
    #[tokio::test]
    async fn reqwest_skips_resolver_for_ip_literals() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(GuardedResolver::new(false))
            .build()
            .unwrap();
        let res = client.get(format!("http://127.0.0.1:{port}/")).send().await;
        if let Err(err) = res {
            assert_eq!(
                find_ssrf_error(&err),
                None,
                "resolver was consulted: {err:?}"
            );
        }
    }
}
