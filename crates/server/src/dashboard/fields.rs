//! A posted HTML form, as name–value pairs in order (a name may repeat: header rows, methods).
//! Values are wiped from memory when the form is dropped, since some are secrets.

use axum::extract::{FromRequest, Request};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use zeroize::Zeroizing;

use crate::extract::RawBody;

pub struct Fields(Vec<(String, Zeroizing<String>)>);

impl<S: Send + Sync> FromRequest<S> for Fields {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                mime.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        let RawBody(body) = RawBody::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        if !is_form {
            return Ok(Fields(Vec::new()));
        }
        let body = Zeroizing::new(body.to_vec());
        Ok(Fields(
            url::form_urlencoded::parse(&body)
                .map(|(k, v)| (k.into_owned(), Zeroizing::new(v.into_owned())))
                .collect(),
        ))
    }
}

impl Fields {
    /// The first value of `name`, or "".
    pub fn text(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed; `None` when blank.
    pub fn filled(&self, name: &str) -> Option<&str> {
        Some(self.text(name).trim()).filter(|v| !v.is_empty())
    }

    /// Every value of `name`, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether a checkbox named `name` was ticked.
    pub fn ticked(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    /// A value to hand on (a secret): a copy the caller owns; the form's own copy is wiped when
    /// the form is dropped.
    pub fn secret(&self, name: &str) -> Option<String> {
        Some(self.text(name).to_owned()).filter(|v| !v.is_empty())
    }

    /// The non-blank lines of a textarea.
    pub fn lines(&self, name: &str) -> Vec<String> {
        self.text(name)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    pub fn form_token(&self) -> Option<&str> {
        self.filled("form_token")
    }
}
