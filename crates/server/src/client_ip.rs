//! The client's address: the socket peer, or — only when that peer is a configured trusted
//! proxy — the nearest untrusted address in `Forwarded` (RFC 7239) or, without it,
//! `X-Forwarded-For`. A client that connects directly cannot choose its address with a header.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Walks the chain from the nearest hop outwards and stops at the first address that is
    /// not a trusted proxy: everything further left was written by that untrusted party.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        for hop in forwarded_hops(headers).into_iter().rev() {
            // A malformed or hidden entry ends the chain we can believe.
            let Some(ip) = hop else { break };
            client = canonical(ip);
            if !self.trusts(client) {
                break;
            }
        }
        client
    }
}

/// The addresses a request passed through, oldest first: the `for=` of each `Forwarded`
/// element, or the entries of `X-Forwarded-For` when there is no `Forwarded` header. `None`
/// stands for an entry that is not an address (`unknown`, an obfuscated name, garbage).
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or(""))
            .flat_map(|v| v.split(','))
            .collect::<Vec<_>>()
    };
    let forwarded = values("forwarded");
    if forwarded.is_empty() {
        return values("x-forwarded-for")
            .iter()
            .map(|hop| hop.trim().parse().ok())
            .collect();
    }
    forwarded
        .iter()
        .map(|element| {
            let node = element.split(';').find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.trim())
            })?;
            parse_node(node.trim_matches('"'))
        })
        .collect()
}

/// A `Forwarded` node: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    let host = match node.split_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => node,
    };
    host.parse().ok()
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) as the IPv4 address they are.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_cannot_pick_their_address() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_ip(ip("203.0.113.9"), &headers(&["1.2.3.4"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn trusted_proxies_pass_the_nearest_untrusted_hop() {
        let lb = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        // Client-supplied junk on the left is ignored; the LB appended the real client.
        let h = headers(&["6.6.6.6, 198.51.100.7", "10.0.0.2"]);
        assert_eq!(lb.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        assert_eq!(lb.client_ip(ip("::ffff:10.0.0.1"), &h), ip("198.51.100.7"));
        // No header: the proxy itself.
        assert_eq!(
            lb.client_ip(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        // A malformed entry stops the walk at the last believable hop.
        let h = headers(&["198.51.100.7, garbage"]);
        assert_eq!(lb.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_is_read_like_x_forwarded_for_and_wins_over_it() {
        let lb = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        let with = |forwarded: &str| {
            let mut h = headers(&["6.6.6.6"]);
            h.append("forwarded", forwarded.parse().unwrap());
            lb.client_ip(ip("10.0.0.1"), &h)
        };
        assert_eq!(with("for=198.51.100.7"), ip("198.51.100.7"));
        assert_eq!(
            with(r#"for=6.6.6.6, for="198.51.100.7:4711";proto=https, for=10.0.0.2"#),
            ip("198.51.100.7")
        );
        assert_eq!(
            with(r#"For="[2001:db8::7]:443";by=10.0.0.2"#),
            ip("2001:db8::7")
        );
        // A hidden or unknown node ends the chain at the last believable hop.
        assert_eq!(with("for=unknown"), ip("10.0.0.1"));
        assert_eq!(with("for=_hidden, for=10.0.0.3"), ip("10.0.0.3"));
        // An untrusted peer cannot use it either.
        let mut h = HeaderMap::new();
        h.append("forwarded", "for=1.2.3.4".parse().unwrap());
        assert_eq!(lb.client_ip(ip("203.0.113.9"), &h), ip("203.0.113.9"));
    }
}
