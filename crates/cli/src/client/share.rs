//! `brine share`: hand a secret to a person through a password-protected page.

use std::path::PathBuf;

use anyhow::Context;
use brine_core::Access;
use brine_proto::{CreateRecord, SecurePageBody, Timestamp};
use clap::Args;
use reqwest::Method;
use serde_json::json;
use time::OffsetDateTime;

use super::input;
use super::records::{Signed, parse_time, print_json, print_warnings};

#[derive(Args)]
pub struct ShareArgs {
    /// A name to recognise the record by in your list (not secret, not shown to the person).
    #[arg(long, default_value = "Shared secret")]
    name: String,
    /// A file holding the page password (at least 8 characters). Without it a strong password
    /// is generated.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// How long the page works: a number with s, m, h or d (e.g. 14d, 12h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, conflicts_with = "expires_at")]
    expires_in: Option<time::Duration>,
    /// When the page stops working (RFC 3339, e.g. 2030-01-31T18:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    expires_at: Option<Timestamp>,
    /// How many times the page may reveal the value.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    max_views: Option<i64>,
    /// Text the page shows before the password, so the person knows what they are opening
    /// (e.g. "Stripe test key, from Ana at Acme"). Anyone with the link sees it.
    #[arg(long, value_name = "TEXT")]
    label: Option<String>,
    /// Print the server's JSON answer instead of the link and password.
    #[arg(long)]
    json: bool,
}

pub(super) fn parse_duration(text: &str) -> Result<time::Duration, String> {
    let bad = || format!("'{text}' is not a duration like 30m, 12h or 14d");
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| bad())?;
    if n < 1 {
        return Err(bad());
    }
    match unit {
        "s" => Ok(time::Duration::seconds(n)),
        "m" => Ok(time::Duration::minutes(n)),
        "h" => Ok(time::Duration::hours(n)),
        "d" => Ok(time::Duration::days(n)),
        _ => Err(bad()),
    }
}

pub async fn share(args: ShareArgs) -> anyhow::Result<std::process::ExitCode> {
    let signed = Signed::open().await?;
    let password = match &args.password_file {
        Some(path) => input::secret_file(path, "page password")?,
        None => input::Secret::from(
            brine_crypto::generate_passphrase()
                .context("cannot generate a password")?
                .to_string(),
        ),
    };
    let value = input::secret_value("Value to share")?;
    let expires_at = match (args.expires_in, args.expires_at) {
        (Some(d), _) => Some(Timestamp(OffsetDateTime::now_utc() + d)),
        (None, at) => at,
    };
    let page = SecurePageBody {
        enabled: true,
        password: Some(password.expose().to_owned()),
        expires_at,
        max_views: args.max_views,
        label: args.label.clone(),
    };
    // A record for the person only: no X-API-Key, so the page can be revoked on its own.
    let body = CreateRecord {
        name: args.name.clone(),
        kind: None,
        access: Access::Private,
        data: Some(value.expose().to_owned()),
        bridge: None,
        params: None,
        password: None,
        sealed: false,
        expires_at: None,
        max_reads: None,
        api_key: Some(false),
        secure_page: Some(page),
        rate_limit: None,
        quota: None,
    };
    let body = serde_json::to_value(body).context("cannot encode the record")?;
    drop(value);
    let mut answer = signed
        .call(Method::POST, "/api/v1/records", Some(&body))
        .await?;
    if args.json {
        // The server never returns the password; the JSON must carry it, or nobody would know it.
        answer["secure_page_password"] = json!(password.expose());
        print_json(&answer)?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    print_warnings(&answer);
    let path = answer["record"]["secure_page"]["path"]
        .as_str()
        .context("the server's answer has no secure page")?;
    let uuid = answer["record"]["uuid"].as_str().unwrap_or_default();
    println!("Link:     {}{path}", signed.base());
    println!("Password: {}", password.expose());
    println!();
    println!("Send the link and the password over different channels (say, the link by email and");
    println!("the password by text message), so that neither alone opens the page.");
    println!("See who opened it: brine records events {uuid}");
    println!(
        "End the hand-off: brine records delete {uuid} (or give the page a new password), and \
         rotate the key at its provider."
    );
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("14d"), Ok(time::Duration::days(14)));
        assert_eq!(parse_duration("90m"), Ok(time::Duration::minutes(90)));
        for bad in ["", "d", "0h", "-1d", "5w", "1.5h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
