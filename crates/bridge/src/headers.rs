//! Which headers cross the proxy, in each direction.
//!
//! The rule is "everything passes except": the lists below name what must never cross, because it
//! carries the caller's credentials, describes brine's own hop, or would let the upstream set
//! state on brine's origin. Names compare lowercase (`HeaderName::as_str` is always lowercase).
//! Headers that `Connection:` names are hop-by-hop too; see [`connection_listed`].

use http::HeaderMap;
use http::HeaderName;
use http::header::CONNECTION;

/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the legacy ones): they describe one connection, not
/// the message, so they never cross a proxy in either direction.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Caller → upstream: credentials the caller sent to *brine* (the stored ones are added later),
/// and facts about the caller or brine's front hop that the third party has no business seeing.
const REQUEST_DENY: &[&str] = &[
    "authorization",
    "cookie",
    "cookie2",
    "x-api-key",
    "host",
    "forwarded",
    "via",
    "x-real-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "true-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
    "origin",
    "referer",
    // The client computes its own framing from the body it actually sends.
    "content-length",
    // hyper's client does not implement 100-continue; passing it on would only stall uploads.
    // brine must read answers to scrub them and to `select`: no compressed answers.
    "accept-encoding",
    "expect",
    // Method overrides and URL rewrites: many frameworks and gateways honour them, which would
    // let a caller step around `allowed_methods` and `allowed_paths` (a POST that the upstream
    // runs as DELETE, or a request for `/public` that it routes to `/admin`).
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-original-method",
    "x-original-url",
    "x-original-uri",
    "x-rewrite-url",
    "x-original-host",
    "x-host",
    // Next.js treats a request carrying this as its own subrequest and skips its middleware
    // (CVE-2025-29927): an authorisation bypass if the upstream is such an app.
    "x-middleware-subrequest",
];

/// Upstream → caller: state the upstream would otherwise plant on brine's origin (cookies, HSTS,
/// Alt-Svc, storage wiping, error reporting to the upstream's collector, auth prompts), and
/// framing that is recomputed for the caller.
const RESPONSE_DENY: &[&str] = &[
    "set-cookie",
    "set-cookie2",
    "content-length",
    "strict-transport-security",
    "alt-svc",
    "clear-site-data",
    "nel",
    "report-to",
    "reporting-endpoints",
    // A Basic challenge would make the browser prompt for a password on brine's origin.
    "www-authenticate",
    "proxy-authenticate",
];

/// True if a header the caller sent may be forwarded to the upstream.
pub fn forward_request_header(name: &HeaderName) -> bool {
    let n = name.as_str();
    !(HOP_BY_HOP.contains(&n)
        || REQUEST_DENY.contains(&n)
        || n.starts_with("x-forwarded-")
        || n.starts_with("x-envoy-")
        || n.starts_with("proxy-")
        || n.starts_with("access-control-request-"))
}

/// True if a header the upstream answered with may be returned to the caller.
pub fn return_response_header(name: &HeaderName) -> bool {
    let n = name.as_str();
    // brine sets its own CORS headers; the upstream's must never mix with them.
    !(HOP_BY_HOP.contains(&n) || RESPONSE_DENY.contains(&n) || n.starts_with("access-control-"))
}

/// Header names listed in `Connection:` (RFC 9110 §7.6.1): the sender declared them hop-by-hop,
/// so the proxy must drop them as well. Tokens that are not valid header names are skipped;
/// options such as `close` come back like any name (no header is called that, so dropping it is
/// harmless). Deduplicated, lowercase, in order of appearance.
pub fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    let mut out: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(CONNECTION) {
        // Non-UTF-8 bytes cannot name a header; skip the whole value rather than guess.
        let Ok(value) = value.to_str() else { continue };
        for token in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes())
                && !out.contains(&name)
            {
                out.push(name);
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn name(s: &str) -> HeaderName {
        HeaderName::from_bytes(s.as_bytes()).unwrap()
    }

    #[test]
    fn request_denylist() {
        for h in [
            "Accept-Encoding",
            "Authorization",
            "Proxy-Authorization",
            "Cookie",
            "X-API-Key",
            "x-api-key",
            "Host",
            "Forwarded",
            "X-Forwarded-For",
            "X-Forwarded-Host",
            "X-Forwarded-Proto",
            "x-forwarded-anything",
            "X-Real-IP",
            "True-Client-IP",
            "CF-Connecting-IP",
            "Via",
            "Origin",
            "Referer",
            "Proxy-Anything",
            "Proxy-Connection",
            "Connection",
            "Keep-Alive",
            "TE",
            "Trailer",
            "Transfer-Encoding",
            "Upgrade",
            "Content-Length",
            "Expect",
            "Access-Control-Request-Method",
            "Access-Control-Request-Headers",
            "Access-Control-Request-Private-Network",
            "X-HTTP-Method-Override",
            "X-HTTP-Method",
            "X-Method-Override",
            "X-Original-Method",
            "X-Original-URL",
            "X-Original-URI",
            "X-Rewrite-URL",
            "X-Original-Host",
            "X-Host",
            "X-Forwarded-Method",
            "X-Forwarded-Uri",
            "X-Forwarded-Prefix",
            "X-Envoy-Original-Path",
            "X-Middleware-Subrequest",
        ] {
            assert!(
                !forward_request_header(&name(h)),
                "{h} must not be forwarded"
            );
        }
    }

    #[test]
    fn request_passes_the_rest() {
        for h in [
            "Accept",
            "Accept-Language",
            "Content-Type",
            "Content-Encoding",
            "User-Agent",
            "If-None-Match",
            "Idempotency-Key",
            "X-Request-Id",
            "X-Forwarded", // not the X-Forwarded-* family
            "Access-Control-Allow-Origin",
            "OpenAI-Beta",
            "Range",
        ] {
            assert!(forward_request_header(&name(h)), "{h} should be forwarded");
        }
    }

    #[test]
    fn response_denylist() {
        for h in [
            "Set-Cookie",
            "Set-Cookie2",
            "Content-Length",
            "Strict-Transport-Security",
            "Alt-Svc",
            "Access-Control-Allow-Origin",
            "Access-Control-Allow-Credentials",
            "Access-Control-Expose-Headers",
            "Access-Control-Max-Age",
            "Connection",
            "Keep-Alive",
            "Transfer-Encoding",
            "Trailer",
            "Upgrade",
            "TE",
            "Proxy-Connection",
            "Proxy-Authenticate",
            "WWW-Authenticate",
            "Clear-Site-Data",
            "NEL",
            "Report-To",
            "Reporting-Endpoints",
        ] {
            assert!(
                !return_response_header(&name(h)),
                "{h} must not be returned"
            );
        }
    }

    #[test]
    fn response_passes_the_rest() {
        for h in [
            "Content-Type",
            "Content-Encoding",
            "Cache-Control",
            "ETag",
            "Last-Modified",
            "Retry-After",
            "X-RateLimit-Remaining",
            "Location",
            "Vary",
            "Date",
            "X-Request-Id",
        ] {
            assert!(return_response_header(&name(h)), "{h} should be returned");
        }
    }

    #[test]
    fn connection_tokens() {
        let mut h = HeaderMap::new();
        h.append(
            CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret-Hop ,close"),
        );
        h.append(
            CONNECTION,
            HeaderValue::from_static("x-secret-hop, Upgrade,, bad token,"),
        );
        h.append(
            CONNECTION,
            HeaderValue::from_bytes(b"\xff-not-utf8").unwrap(),
        );
        let got: Vec<String> = connection_listed(&h)
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(got, ["keep-alive", "x-secret-hop", "close", "upgrade"]);
    }

    #[test]
    fn connection_absent() {
        assert!(connection_listed(&HeaderMap::new()).is_empty());
    }
}
