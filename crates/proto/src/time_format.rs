//! Times on the wire: RFC 3339, kept at the store's millisecond precision.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

/// An RFC 3339 timestamp in a request, kept as UTC at the store's millisecond precision, so
/// that answers show what later reads will show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub OffsetDateTime);

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let t = time::serde::rfc3339::deserialize(d)?.to_offset(time::UtcOffset::UTC);
        Ok(Timestamp(
            t.replace_nanosecond(u32::from(t.millisecond()) * 1_000_000)
                .unwrap_or(t),
        ))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        time::serde::rfc3339::serialize(&self.0, s)
    }
}
