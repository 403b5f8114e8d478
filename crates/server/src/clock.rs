use time::OffsetDateTime;

/// The current time at the precision the store keeps (milliseconds), so that what an answer
/// shows is exactly what a later read returns.
pub fn now_ms() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.millisecond() as u32 * 1_000_000)
        .unwrap_or(now)
}
