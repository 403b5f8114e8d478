//! Requests by route template, record type and status class.
//!
//! A layer on every route reads axum's `MatchedPath` (the template, such as `/r/{uuid}`, never the
//! path a client sent) and opens a task-local slot in which the gate notes the type of the record
//! a request opened; when the answer is ready it adds one to a counter. Per request that is a hash
//! of the template, a lookup in a fixed table and one atomic add: no lock and no allocation after
//! a template's first request.

use std::cell::Cell;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::extract::MatchedPath;
use axum::http::Request;
use axum::response::Response;
use brine_core::RecordKind;
use tokio::task::futures::TaskLocalFuture;

use super::Metrics;

/// What kind of record a request opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    None,
    Credential,
    Bridge,
    /// Records of both kinds (a batch).
    Mixed,
}

impl RecordType {
    const ALL: [RecordType; 4] = [
        RecordType::None,
        RecordType::Credential,
        RecordType::Bridge,
        RecordType::Mixed,
    ];

    fn as_str(self) -> &'static str {
        match self {
            RecordType::None => "none",
            RecordType::Credential => "credential",
            RecordType::Bridge => "bridge",
            RecordType::Mixed => "mixed",
        }
    }

    fn with(self, kind: RecordKind) -> Self {
        let kind = match kind {
            RecordKind::Credential => RecordType::Credential,
            RecordKind::Bridge => RecordType::Bridge,
        };
        match self {
            RecordType::None => kind,
            same if same == kind => same,
            _ => RecordType::Mixed,
        }
    }
}

tokio::task_local! {
    static RECORD_TYPE: Cell<RecordType>;
}

/// Notes that the request being served opened a record of `kind` (nothing outside a request).
pub fn note_record(kind: RecordKind) {
    let _ = RECORD_TYPE.try_with(|t| t.set(t.get().with(kind)));
}

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

fn class(status: axum::http::StatusCode) -> usize {
    (usize::from(status.as_u16() / 100)).clamp(1, 5) - 1
}

struct Route {
    template: Box<str>,
    counts: [[AtomicU64; 5]; 4],
}

impl Route {
    fn new(template: &str) -> Self {
        Self {
            template: template.into(),
            counts: Default::default(),
        }
    }
}

/// Room for this many route templates (the server has under a hundred); a template beyond them
/// is counted as `other`.
const SLOTS: usize = 256;
const UNMATCHED: usize = SLOTS;
const OTHER: usize = SLOTS + 1;

/// The counts, by route. A route's slot is claimed once, by its first request, and never
/// changes: lookups take no lock.
pub struct Requests {
    slots: Box<[OnceLock<Route>]>,
    unmatched: Route,
    other: Route,
}

impl Default for Requests {
    fn default() -> Self {
        Self {
            slots: (0..SLOTS).map(|_| OnceLock::new()).collect(),
            unmatched: Route::new("unmatched"),
            other: Route::new("other"),
        }
    }
}

/// A multiply-rotate hash over eight bytes at a time (as FxHash does): route templates are few,
/// short and written by us, so a fast hash is enough.
fn hash(s: &str) -> usize {
    let mut h = s.len() as u64;
    for chunk in s.as_bytes().chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    (h >> 32) as usize
}

impl Requests {
    /// The slot of `template`, claimed on first sight.
    fn slot(&self, template: Option<&str>) -> usize {
        let Some(template) = template else {
            return UNMATCHED;
        };
        let start = hash(template);
        for i in 0..SLOTS {
            let at = (start + i) % SLOTS;
            let route = self.slots[at].get_or_init(|| Route::new(template));
            if *route.template == *template {
                return at;
            }
        }
        OTHER
    }

    fn route(&self, slot: usize) -> &Route {
        match slot {
            UNMATCHED => &self.unmatched,
            OTHER => &self.other,
            at => self.slots[at].get().unwrap_or(&self.other),
        }
    }

    fn count(&self, slot: usize, record: RecordType, status: axum::http::StatusCode) {
        self.route(slot).counts[record as usize][class(status)].fetch_add(1, Ordering::Relaxed);
    }

    /// Every count above zero: `(route, record type, status class, count)`, by route.
    pub fn samples(&self) -> Vec<(&str, &'static str, &'static str, u64)> {
        let mut routes: Vec<&Route> = self.slots.iter().filter_map(OnceLock::get).collect();
        routes.sort_by(|a, b| a.template.cmp(&b.template));
        routes.push(&self.unmatched);
        routes.push(&self.other);
        let mut out = Vec::new();
        for route in routes {
            for record in RecordType::ALL {
                for (c, class) in CLASSES.iter().enumerate() {
                    let n = route.counts[record as usize][c].load(Ordering::Relaxed);
                    if n > 0 {
                        out.push((&*route.template, record.as_str(), *class, n));
                    }
                }
            }
        }
        out
    }
}

/// The layer that counts requests; add it with `Router::layer` (which runs after routing, so
/// that `MatchedPath` is known).
#[derive(Clone)]
pub struct CountRequests(pub Metrics);

impl<S> tower::Layer<S> for CountRequests {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, B> tower::Service<Request<B>> for Counted<S>
where
    S: tower::Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CountedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let template = request.extensions().get::<MatchedPath>();
        let slot = self
            .metrics
            .0
            .requests
            .slot(template.map(MatchedPath::as_str));
        CountedFuture {
            inner: RECORD_TYPE.scope(Cell::new(RecordType::None), self.inner.call(request)),
            metrics: self.metrics.clone(),
            slot,
        }
    }
}

pin_project_lite::pin_project! {
    /// A request being served, counted when its answer is ready. (One whose client goes away
    /// first is not counted.)
    pub struct CountedFuture<F> {
        #[pin]
        inner: TaskLocalFuture<Cell<RecordType>, F>,
        metrics: Metrics,
        slot: usize,
    }
}

impl<F, E> std::future::Future for CountedFuture<F>
where
    F: std::future::Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let result = std::task::ready!(this.inner.as_mut().poll(cx));
        if let Ok(response) = &result {
            let record = this
                .inner
                .take_value()
                .map_or(RecordType::None, Cell::into_inner);
            this.metrics
                .0
                .requests
                .count(*this.slot, record, response.status());
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn each_template_keeps_its_slot() {
        let r = Requests::default();
        let a = r.slot(Some("/r/{uuid}"));
        let b = r.slot(Some("/api/v1/records/{uuid}"));
        assert_ne!(a, b);
        assert_eq!(r.slot(Some("/r/{uuid}")), a);
        assert_eq!(r.slot(None), UNMATCHED);
        r.count(a, RecordType::Credential, StatusCode::OK);
        r.count(a, RecordType::Credential, StatusCode::NO_CONTENT);
        r.count(b, RecordType::None, StatusCode::NOT_FOUND);
        r.count(UNMATCHED, RecordType::None, StatusCode::NOT_FOUND);
        let samples = r.samples();
        assert!(samples.contains(&("/r/{uuid}", "credential", "2xx", 2)));
        assert!(samples.contains(&("/api/v1/records/{uuid}", "none", "4xx", 1)));
        assert!(samples.contains(&("unmatched", "none", "4xx", 1)));
        assert_eq!(samples.len(), 3);
    }

    #[test]
    fn a_full_table_counts_the_rest_as_other() {
        let r = Requests::default();
        for i in 0..SLOTS {
            assert_ne!(r.slot(Some(format!("/route/{i}").as_str())), OTHER);
        }
        assert_eq!(r.slot(Some("/one/too/many")), OTHER);
        assert_ne!(r.slot(Some("/route/7")), OTHER);
    }

    #[test]
    fn record_types_combine() {
        let t = RecordType::None.with(RecordKind::Bridge);
        assert_eq!(t, RecordType::Bridge);
        assert_eq!(t.with(RecordKind::Bridge), RecordType::Bridge);
        assert_eq!(t.with(RecordKind::Credential), RecordType::Mixed);
    }

    #[test]
    fn status_classes() {
        assert_eq!(CLASSES[class(StatusCode::OK)], "2xx");
        assert_eq!(CLASSES[class(StatusCode::LOOP_DETECTED)], "5xx");
        assert_eq!(CLASSES[class(StatusCode::SWITCHING_PROTOCOLS)], "1xx");
    }
}
