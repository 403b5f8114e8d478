//! How records and events read on a page: words for states, times both relative and exact.

use brine_core::{Access, RecordKind, RecordStatus};
use brine_proto::{EventView, RecordView};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A moment, as "3 minutes ago" and as an exact UTC time (for a `<time>` element).
pub struct When {
    pub relative: String,
    pub exact: String,
    pub iso: String,
}

pub fn when(at: OffsetDateTime, now: OffsetDateTime) -> When {
    let seconds = (now - at).whole_seconds();
    let (ahead, mut seconds) = (seconds < 0, seconds.unsigned_abs());
    if ahead {
        // An end set "in 14 days" a moment ago is still 14 days away, not 13.
        seconds += 59;
    }
    let amount = |n: u64, unit: &str| {
        let plural = if n == 1 { "" } else { "s" };
        if ahead {
            format!("in {n} {unit}{plural}")
        } else {
            format!("{n} {unit}{plural} ago")
        }
    };
    let relative = match seconds {
        0..=44 if !ahead => "just now".to_owned(),
        0..=89 => amount(1, "minute"),
        90..=3_599 => amount(seconds / 60, "minute"),
        3_600..=86_399 => amount(seconds / 3_600, "hour"),
        86_400..=2_591_999 => amount(seconds / 86_400, "day"),
        _ => amount(seconds / 2_592_000, "month"),
    };
    let utc = at.to_offset(time::UtcOffset::UTC);
    When {
        relative,
        exact: format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            utc.year(),
            u8::from(utc.month()),
            utc.day(),
            utc.hour(),
            utc.minute(),
            utc.second()
        ),
        iso: utc.format(&Rfc3339).unwrap_or_default(),
    }
}

pub fn kind(kind: RecordKind) -> &'static str {
    match kind {
        RecordKind::Credential => "Credential",
        RecordKind::Bridge => "Bridge",
    }
}

pub fn access(access: Access) -> &'static str {
    match access {
        Access::Public => "Public",
        Access::Private => "Private",
        Access::OwnerOnly => "Owner-only",
    }
}

pub fn status(status: RecordStatus) -> &'static str {
    match status {
        RecordStatus::Active => "Active",
        RecordStatus::Expired => "Expired",
        RecordStatus::Exhausted => "Used up",
        RecordStatus::Disabled => "Disabled",
    }
}

/// One line of a record's timeline.
pub struct EventLine {
    pub what: String,
    pub when: When,
    pub client: String,
}

pub fn event_line(event: &EventView, now: OffsetDateTime) -> EventLine {
    let refused_by = event
        .detail
        .as_ref()
        .and_then(|d| d.get("refused_by"))
        .and_then(|s| s.as_str());
    if let Some(line) = key_check_line(event) {
        return EventLine {
            what: line,
            when: when(event.at, now),
            client: client_of(event),
        };
    }
    let handoff_end = event
        .detail
        .as_ref()
        .and_then(|d| d.get("ended_by"))
        .and_then(|s| s.as_str());
    let what = match (event.outcome.as_str(), refused_by, handoff_end) {
        ("gone", Some("disabled"), _) => "Refused: the secret is disabled".to_owned(),
        ("disabled", _, Some("schedule")) => {
            "Disabled: its handoff reached its end date".to_owned()
        }
        ("disabled", _, Some(_)) => "You ended its handoff: disabled".to_owned(),
        _ => describe(&event.channel, &event.outcome),
    };
    let status = event
        .detail
        .as_ref()
        .and_then(|d| d.get("status"))
        .and_then(|s| s.as_u64());
    let repeats = event
        .detail
        .as_ref()
        .and_then(|d| d.get("repeats"))
        .and_then(|s| s.as_u64())
        .filter(|n| *n > 0);
    let mut what = what;
    if event.channel == "webhook" {
        what.push_str(&webhook_detail(event.detail.as_ref()));
    } else if let Some(status) = status {
        what.push_str(&format!(" (upstream answered {status})"));
    }
    if let Some(n) = repeats {
        what.push_str(&format!(
            ", and {n} more time{} within a minute",
            if n == 1 { "" } else { "s" }
        ));
    }
    EventLine {
        what,
        when: when(event.at, now),
        client: client_of(event),
    }
}

/// Where an event came from: the address (and place) and the browser.
fn client_of(event: &EventView) -> String {
    let place = match (&event.country, &event.city) {
        (Some(country), Some(city)) => format!(" ({city}, {country})"),
        (Some(country), None) => format!(" ({country})"),
        _ => String::new(),
    };
    let ip = event.client_ip.as_ref().map(|ip| format!("{ip}{place}"));
    match (&ip, &event.user_agent) {
        (Some(ip), Some(ua)) => format!("from {ip} · {ua}"),
        (Some(ip), None) => format!("from {ip}"),
        (None, Some(ua)) => ua.clone(),
        (None, None) => String::new(),
    }
}

/// The line of a bridge key's test: on demand, before a new key was saved, or a new key refused.
fn key_check_line(event: &EventView) -> Option<String> {
    let d = event.detail.as_ref()?;
    let request = d
        .get("request")
        .and_then(|v| v.as_str())
        .unwrap_or("the probe");
    let answer = match (d.get("status").and_then(|v| v.as_u64()), d.get("error")) {
        (Some(status), _) => format!("the upstream answered {status} to {request}"),
        (None, Some(_)) => format!("the upstream could not be reached with {request}"),
        (None, None) => String::new(),
    };
    let line = match (
        event.outcome.as_str(),
        d.get("key_check").and_then(|v| v.as_str()),
    ) {
        ("key_tested", _) => match d.get("accepted").and_then(|v| v.as_bool()) {
            Some(true) => format!("You tested the bridge's key: accepted ({answer})"),
            Some(false) => format!("You tested the bridge's key: refused ({answer})"),
            None => format!("You tested the bridge's key: {answer}"),
        },
        ("key_refused", _) => format!("A new key was not saved: {answer}"),
        ("updated", Some("accepted")) => {
            format!("You changed the bridge's key, tested first ({answer})")
        }
        ("updated", Some("skipped")) => "You changed the bridge's key without testing it".into(),
        _ => return None,
    };
    Some(line)
}

/// A webhook delivery's event type, attempt and the receiver's answer, for its timeline line.
fn webhook_detail(detail: Option<&serde_json::Value>) -> String {
    let Some(d) = detail else {
        return String::new();
    };
    let text = |k: &str| d.get(k).and_then(|v| v.as_str());
    let mut out = String::new();
    if let Some(kind) = text("event_type") {
        out.push_str(&format!(": {kind}"));
    }
    if let Some(n) = d.get("attempt").and_then(|v| v.as_u64()) {
        out.push_str(&format!(", attempt {n}"));
    }
    match (d.get("status").and_then(|v| v.as_u64()), text("error")) {
        (Some(status), _) => out.push_str(&format!(" (receiver answered {status})")),
        (None, Some(error)) => out.push_str(&format!(" ({error})")),
        (None, None) => {}
    }
    if d.get("gave_up").and_then(|v| v.as_bool()) == Some(true) {
        out.push_str("; no attempts left");
    } else if text("next_attempt_at").is_some() {
        out.push_str("; will retry");
    }
    out
}

/// What an event means, in words an owner uses: opened (a form seen), revealed (a value seen by a
/// person), used (a value read by code, a bridge called).
fn describe(channel: &str, outcome: &str) -> String {
    let text = match (channel, outcome) {
        ("read", "ok") => "Used: read by code",
        ("batch", "ok") => "Used: read by code in a batch",
        ("password", "ok") => "Used: unlocked with the record password",
        ("bridge", "ok") => "Used: bridge called",
        ("bridge", "attempt") => "Bridge call under way",
        ("secure_page", "opened") => "Opened: the secure page's password form was shown",
        ("secure_page", "revealed") => "Revealed on the secure page",
        ("secure_page", "attempt") => "Secure page: password being checked",
        ("secure_page", "denied") => "Secure page: wrong password",
        ("password", "denied") | ("password", "attempt") => "Wrong record password",
        (_, "denied") => "Refused: wrong or missing X-API-Key, or a call the rules do not allow",
        (_, "forbidden") => "Refused: not allowed from there",
        (_, "gone") => "Refused: expired or used up",
        (_, "rate_limited") => "Refused: over a limit",
        ("owner", "ok") => "You viewed the value",
        ("owner", "rotated") => "You rotated the X-API-Key",
        ("owner", "key_removed") => "You removed the X-API-Key",
        ("owner", "secure_page_enabled") => "You set the secure page's password",
        ("owner", "secure_page_disabled") => "You turned the secure page off",
        ("owner", "updated") => "You changed the settings",
        ("owner", "tried") => "You tried the bridge in the playground",
        ("owner", "disabled") => "You disabled the secret",
        ("owner", "enabled") => "You enabled the secret",
        ("owner", "webhook_set") => "You set the webhook",
        ("owner", "webhook_removed") => "You removed the webhook",
        ("owner", "webhook_secret_rotated") => "You rotated the webhook's signing secret",
        ("intake", "received") => "Received through an intake link",
        ("webhook", "delivered") => "Webhook delivered",
        ("webhook", "delivery_failed") => "Webhook delivery failed",
        (_, "bad_request") => "Refused: a malformed call",
        (_, "timeout") => "Bridge call: the upstream timed out",
        (_, "unreachable") => "Bridge call: the upstream could not be reached",
        (_, "refused") => "Bridge call: the upstream's address may not be called",
        (_, "error") => "Bridge call: the answer could not be relayed",
        (_, "loop") => "Refused: a bridge that calls itself",
        _ => "",
    };
    if text.is_empty() {
        format!("{channel}: {outcome}")
    } else {
        text.to_owned()
    }
}

/// A record as a row of the list.
pub struct Row {
    pub uuid: String,
    pub name: String,
    pub kind: &'static str,
    pub access: &'static str,
    pub sealed: bool,
    pub page: bool,
    pub status: &'static str,
    pub active: bool,
    pub reads: i64,
    pub max_reads: Option<i64>,
    pub last_used: Option<When>,
}

pub fn row(record: &RecordView, now: OffsetDateTime) -> Row {
    Row {
        uuid: record.uuid.to_string(),
        name: record.name.clone(),
        kind: kind(record.kind),
        access: access(record.access),
        sealed: record.sealed,
        page: record.secure_page.is_some(),
        status: status(record.status),
        active: record.status == RecordStatus::Active,
        reads: record.reads,
        max_reads: record.max_reads,
        last_used: record.last_used_at.map(|at| when(at, now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn times_read_as_people_say_them() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let ago = |s: i64| when(now - Duration::seconds(s), now).relative;
        assert_eq!(ago(3), "just now");
        assert_eq!(ago(60), "1 minute ago");
        assert_eq!(ago(150), "2 minutes ago");
        assert_eq!(ago(7_200), "2 hours ago");
        assert_eq!(ago(86_400 * 3), "3 days ago");
        assert_eq!(when(now + Duration::hours(5), now).relative, "in 5 hours");
        let ahead = |s: i64| when(now + Duration::seconds(s), now).relative;
        assert_eq!(ahead(14 * 86_400 - 2), "in 14 days", "set a moment ago");
        assert_eq!(ahead(14 * 86_400 - 3_600), "in 13 days");
        assert_eq!(when(now, now).exact, "2027-01-15 08:00:00 UTC");
    }

    #[test]
    fn opened_revealed_and_used_read_apart() {
        let [opened, revealed, used] = [
            describe("secure_page", "opened"),
            describe("secure_page", "revealed"),
            describe("read", "ok"),
        ];
        assert!(opened.starts_with("Opened"), "{opened}");
        assert!(revealed.starts_with("Revealed"), "{revealed}");
        assert!(used.starts_with("Used"), "{used}");
        assert_eq!(describe("mystery", "new"), "mystery: new");
    }
}
