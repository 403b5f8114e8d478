//! brine's domain: what a record and an account are, and the rules that input must satisfy
//! before it reaches storage or crypto. Parse, don't validate: every type here is valid by
//! construction. No I/O.

mod account;
mod error;
mod params;
mod policy;
mod probe;
mod rate;
mod record;

pub use account::{AccountPassword, Email};
pub use error::ValidationError;
pub use params::{ParamKind, ParamSpec};
pub use policy::{
    BridgePolicy, CredentialPolicy, FailMode, Policy, Quota, QuotaPeriod, RateLimit, RecordLimits,
};
pub use probe::Probe;
pub use rate::Rate;
pub use record::{
    Access, MAX_SECRET_BYTES, NewRecordPolicy, PageLabel, RecordKind, RecordName, RecordPassword,
    RecordStatus, SecretValue, at_least_one, future, private_only, read_status,
};
