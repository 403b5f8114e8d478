//! Sending a bridge's probe: one request through the same outbound client, templating, stored
//! headers, fallbacks and scrubbing as a caller's call, to learn whether the upstream accepts
//! the key. Only the status counts; of the answer, a short scrubbed excerpt is kept for the
//! owner (never for a log or an event).

use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use brine_core::Probe;
use bytes::Bytes;
use futures_util::StreamExt;

use super::Proxy;
use super::cache::Compiled;
use super::upstream::{self, Call, Failure};

/// How long a probe may wait for each address, and for everything: the owner is waiting on a
/// page or a command, and the API's own deadline is 30 seconds.
const PER_HOP: Duration = Duration::from_secs(10);
const TOTAL: Duration = Duration::from_secs(20);

/// Bytes of the answer read for the excerpt; the rest is never read.
const EXCERPT_BYTES: usize = 1024;
/// Characters of the excerpt shown.
const EXCERPT_CHARS: usize = 200;

/// What the upstream answered to a probe.
pub struct ProbeAnswer {
    pub status: u16,
    /// 0 when the primary URL answered, 1 for the first fallback, ...
    pub hop: usize,
    pub duration_ms: u64,
    /// The start of the answer's body, scrubbed of the bridge's secrets, on one line.
    pub excerpt: String,
}

impl Proxy {
    /// Sends `probe` through `compiled` (a stored bridge, or one about to be stored).
    pub async fn probe(
        &self,
        mut compiled: Compiled,
        probe: &Probe,
    ) -> Result<ProbeAnswer, Failure> {
        let policy = &mut compiled.bridge.policy;
        policy.timeout_ms = policy.timeout_ms.min(millis(PER_HOP));
        policy.total_timeout_ms = policy.total_timeout_ms.min(millis(TOTAL));
        let started = Instant::now();
        let answer = upstream::call(
            &self.upstream,
            &compiled.bridge,
            &compiled.scrubber,
            Call {
                method: probe.http_method(),
                extra_path: &probe.path,
                path_prefix: "",
                query: probe
                    .params
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                headers: &HeaderMap::new(),
                body: Bytes::new(),
                select: None,
            },
        )
        .await?;
        let status = answer.status.as_u16();
        let mut body = answer.body;
        let mut head = Vec::new();
        // A broken or slow body does not change the verdict: the status has arrived.
        while head.len() < EXCERPT_BYTES {
            match body.next().await {
                Some(Ok(chunk)) => head.extend_from_slice(&chunk),
                _ => break,
            }
        }
        Ok(ProbeAnswer {
            status,
            hop: answer.hop,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            excerpt: excerpt(&head),
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The first characters of an answer, on one line (control characters become spaces).
fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut chars = line.chars();
    let mut out: String = chars.by_ref().take(EXCERPT_CHARS).collect();
    if chars.next().is_some() || bytes.len() >= EXCERPT_BYTES {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_short_single_lines() {
        assert_eq!(
            excerpt(b"{\"error\":\n  \"bad key\"}\r\n"),
            "{\"error\": \"bad key\"}"
        );
        let long = "x".repeat(500);
        let cut = excerpt(long.as_bytes());
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt(b""), "");
        assert_eq!(excerpt(b"a\x07b"), "a b");
    }
}
