//! The one place where failures become HTTP responses. Every error body has the same shape:
//! `{"error": "<short title>", "message": "<one sentence>"}`.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use brine_core::ValidationError;
use serde::Serialize;
use utoipa::ToSchema;

/// The error envelope.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A short title, stable enough to match on.
    #[schema(example = "Not found")]
    pub error: Cow<'static, str>,
    /// One sentence for a person.
    #[schema(example = "No record exists at this address.")]
    pub message: Cow<'static, str>,
}

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
    pub rate: Option<Box<brine_limits::Decision>>,
    /// Set on brine's own refusals that another brine must not answer with a fallback (see
    /// [`REFUSAL_HEADER`]).
    pub refusal: Option<&'static str>,
}

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

    /// `/r/{uuid}` on an `owner_only` record.
    pub fn owner_only() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "This record is available to its owner only.",
        )
    }

    pub fn wrong_password() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Authentication required",
            "The password is not correct.",
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

    pub fn conflict(
        error: impl Into<Cow<'static, str>>,
        message: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::new(StatusCode::CONFLICT, error, message)
    }

    /// Too many wrong passwords on one record.
    pub fn locked_out(retry_after: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            "Too many wrong passwords for this record; wait before trying again.",
        );
        error.retry_after = Some(retry_after);
        error
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error",
            "The server could not complete the request. Try again later.",
        )
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        Self::bad_request(e.message)
    }
}

impl From<brine_store::StoreError> for ApiError {
    fn from(e: brine_store::StoreError) -> Self {
        // Store errors carry SQL and row details, never values (those are ciphertext anyway).
        tracing::error!(error = %e, "storage failure");
        Self::internal()
    }
}

impl From<brine_crypto::CryptoError> for ApiError {
    fn from(e: brine_crypto::CryptoError) -> Self {
        tracing::error!(error = %e, "crypto failure");
        Self::internal()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(allow) = self.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        if let Some(decision) = &self.rate {
            crate::limits::write_headers(decision, response.headers_mut());
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
