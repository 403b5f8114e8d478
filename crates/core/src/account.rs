use std::fmt;

use crate::ValidationError;

/// An account's sign-in email, trimmed and lower-cased so that lookups are case-insensitive.
#[derive(Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let email = input.trim().to_lowercase();
        let invalid = || ValidationError::new("email", "The email address is not valid.");
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        if local.is_empty() || domain.is_empty() || domain.contains('@') || !domain.contains('.') {
            return Err(invalid());
        }
        if domain.starts_with('.') || domain.ends_with('.') {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An account password: 10 to 1024 bytes. Prints as `***`.
pub struct AccountPassword(String);

impl AccountPassword {
    pub const MIN_CHARS: usize = 10;
    pub const MAX_BYTES: usize = 1024;

    pub fn parse(input: String) -> Result<Self, ValidationError> {
        if input.chars().count() < Self::MIN_CHARS {
            return Err(ValidationError::new(
                "password",
                format!(
                    "The password must be at least {} characters long.",
                    Self::MIN_CHARS
                ),
            ));
        }
        if input.len() > Self::MAX_BYTES {
            return Err(ValidationError::new(
                "password",
                format!("The password must be at most {} bytes.", Self::MAX_BYTES),
            ));
        }
        Ok(Self(input))
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for AccountPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccountPassword(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ana@Example.COM ").map(|e| e.0),
            Ok("ana@example.com".to_string())
        );
        for bad in [
            "",
            "ana",
            "@x.com",
            "ana@",
            "ana@x",
            "a b@x.com",
            "a@b@x.com",
            "a@.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn passwords_have_bounds_and_hide_in_debug() {
        assert!(AccountPassword::parse("short".into()).is_err());
        assert!(AccountPassword::parse("x".repeat(1025)).is_err());
        let p = AccountPassword::parse("long enough pw".into());
        assert!(matches!(&p, Ok(p) if format!("{p:?}") == "AccountPassword(***)"));
    }
}
