//! brine's outbound engine for Bridges: everything between "a caller asked `/r/{uuid}`" and "bytes
//! went to the third-party API and came back", kept free of HTTP-server and storage concerns.
//!
//! - [`template`]: `{{param}}` in a stored URL, filled from caller values that can never change
//!   the scheme, host or port.
//! - [`select`]: GJSON-style extraction from JSON answers (`select=choices.0.message.content`).
//! - [`scrub`]: removing stored secrets (raw, URL-encoded, base64) from what comes back.
//! - [`ssrf`]: which addresses an upstream may have, checked on the resolved address.
//! - [`headers`]: which headers cross the proxy in each direction.

#![forbid(unsafe_code)]

#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod headers;
pub mod scrub;
pub mod select;
pub mod ssrf;
pub mod template;
