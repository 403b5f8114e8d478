//! Calling the upstream: URL rendering, header hygiene, fallback hops, timeouts, streaming with
//! secret scrubbing, and `select`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use brine_bridge::headers::{connection_listed, forward_request_header, return_response_header};
use brine_bridge::scrub::{ScrubStream, Scrubber};
use brine_bridge::select::Selector;
use brine_bridge::ssrf::check_url;
use brine_bridge::template::UrlTemplate;
use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream::BoxStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use url::Url;

use std::future::Future;

use super::compiled::Bridge;
use crate::audit::Outcome;
use crate::error::REFUSAL_HEADER;
use crate::loop_guard::LoopGuard;
use crate::metrics::{Metrics, UpstreamResult};

/// The outbound HTTP client: no proxies from the environment, no redirects followed, and a DNS
/// resolver that refuses internal addresses at connect time (unless the operator allows them).
#[derive(Clone)]
pub struct UpstreamClient {
    client: reqwest::Client,
    allow_private: bool,
    /// Marks every call as having passed through this installation.
    loops: LoopGuard,
    /// KiB of upstream answers that `select` may hold in memory at once, across all calls.
    buffers: Arc<Semaphore>,
    metrics: Metrics,
}

impl UpstreamClient {
    pub fn new(
        allow_private: bool,
        connect_timeout: Duration,
        loops: LoopGuard,
        select_buffer_bytes: usize,
        metrics: Metrics,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(std::sync::Arc::new(
                brine_bridge::ssrf::GuardedResolver::new(allow_private),
            ))
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        let kib = (select_buffer_bytes / 1024).min(Semaphore::MAX_PERMITS);
        Ok(Self {
            client,
            allow_private,
            loops,
            buffers: Arc::new(Semaphore::new(kib)),
            metrics,
        })
    }

    pub fn loops(&self) -> &LoopGuard {
        &self.loops
    }
}

/// One call to make: everything the caller chose, already checked against the policy.
pub struct Call<'a> {
    pub method: Method,
    /// Extra path after `/r/{uuid}` (already matched against `allowed_paths`), or empty.
    pub extra_path: &'a str,
    /// The allowed prefix it matched; the final URL must still lie under it.
    pub path_prefix: &'a str,
    /// The caller's query parameters, `select` and declared params removed later.
    pub query: Vec<(String, String)>,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
    pub select: Option<&'a Selector>,
}

/// Why no upstream answer could be relayed.
#[derive(Debug)]
pub enum Failure {
    /// The caller's input cannot make a URL (missing or hostile parameter).
    BadInput(String),
    /// The upstream address is internal and not allowed.
    Refused,
    Timeout,
    Unreachable,
    /// The answer could not be `select`ed (too large).
    TooLarge,
    /// Selecting would take more memory than the server's budget for buffered answers has left.
    BufferBusy,
    /// The upstream compressed its answer although it was not offered compression.
    Compressed,
}

impl Failure {
    pub fn outcome(&self) -> Outcome {
        match self {
            Failure::BadInput(_) => Outcome::BadRequest,
            Failure::Refused => Outcome::Refused,
            Failure::Timeout => Outcome::Timeout,
            Failure::Unreachable => Outcome::Unreachable,
            Failure::TooLarge | Failure::BufferBusy | Failure::Compressed => Outcome::Error,
        }
    }
}

/// The upstream's answer, ready to relay.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: ScrubbedBody,
    /// Which URL answered: 0 for the primary, 1 for the first fallback, ...
    pub hop: usize,
    /// Time until the answer started.
    pub latency: Duration,
}

const SELECT_LIMIT: usize = 16 * 1024 * 1024;

fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

/// Makes the call, trying fallback hops in order when a hop cannot answer or answers 5xx — only
/// before anything has been relayed, only for idempotent methods unless the bridge opts in, never
/// after an answer that brine itself refused (busy, limits, a loop), and never once the bridge's
/// `total_timeout_ms` has passed: a hop that would start after it is not contacted.
pub async fn call(
    client: &UpstreamClient,
    bridge: &Bridge,
    scrubber: &Scrubber,
    call: Call<'_>,
) -> Result<Answer, Failure> {
    let declared: Vec<&str> = bridge
        .policy
        .params
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let lookup = |name: &str| {
        call.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let passthrough: Vec<&(String, String)> = call
        .query
        .iter()
        .filter(|(k, _)| k != "select" && !declared.contains(&k.as_str()))
        .collect();
    check_passthrough(passthrough.iter().map(|(k, _)| k.as_str()))?;
    let mut headers = outbound_headers(call.headers, bridge);
    client.loops.mark(&mut headers);
    let may_retry = idempotent(&call.method) || bridge.policy.fallback_non_idempotent;
    let per_hop = Duration::from_millis(bridge.policy.timeout_ms);
    let started = Instant::now();
    let deadline = started + Duration::from_millis(bridge.policy.total_timeout_ms);

    let mut last = Failure::Unreachable;
    let hops = bridge.hops.len();
    for (hop, template) in bridge.hops.iter().enumerate() {
        if hop > 0 && !may_retry {
            break;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            last = Failure::Timeout;
            break;
        }
        let url = hop_url(template, &lookup, &call, &passthrough)?;
        if check_url(&url, client.allow_private).is_err() {
            last = Failure::Refused;
            continue;
        }
        client.metrics.upstream_call();
        let request = client
            .client
            .request(call.method.clone(), url)
            .headers(headers.clone())
            .body(call.body.clone())
            .send();
        let sent = Instant::now();
        let response = match tokio::time::timeout(per_hop.min(left), request).await {
            Err(_) => {
                let took = sent.elapsed();
                client
                    .metrics
                    .upstream_latency(UpstreamResult::Timeout, took);
                last = Failure::Timeout;
                continue;
            }
            Ok(Err(e)) => {
                last = if is_refusal(&e) {
                    Failure::Refused
                } else if e.is_timeout() {
                    Failure::Timeout
                } else {
                    Failure::Unreachable
                };
                let result = match last {
                    Failure::Timeout => UpstreamResult::Timeout,
                    _ => UpstreamResult::Error,
                };
                client.metrics.upstream_latency(result, sent.elapsed());
                continue;
            }
            Ok(Ok(response)) => response,
        };
        let took = sent.elapsed();
        let status = UpstreamResult::Status(response.status());
        client.metrics.upstream_latency(status, took);
        let last_hop = hop + 1 == hops || !may_retry;
        let refused_by_brine = response.headers().contains_key(REFUSAL_HEADER);
        if response.status().is_server_error() && !last_hop && !refused_by_brine {
            last = Failure::Unreachable;
            continue;
        }
        let latency = started.elapsed();
        let buffers = &client.buffers;
        return relay(
            response,
            hop,
            latency,
            scrubber,
            call.select,
            bridge,
            buffers,
        )
        .await;
    }
    Err(last)
}

/// One hop's URL: its template rendered with the caller's parameters, the caller's extra path
/// (which must stay under the allowed prefix once normalised), and the passed-on query
/// parameters (which may not repeat the bridge's own).
fn hop_url(
    template: &UrlTemplate,
    lookup: &dyn Fn(&str) -> Option<String>,
    call: &Call<'_>,
    passthrough: &[&(String, String)],
) -> Result<Url, Failure> {
    let mut url = template
        .render(lookup)
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    if !call.extra_path.is_empty() {
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}{}", call.extra_path));
        let root = format!("{base}{}", call.path_prefix);
        let path = url.path();
        if !(path == root || path.starts_with(&format!("{root}/"))) {
            return Err(Failure::BadInput("That path is not allowed.".into()));
        }
    }
    if let Some((name, _)) = passthrough
        .iter()
        .find(|(k, _)| url.query_pairs().any(|(stored, _)| stored == k.as_str()))
    {
        return Err(Failure::BadInput(format!(
            "The query parameter '{name}' is set by the bridge."
        )));
    }
    if !passthrough.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in passthrough {
            pairs.append_pair(k, v);
        }
    }
    Ok(url)
}

/// Refuses passed-on query parameters that frameworks (Symfony, Laravel, Express's
/// method-override) read as the request's real method: they would step around `allowed_methods`.
pub fn check_passthrough<'a>(mut names: impl Iterator<Item = &'a str>) -> Result<(), Failure> {
    if names.any(|name| name.eq_ignore_ascii_case("_method")) {
        return Err(Failure::BadInput(
            "The query parameter '_method' would override the method; it is not passed on.".into(),
        ));
    }
    Ok(())
}

/// A connection refused by the SSRF guard (found in the error's chain of sources).
fn is_refusal(e: &reqwest::Error) -> bool {
    brine_bridge::ssrf::find_ssrf_error(e).is_some()
}

/// The caller's headers that may go upstream, then the stored ones on top (replacing any the
/// caller sent under the same name: a client can never override the stored key).
pub(crate) fn outbound_headers(caller: &HeaderMap, bridge: &Bridge) -> HeaderMap {
    let listed = connection_listed(caller);
    let mut out = HeaderMap::with_capacity(caller.len() + bridge.headers.len());
    for (name, value) in caller {
        if forward_request_header(name) && !listed.contains(name) {
            out.append(name.clone(), value.clone());
        }
    }
    for (name, value) in &bridge.headers {
        out.remove(name);
        out.insert(name.clone(), value.clone());
    }
    out
}

/// The upstream's headers that may go back to the caller, each scrubbed of stored secrets.
pub(crate) fn returned_headers(upstream: &HeaderMap, scrubber: &Scrubber) -> HeaderMap {
    let listed = connection_listed(upstream);
    let mut headers = HeaderMap::with_capacity(upstream.len());
    for (name, value) in upstream {
        if return_response_header(name) && !listed.contains(name) {
            headers.append(name.clone(), scrub_header(scrubber, value));
        }
    }
    headers
}

async fn relay(
    response: reqwest::Response,
    hop: usize,
    latency: Duration,
    scrubber: &Scrubber,
    select: Option<&Selector>,
    bridge: &Bridge,
    buffers: &Arc<Semaphore>,
) -> Result<Answer, Failure> {
    let status = response.status();
    // A compressed answer could not be scrubbed or selected from: it never passes.
    if response
        .headers()
        .get(header::CONTENT_ENCODING)
        .is_some_and(|e| !e.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        return Err(Failure::Compressed);
    }
    let mut headers = returned_headers(response.headers(), scrubber);
    let is_json = is_json(&headers);
    let total = Duration::from_millis(bridge.policy.total_timeout_ms);
    let deadline = tokio::time::Instant::now() + total.saturating_sub(latency);

    if let (Some(selector), true) = (select, is_json) {
        let read = read_capped(response, SELECT_LIMIT, buffers);
        // `_held` keeps the answer's share of the buffer budget until it has been selected from.
        let (body, _held) = tokio::time::timeout_at(deadline, read)
            .await
            .map_err(|_| Failure::Timeout)??;
        let scrubbed = scrubber.scrub(&body).into_owned();
        // Selecting scans the whole body, possibly several times: off the async workers.
        let selector = selector.clone();
        let selected = tokio::task::spawn_blocking(move || selector.apply(&scrubbed))
            .await
            .map_err(|_| Failure::Unreachable)?
            .map(Bytes::from)
            .map_err(|e| Failure::BadInput(format!("select: {e}")))?;
        headers.remove(header::CONTENT_ENCODING);
        return Ok(Answer {
            status,
            headers,
            body: ScrubbedBody::ready(selected),
            hop,
            latency,
        });
    }
    Ok(Answer {
        status,
        headers,
        body: ScrubbedBody::new(response, scrubber.stream(), deadline),
        hop,
        latency,
    })
}

/// Reads a whole answer, taking its size from the server's buffer budget as it grows (never
/// waiting for budget: when none is left, the call is refused rather than queued).
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
    budget: &Arc<Semaphore>,
) -> Result<(Vec<u8>, Option<OwnedSemaphorePermit>), Failure> {
    let mut body = Vec::new();
    let mut held: Option<OwnedSemaphorePermit> = None;
    while let Some(chunk) = response.chunk().await.map_err(|_| Failure::Unreachable)? {
        if body.len() + chunk.len() > cap {
            return Err(Failure::TooLarge);
        }
        body.extend_from_slice(&chunk);
        let needed = body.len().div_ceil(1024);
        let have = held.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
        if needed > have {
            let more = u32::try_from(needed - have).map_err(|_| Failure::TooLarge)?;
            let more = budget
                .clone()
                .try_acquire_many_owned(more)
                .map_err(|_| Failure::BufferBusy)?;
            match held.as_mut() {
                Some(permit) => permit.merge(more),
                None => held = Some(more),
            }
        }
    }
    Ok((body, held))
}

fn scrub_header(scrubber: &Scrubber, value: &HeaderValue) -> HeaderValue {
    match scrubber.scrub(value.as_bytes()) {
        std::borrow::Cow::Borrowed(_) => value.clone(),
        std::borrow::Cow::Owned(clean) => {
            HeaderValue::from_bytes(&clean).unwrap_or_else(|_| HeaderValue::from_static(""))
        }
    }
}

pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
}

/// The upstream body on its way to the caller: chunks pass through as they arrive (server-sent
/// events are never buffered), with stored secrets scrubbed, until the bridge's total deadline.
pub struct ScrubbedBody {
    inner: Option<BoxStream<'static, Result<Bytes, reqwest::Error>>>,
    scrub: Option<ScrubStream>,
    ready: Option<Bytes>,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// Bytes relayed so far (for the audit log).
    pub sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Why the body broke off before its end, when it did (the upstream failed or stalled).
    broken: Option<Outcome>,
    /// Runs once, when the body has ended or was dropped (the caller went away), with `broken`.
    on_end: Option<Box<dyn FnOnce(Option<Outcome>) + Send>>,
}

impl ScrubbedBody {
    fn new(
        response: reqwest::Response,
        scrub: ScrubStream,
        deadline: tokio::time::Instant,
    ) -> Self {
        Self {
            inner: Some(Box::pin(response.bytes_stream())),
            scrub: Some(scrub),
            ready: None,
            deadline: Some(Box::pin(tokio::time::sleep_until(deadline))),
            sent: Default::default(),
            broken: None,
            on_end: None,
        }
    }

    fn ready(body: Bytes) -> Self {
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(body.len() as u64));
        Self {
            inner: None,
            scrub: None,
            ready: Some(body),
            deadline: None,
            sent,
            broken: None,
            on_end: None,
        }
    }

    /// Reads the whole body (for the playground), up to `cap` bytes.
    pub async fn collect(mut self, cap: usize) -> Result<Bytes, Failure> {
        use futures_util::StreamExt;
        let mut out = Vec::new();
        while let Some(chunk) = self.next().await {
            let chunk = chunk.map_err(|_| Failure::Unreachable)?;
            if out.len() + chunk.len() > cap {
                return Err(Failure::TooLarge);
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    }

    fn count(&self, chunk: &Bytes) {
        self.sent
            .fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Stream for ScrubbedBody {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(ready) = self.ready.take() {
            return Poll::Ready(Some(Ok(ready)));
        }
        if let Some(deadline) = self.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            self.inner = None;
            self.scrub = None;
            self.broken = Some(Outcome::Timeout);
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the bridge's total timeout ended the answer",
            ))));
        }
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                let out = match self.scrub.as_mut() {
                    Some(scrub) => scrub.push(&chunk),
                    None => chunk,
                };
                self.count(&out);
                Poll::Ready(Some(Ok(out)))
            }
            Poll::Ready(Some(Err(e))) => {
                // A reset, or a close short of the promised length: the caller's body fails too.
                self.inner = None;
                self.broken = Some(Outcome::Unreachable);
                Poll::Ready(Some(Err(std::io::Error::other(e))))
            }
            Poll::Ready(None) => {
                self.inner = None;
                match self.scrub.take().map(ScrubStream::finish) {
                    Some(rest) if !rest.is_empty() => {
                        self.count(&rest);
                        Poll::Ready(Some(Ok(rest)))
                    }
                    _ => Poll::Ready(None),
                }
            }
        }
    }
}

impl ScrubbedBody {
    /// The body for axum, calling `on_end` once it has been relayed (or abandoned), with the
    /// outcome of a body that broke off (`None` when it ended, or the caller left).
    pub fn into_body_then(mut self, on_end: impl FnOnce(Option<Outcome>) + Send + 'static) -> Body {
        self.on_end = Some(Box::new(on_end));
        Body::from_stream(self)
    }
}

impl Drop for ScrubbedBody {
    fn drop(&mut self) {
        if let Some(on_end) = self.on_end.take() {
            on_end(self.broken);
        }
    }
}

/// Names of headers this proxy adds to relayed answers.
pub const HOP_HEADER: HeaderName = HeaderName::from_static("x-brine-hop");
