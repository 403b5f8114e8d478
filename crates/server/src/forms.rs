//! Cross-site protection for every HTML form brine serves (the secure page now, the dashboard's
//! forms next). A form's POST is accepted only when both hold:
//!
//! 1. **It comes from brine's own pages.** Browsers say where a request comes from: when
//!    `Sec-Fetch-Site` is present it must be `same-origin` (or `none`, a user's own action);
//!    otherwise an `Origin`, when present, must be brine's own (the configured `public_url`, or
//!    the request's `Host`). `Origin: null` is refused.
//! 2. **It carries the form's token.** Loading a form sets a random cookie (HttpOnly,
//!    `SameSite=Lax`, `Secure` behind https) and puts an HMAC of it, under a key derived from the
//!    master key, in a hidden field. Another site can neither read the field nor make the browser
//!    send the cookie with a cross-site POST, and cannot forge the pair.
//!
//! A refused POST is answered before anything is looked up, so it counts towards no lockout.

use axum::http::header::{COOKIE, HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderValue};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use brine_crypto::{CryptoError, random_bytes};
use hmac::digest::InvalidLength;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

#[derive(Clone)]
pub struct FormGuard {
    mac: Hmac<Sha256>,
    /// The same key under the master key's other versions: a form loaded before the current
    /// version changed still posts.
    older: Vec<Hmac<Sha256>>,
    /// `https://vault.example.com`, when the operator set `public_url`.
    origin: Option<String>,
    cookie_name: &'static str,
    secure: bool,
}

/// What a form page needs: the token for its hidden field, and a cookie to set when the browser
/// had none.
pub struct FormToken {
    pub token: String,
    pub set_cookie: Option<HeaderValue>,
}

/// Why a form's POST was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrossSite {
    /// The browser says another site sent it.
    ForeignOrigin,
    /// No cookie, or a token that does not belong to it (another site's form, or an old page).
    BadToken,
}

const COOKIE_BYTES: usize = 32;

impl FormGuard {
    /// `public_url` is where people reach brine; without it, the request's `Host` stands in.
    pub fn new(key: &[u8], public_url: Option<&url::Url>) -> Result<Self, InvalidLength> {
        let secure = public_url.is_some_and(|u| u.scheme() == "https");
        Ok(Self {
            mac: <Hmac<Sha256> as KeyInit>::new_from_slice(key)?,
            older: Vec::new(),
            origin: public_url.map(|u| u.origin().ascii_serialization()),
            // The `__Host-` prefix pins the cookie to this host (no sibling subdomain can set
            // it); browsers accept it only on Secure cookies.
            cookie_name: if secure {
                "__Host-brine_form"
            } else {
                "brine_form"
            },
            secure,
        })
    }

    /// Also accepts tokens made under these keys (the form key under older master-key versions).
    pub fn with_older_keys<'a>(
        mut self,
        keys: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Self, InvalidLength> {
        for key in keys {
            self.older
                .push(<Hmac<Sha256> as KeyInit>::new_from_slice(key)?);
        }
        Ok(self)
    }

    /// The token for a form being shown, reusing the browser's cookie when it has one (so that
    /// forms open in several tabs all stay valid).
    pub fn issue(&self, request: &HeaderMap) -> Result<FormToken, CryptoError> {
        if let Some(cookie) = self.cookie(request) {
            return Ok(FormToken {
                token: self.token_for(&cookie),
                set_cookie: None,
            });
        }
        let cookie = URL_SAFE_NO_PAD.encode(random_bytes::<COOKIE_BYTES>()?);
        let secure = if self.secure { "; Secure" } else { "" };
        let header = format!(
            "{}={cookie}; Path=/; HttpOnly; SameSite=Lax{secure}",
            self.cookie_name
        );
        Ok(FormToken {
            token: self.token_for(&cookie),
            set_cookie: HeaderValue::from_str(&header).ok(),
        })
    }

    /// Checks a form's POST: its origin, then its token.
    pub fn check(&self, request: &HeaderMap, token: Option<&str>) -> Result<(), CrossSite> {
        if !self.same_origin(request) {
            return Err(CrossSite::ForeignOrigin);
        }
        let cookie = self.cookie(request).ok_or(CrossSite::BadToken)?;
        let token = token.ok_or(CrossSite::BadToken)?;
        let matches = std::iter::once(&self.mac)
            .chain(&self.older)
            .any(|mac| bool::from(token.as_bytes().ct_eq(token_for(mac, &cookie).as_bytes())));
        if matches {
            Ok(())
        } else {
            Err(CrossSite::BadToken)
        }
    }

    fn same_origin(&self, request: &HeaderMap) -> bool {
        if let Some(site) = request.get("sec-fetch-site") {
            return matches!(site.as_bytes(), b"same-origin" | b"none");
        }
        let Some(origin) = request.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
            // Neither header: an old browser or not a browser; the token decides.
            return true;
        };
        match &self.origin {
            Some(own) => origin == own,
            None => {
                let authority = origin.split_once("://").map(|(_, rest)| rest);
                let host = request.get(HOST).and_then(|v| v.to_str().ok());
                authority.is_some() && authority == host
            }
        }
    }

    fn cookie(&self, request: &HeaderMap) -> Option<String> {
        request
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, value)| *name == self.cookie_name && value.len() == 43)
            .map(|(_, value)| value.to_owned())
    }

    fn token_for(&self, cookie: &str) -> String {
        token_for(&self.mac, cookie)
    }
}

fn token_for(key: &Hmac<Sha256>, cookie: &str) -> String {
    let mut mac = key.clone();
    mac.update(b"brine form token v1\0");
    mac.update(cookie.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(public: Option<&str>) -> FormGuard {
        let url = public.map(|u| url::Url::parse(u).unwrap());
        FormGuard::new(b"test key", url.as_ref()).unwrap()
    }

    /// A browser that loaded the form: its cookie header and the form's token.
    fn loaded(guard: &FormGuard) -> (HeaderMap, String) {
        let issued = guard.issue(&HeaderMap::new()).unwrap();
        let set = issued.set_cookie.unwrap();
        let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(&pair).unwrap());
        (headers, issued.token)
    }

    #[test]
    fn a_form_posted_back_with_its_cookie_passes() {
        let g = guard(None);
        let (mut headers, token) = loaded(&g);
        assert_eq!(g.check(&headers, Some(&token)), Ok(()));
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert_eq!(g.check(&headers, Some(&token)), Ok(()));
        // A second tab reuses the cookie, so both tokens agree.
        let again = g.issue(&headers).unwrap();
        assert!(again.set_cookie.is_none());
        assert_eq!(again.token, token);
    }

    #[test]
    fn other_sites_and_bad_tokens_are_refused() {
        let g = guard(None);
        let (headers, token) = loaded(&g);
        for site in ["cross-site", "same-site"] {
            let mut h = headers.clone();
            h.insert("sec-fetch-site", HeaderValue::from_static(site));
            assert_eq!(
                g.check(&h, Some(&token)),
                Err(CrossSite::ForeignOrigin),
                "{site}"
            );
        }
        let mut h = headers.clone();
        h.insert(HOST, HeaderValue::from_static("vault.example.com"));
        h.insert(ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert_eq!(g.check(&h, Some(&token)), Err(CrossSite::ForeignOrigin));
        h.insert(ORIGIN, HeaderValue::from_static("null"));
        assert_eq!(g.check(&h, Some(&token)), Err(CrossSite::ForeignOrigin));
        h.insert(
            ORIGIN,
            HeaderValue::from_static("https://vault.example.com"),
        );
        assert_eq!(g.check(&h, Some(&token)), Ok(()));

        assert_eq!(g.check(&headers, None), Err(CrossSite::BadToken));
        assert_eq!(g.check(&headers, Some("forged")), Err(CrossSite::BadToken));
        assert_eq!(
            g.check(&HeaderMap::new(), Some(&token)),
            Err(CrossSite::BadToken)
        );
        // A token made under another key does not pass.
        let (_, foreign) = loaded(&FormGuard::new(b"other key", None).unwrap());
        assert_eq!(g.check(&headers, Some(&foreign)), Err(CrossSite::BadToken));
    }

    #[test]
    fn forms_loaded_under_an_older_master_key_version_still_post() {
        let old = guard(None);
        let (headers, token) = loaded(&old);
        let rotated = FormGuard::new(b"new key", None)
            .unwrap()
            .with_older_keys([&b"test key"[..]])
            .unwrap();
        assert_eq!(rotated.check(&headers, Some(&token)), Ok(()));
        // New forms are made under the new key, which the old guard does not know.
        let fresh = rotated.issue(&headers).unwrap().token;
        assert_ne!(fresh, token);
        assert_eq!(old.check(&headers, Some(&fresh)), Err(CrossSite::BadToken));
        assert_eq!(rotated.check(&headers, Some(&fresh)), Ok(()));
    }

    #[test]
    fn the_public_url_decides_the_origin_and_the_cookie() {
        let g = guard(Some("https://vault.example.com"));
        let issued = g.issue(&HeaderMap::new()).unwrap();
        let cookie = issued.set_cookie.unwrap();
        let cookie = cookie.to_str().unwrap();
        assert!(cookie.starts_with("__Host-brine_form=") && cookie.ends_with("; Secure"));
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        let (mut headers, token) = loaded(&g);
        headers.insert(
            ORIGIN,
            HeaderValue::from_static("https://vault.example.com"),
        );
        assert_eq!(g.check(&headers, Some(&token)), Ok(()));
        headers.insert(ORIGIN, HeaderValue::from_static("http://vault.example.com"));
        assert_eq!(
            g.check(&headers, Some(&token)),
            Err(CrossSite::ForeignOrigin)
        );
    }
}
