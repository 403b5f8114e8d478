use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ValidationError;

/// Largest secret value a record holds.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// Who may read a record through `/r/{uuid}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Anyone with the link.
    Public,
    /// Callers presenting the record's X-API-Key (or its password, when one is set).
    Private,
    /// Nobody but the owner, through the dashboard.
    OwnerOnly,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Private => "private",
            Access::OwnerOnly => "owner_only",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Access::Public),
            "private" => Some(Access::Private),
            "owner_only" => Some(Access::OwnerOnly),
            _ => None,
        }
    }
}

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// A secret value, read at `/r/{uuid}`.
    Credential,
    /// An upstream URL and headers: `/r/{uuid}` forwards the call with the headers added.
    Bridge,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Credential => "credential",
            RecordKind::Bridge => "bridge",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "credential" => Some(RecordKind::Credential),
            "bridge" => Some(RecordKind::Bridge),
            _ => None,
        }
    }
}

/// A record's display name: 1 to 200 characters, no control characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordName(String);

impl RecordName {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let name = input.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ValidationError::new(
                "name",
                "The name must be between 1 and 200 characters.",
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "name",
                "The name must not contain control characters.",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// What a secure page shows before its password, when its owner wants the person to know what
/// they are opening. Plain text (escaped wherever it is shown), not a secret: 1 to 200
/// characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageLabel(String);

impl PageLabel {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let label = input.trim();
        if label.is_empty() || label.chars().count() > 200 {
            return Err(ValidationError::new(
                "label",
                "The secure page's label must be between 1 and 200 characters.",
            ));
        }
        if label.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "label",
                "The secure page's label must not contain control characters.",
            ));
        }
        Ok(Self(label.to_owned()))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The secret a credential holds: 1 byte to 64 KiB. Prints as `***`.
pub struct SecretValue(String);

impl SecretValue {
    pub fn parse(input: String) -> Result<Self, ValidationError> {
        if input.is_empty() {
            return Err(ValidationError::new("data", "The value must not be empty."));
        }
        if input.len() > MAX_SECRET_BYTES {
            return Err(ValidationError::new(
                "data",
                format!("The value must be at most {MAX_SECRET_BYTES} bytes."),
            ));
        }
        Ok(Self(input))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

/// A record password (opens a private record with `POST /r/{uuid}`): 8 to 1024 bytes.
pub struct RecordPassword(String);

impl RecordPassword {
    pub const MIN_CHARS: usize = 8;

    pub fn parse(input: String) -> Result<Self, ValidationError> {
        if input.chars().count() < Self::MIN_CHARS || input.len() > 1024 {
            return Err(ValidationError::new(
                "password",
                format!(
                    "The password must be between {} characters and 1024 bytes.",
                    Self::MIN_CHARS
                ),
            ));
        }
        Ok(Self(input))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for RecordPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecordPassword(***)")
    }
}

/// The combination of options chosen for a record, checked as a whole.
#[derive(Debug, Clone, Copy)]
pub struct NewRecordPolicy {
    pub access: Access,
    pub sealed: bool,
    pub has_password: bool,
    pub expires_at: Option<OffsetDateTime>,
    pub max_reads: Option<i64>,
}

impl NewRecordPolicy {
    pub fn check(&self, now: OffsetDateTime) -> Result<(), ValidationError> {
        if self.sealed {
            private_only(
                self.access,
                "sealed",
                "Only private records can be sealed: a sealed record opens only with its X-API-Key or password.",
            )?;
        }
        if self.has_password {
            private_only(
                self.access,
                "password",
                "Only private records can have a record password.",
            )?;
        }
        future("expires_at", "The expiry", self.expires_at, now)?;
        at_least_one("max_reads", self.max_reads)
    }
}

/// Only private records can be sealed or have an X-API-Key, a record password or a secure page:
/// the rest are open to anyone (public) or to no one but the owner.
pub fn private_only(
    access: Access,
    field: &'static str,
    message: &'static str,
) -> Result<(), ValidationError> {
    if access == Access::Private {
        Ok(())
    } else {
        Err(ValidationError::new(field, message))
    }
}

/// An expiry, when given, lies in the future (`what` names it: "The expiry").
pub fn future(
    field: &'static str,
    what: &str,
    at: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<(), ValidationError> {
    match at {
        Some(at) if at <= now => Err(ValidationError::new(
            field,
            format!("{what} must be in the future."),
        )),
        _ => Ok(()),
    }
}

/// A count limit (`max_reads`, `max_views`), when given, allows at least one.
pub fn at_least_one(field: &'static str, limit: Option<i64>) -> Result<(), ValidationError> {
    match limit {
        Some(n) if n < 1 => Err(ValidationError::new(
            field,
            format!("{field} must be at least 1."),
        )),
        _ => Ok(()),
    }
}

/// Whether `/r/{uuid}` may still serve a record, and if not, why (shown to the owner only;
/// callers get the same 404 as for an unknown uuid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    Active,
    Expired,
    Exhausted,
    /// Disabled by its owner (whatever its expiry): answers as an unknown uuid until enabled.
    Disabled,
}

impl RecordStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Active => "active",
            RecordStatus::Expired => "expired",
            RecordStatus::Exhausted => "exhausted",
            RecordStatus::Disabled => "disabled",
        }
    }
}

pub fn read_status(
    expires_at: Option<OffsetDateTime>,
    max_reads: Option<i64>,
    reads: i64,
    now: OffsetDateTime,
) -> RecordStatus {
    if expires_at.is_some_and(|at| at <= now) {
        RecordStatus::Expired
    } else if max_reads.is_some_and(|max| reads >= max) {
        RecordStatus::Exhausted
    } else {
        RecordStatus::Active
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    fn policy(access: Access) -> NewRecordPolicy {
        NewRecordPolicy {
            access,
            sealed: false,
            has_password: false,
            expires_at: None,
            max_reads: None,
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            RecordName::parse("  Stripe  ").map(|n| n.0),
            Ok("Stripe".into())
        );
        assert!(RecordName::parse("   ").is_err());
        assert!(RecordName::parse(&"x".repeat(201)).is_err());
        assert!(RecordName::parse("a\nb").is_err());
    }

    #[test]
    fn page_labels_are_bounded_plain_lines() {
        assert_eq!(
            PageLabel::parse(" Stripe test key — from Ana ").map(PageLabel::into_string),
            Ok("Stripe test key — from Ana".into())
        );
        assert!(PageLabel::parse("  ").is_err());
        assert!(PageLabel::parse(&"é".repeat(201)).is_err());
        assert!(PageLabel::parse(&"é".repeat(200)).is_ok());
        assert!(PageLabel::parse("a\u{7}b").is_err());
    }

    #[test]
    fn secret_values_are_bounded_and_hidden() {
        assert!(SecretValue::parse(String::new()).is_err());
        assert!(SecretValue::parse("x".repeat(MAX_SECRET_BYTES + 1)).is_err());
        let v = SecretValue::parse("sk_live_canary".into());
        assert!(matches!(&v, Ok(v) if !format!("{v:?}").contains("canary")));
    }

    #[test]
    fn policy_rejects_contradictions() {
        let now = OffsetDateTime::now_utc();
        assert!(policy(Access::Private).check(now).is_ok());
        let sealed_public = NewRecordPolicy {
            sealed: true,
            ..policy(Access::Public)
        };
        assert_eq!(sealed_public.check(now).map_err(|e| e.field), Err("sealed"));
        let pw_owner = NewRecordPolicy {
            has_password: true,
            ..policy(Access::OwnerOnly)
        };
        assert_eq!(pw_owner.check(now).map_err(|e| e.field), Err("password"));
        let past = NewRecordPolicy {
            expires_at: Some(now - Duration::seconds(1)),
            ..policy(Access::Public)
        };
        assert_eq!(past.check(now).map_err(|e| e.field), Err("expires_at"));
        let zero = NewRecordPolicy {
            max_reads: Some(0),
            ..policy(Access::Public)
        };
        assert_eq!(zero.check(now).map_err(|e| e.field), Err("max_reads"));
    }

    #[test]
    fn status_reports_expiry_before_exhaustion() {
        let now = OffsetDateTime::now_utc();
        let past = Some(now - Duration::seconds(1));
        let future = Some(now + Duration::hours(1));
        assert_eq!(read_status(None, None, 5, now), RecordStatus::Active);
        assert_eq!(read_status(future, Some(2), 1, now), RecordStatus::Active);
        assert_eq!(
            read_status(future, Some(2), 2, now),
            RecordStatus::Exhausted
        );
        assert_eq!(read_status(past, Some(2), 2, now), RecordStatus::Expired);
    }

    #[test]
    fn enums_round_trip_their_names() {
        for a in [Access::Public, Access::Private, Access::OwnerOnly] {
            assert_eq!(Access::parse(a.as_str()), Some(a));
        }
        assert_eq!(
            RecordKind::parse("credential"),
            Some(RecordKind::Credential)
        );
        assert_eq!(RecordKind::parse("bridge"), Some(RecordKind::Bridge));
        assert_eq!(RecordKind::parse("proxy"), None);
    }
}
