//! The one place where failures become HTTP responses. Every error body has the same shape:
//! `{"error": "<short title>", "message": "<one sentence>"}`. Domain modules refuse and fail in
//! their own terms (`Refusal`, `OwnerError`, `Failure`, `Fault`); this maps each to its status,
//! its envelope and its headers.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use brine_core::ValidationError;
use brine_limits::Decision;
pub use brine_proto::ErrorBody;

use crate::access::{GateError, Refusal};
use crate::fault::Fault;
use crate::owner::{KeyCheckFailure, OwnerError};
use crate::proxy::inflight::Holder;
use crate::proxy::upstream::Failure;
use crate::throttle::{Limited, ceil_secs};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// Seconds, for 429/503 answers.
    pub retry_after: Option<u64>,
    /// The methods a 405 answer allows.
    pub allow: Option<String>,
    /// The rate limit that refused the request, for its `RateLimit-*` headers (boxed: errors
    /// travel in every `Result`, and this one is rare).
    pub rate: Option<Box<Decision>>,
    /// Set on brine's own refusals that another brine must not answer with a fallback (see
    /// [`REFUSAL_HEADER`]).
    pub refusal: Option<&'static str>,
}

/// `Retry-After` of every answer (JSON or page) given while the database is out of reach.
pub const UNAVAILABLE_RETRY_SECS: u64 = 5;

/// Marks an answer as brine's own refusal (`busy`, `limits`, `loop`) rather than an upstream's.
/// A bridge whose upstream is another brine never tries its fallbacks after such an answer, so
/// bridges that call each other cannot multiply one call.
pub const REFUSAL_HEADER: HeaderName = HeaderName::from_static("x-brine-refusal");

impl ApiError {
    pub fn new(
        status: StatusCode,
        error: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: error.into(),
                message: message.into(),
            },
            retry_after: None,
            allow: None,
            rate: None,
            refusal: None,
        }
    }

    /// The same answer for an unknown, expired, exhausted or foreign record: no existence oracle.
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "No record exists at this address.",
        )
    }

    pub fn route_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing at this address.",
        )
    }

    /// Missing or wrong X-API-Key on `/r/{uuid}`.
    pub fn api_key_required() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Authentication required",
            "Please provide your token in the X-API-Key header to decrypt the content.",
        )
    }

    /// Missing, expired, revoked or malformed dashboard token.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Sign in and send the token as 'Authorization: Bearer <token>'.",
        )
    }

    pub fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "Invalid request", message)
    }

    pub fn not_json() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Unsupported media type",
            "Send the body as JSON with 'Content-Type: application/json'.",
        )
    }

    pub fn method_not_allowed(allowed: &[Method], message: &'static str) -> Self {
        let mut error = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "Method not allowed",
            message,
        );
        error.allow = Some(
            allowed
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        );
        error
    }

    /// A request that already passed through this installation (see `loop_guard`).
    pub fn loop_detected() -> Self {
        let mut error = Self::new(
            StatusCode::LOOP_DETECTED,
            "Loop detected",
            "This request was sent by this brine server itself: a bridge cannot call itself.",
        );
        error.refusal = Some("loop");
        error
    }

    pub fn rate_limited(decision: Decision) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Rate limited",
            "Too many requests for this record; retry after the time in Retry-After.",
        );
        error.retry_after = Some(ceil_secs(decision.retry_after).max(1));
        error.rate = Some(Box::new(decision));
        error
    }

    /// Sign-in or sign-up over its limits.
    pub fn login_limited(decision: Decision) -> Self {
        let mut error = Self::rate_limited(decision);
        error.body.error = "Too many attempts".into();
        error.body.message =
            "Too many sign-in attempts; retry after the time in Retry-After.".into();
        error
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            "The server could not complete the request. Try again later.",
        )
    }

    /// The database cannot be reached or written; the caller may retry (after
    /// [`UNAVAILABLE_RETRY_SECS`]).
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service unavailable",
            "The server cannot reach or write its database right now; retry shortly.",
        )
        .retry_after(UNAVAILABLE_RETRY_SECS)
    }

    fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds.max(1));
        self
    }
}

/// The status and error title that a caller received, as far as an audit event's channel and
/// outcome (and a bridge call's upstream status) tell: `None` for a success, and a status of
/// `None` where the outcome covers several (a bridge's `denied`: a key, method or path).
/// Kept beside the mapping below, which it follows.
pub fn caller_answer(
    channel: &str,
    outcome: &str,
    upstream_status: Option<u16>,
) -> Option<(Option<u16>, &'static str)> {
    let bridge = channel == "bridge";
    let pages = matches!(channel, "password" | "secure_page");
    Some(match outcome {
        "ok" => match upstream_status {
            Some(status) if status >= 400 => (Some(status), "Upstream error"),
            _ => return None,
        },
        "denied" if bridge => (None, "Not allowed (key, method or path)"),
        "denied" => (Some(401), "Authentication required"),
        "forbidden" if bridge => (Some(403), "Origin not allowed"),
        "forbidden" => (Some(403), "Forbidden"),
        "gone" => (Some(404), "Not found"),
        "rate_limited" if pages => (Some(429), "Too many attempts"),
        "rate_limited" => (Some(429), "Rate limited"),
        "bad_request" => (Some(400), "Invalid request"),
        "timeout" => (Some(504), "Upstream timeout"),
        "unreachable" => (Some(502), "Upstream unreachable"),
        "refused" => (Some(502), "Upstream not allowed"),
        "error" => (Some(502), "Upstream answer not relayed"),
        "loop" => (Some(508), "Loop detected"),
        _ => return None,
    })
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::NotFound => Self::not_found(),
            Refusal::OwnerOnly => Self::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "This record is available to its owner only.",
            ),
            Refusal::KeyRequired => Self::api_key_required(),
            Refusal::WrongPassword => Self::new(
                StatusCode::UNAUTHORIZED,
                "Authentication required",
                "The password is not correct.",
            ),
            Refusal::Locked(seconds) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                "Too many wrong passwords for this record; wait before trying again.",
            )
            .retry_after(seconds),
            Refusal::Limited(Limited::Rate(decision)) => Self::rate_limited(decision),
            Refusal::Limited(Limited::Unavailable) => {
                let mut error = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Rate limits unavailable",
                    "This record's rate limits cannot be checked right now; retry shortly.",
                )
                .retry_after(1);
                error.refusal = Some("limits");
                error
            }
            Refusal::QuotaExhausted(seconds) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Quota exhausted",
                "This record's usage quota for the period is used up.",
            )
            .retry_after(seconds),
            Refusal::Busy(Holder::Bridge(_)) => {
                let mut error = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Bridge busy",
                    "Too many calls are in flight through this bridge; retry shortly.",
                )
                .retry_after(1);
                error.refusal = Some("busy");
                error
            }
            Refusal::Busy(Holder::Client(_)) => {
                let mut error = Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many calls in flight",
                    "Your address has too many calls in flight through this server; retry \
                     shortly.",
                )
                .retry_after(1);
                error.refusal = Some("busy");
                error
            }
            Refusal::OriginNotAllowed => Self::new(
                StatusCode::FORBIDDEN,
                "Origin not allowed",
                "Your origin is not authorized to access this endpoint.",
            ),
            Refusal::MethodNotAllowed { allowed, message } => {
                Self::method_not_allowed(&allowed, message)
            }
            Refusal::NotJson => Self::not_json(),
            Refusal::PathNotAllowed => Self::route_not_found(),
            Refusal::BadRequest(message) => Self::bad_request(message),
            Refusal::Sealed => sealed(
                "A sealed record opens only with its X-API-Key or password; its owner can \
                 replace the value but not view it.",
            ),
            Refusal::TokenInvalid => Self::new(
                StatusCode::UNAUTHORIZED,
                "Authentication required",
                "This service token is not valid: it is unknown, expired or revoked.",
            ),
            Refusal::TokenOutOfScope => Self::new(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "This service token does not cover this record; its owner can make one that does.",
            ),
        }
    }
}

fn sealed(message: &'static str) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "Sealed record", message)
}

impl From<Fault> for ApiError {
    fn from(fault: Fault) -> Self {
        // Faults carry SQL, row and key-version details, never values (those are ciphertext).
        tracing::error!(error = %fault, "request failed");
        if fault.is_unavailable() {
            return Self::unavailable();
        }
        Self::internal()
    }
}

impl From<GateError> for ApiError {
    fn from(e: GateError) -> Self {
        match e {
            GateError::Refused(refusal) => refusal.into(),
            GateError::Fault(fault) => fault.into(),
        }
    }
}

impl From<OwnerError> for ApiError {
    fn from(e: OwnerError) -> Self {
        match e {
            OwnerError::NotFound => Self::not_found(),
            OwnerError::Invalid { message, .. } => Self::bad_request(message),
            OwnerError::Conflict { error, message } => {
                Self::new(StatusCode::CONFLICT, error, message)
            }
            OwnerError::KeyRequired => Self::api_key_required(),
            OwnerError::Upstream(failure) => failure.into(),
            OwnerError::KeyCheck(failure) => failure.into(),
            OwnerError::Fault(fault) => fault.into(),
        }
    }
}

impl From<KeyCheckFailure> for ApiError {
    fn from(e: KeyCheckFailure) -> Self {
        const UNTESTED: &str = "Key not tested";
        let untested = |status, request: &str, why: &str| {
            Self::new(
                status,
                UNTESTED,
                format!(
                    "The new key could not be tested: {why} ({request}). Nothing was changed; \
                     send \"verify\": false to save it without testing."
                ),
            )
        };
        match e {
            KeyCheckFailure::Rejected { request, status } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Key rejected",
                format!(
                    "The upstream answered {status} to {request} with the new key; nothing was \
                     changed."
                ),
            ),
            KeyCheckFailure::NotSent { request, failure } => match failure {
                Failure::Timeout => untested(
                    StatusCode::GATEWAY_TIMEOUT,
                    &request,
                    "the upstream did not answer in time",
                ),
                Failure::Refused => untested(
                    StatusCode::BAD_GATEWAY,
                    &request,
                    "the upstream's address may not be called",
                ),
                Failure::BadInput(why) => Self::new(
                    StatusCode::BAD_REQUEST,
                    UNTESTED,
                    format!(
                        "The probe ({request}) could not be sent: {}. Set its params, or send \
                         \"verify\": false to save the key without testing. Nothing was changed.",
                        why.trim_end_matches('.')
                    ),
                ),
                Failure::Unreachable => untested(
                    StatusCode::BAD_GATEWAY,
                    &request,
                    "the upstream could not be reached",
                ),
                Failure::TooLarge | Failure::BufferBusy | Failure::Compressed => untested(
                    StatusCode::BAD_GATEWAY,
                    &request,
                    "the upstream's answer could not be read",
                ),
            },
        }
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::BadInput(message) => Self::bad_request(message),
            Failure::Refused => Self::new(
                StatusCode::BAD_GATEWAY,
                "Upstream not allowed",
                "The bridge's upstream resolves to an address this server may not call.",
            ),
            Failure::Timeout => Self::new(
                StatusCode::GATEWAY_TIMEOUT,
                "Upstream timeout",
                "The upstream did not answer in time.",
            ),
            Failure::Unreachable => Self::new(
                StatusCode::BAD_GATEWAY,
                "Upstream unreachable",
                "The upstream could not be reached.",
            ),
            Failure::TooLarge => Self::new(
                StatusCode::BAD_GATEWAY,
                "Upstream answer too large",
                "The upstream's answer is too large to select from.",
            ),
            Failure::BufferBusy => {
                let mut error = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Server busy",
                    "Too many large answers are being selected from at once; retry shortly.",
                )
                .retry_after(1);
                error.refusal = Some("busy");
                error
            }
            Failure::Compressed => Self::new(
                StatusCode::BAD_GATEWAY,
                "Upstream answer compressed",
                "The upstream compressed its answer, which brine cannot check for secrets.",
            ),
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Self::bad_request(e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(allow) = self.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        if let Some(decision) = &self.rate {
            crate::throttle::write_headers(decision, response.headers_mut());
        }
        if let Some(refusal) = self.refusal {
            response
                .headers_mut()
                .insert(REFUSAL_HEADER, HeaderValue::from_static(refusal));
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
