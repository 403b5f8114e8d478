//! `brine records ...`: the owner's management API, with the saved session.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use brine_core::{Access, RecordKind};
use brine_proto::{
    ApiKeyBody, CreateRecord, EventList, RecordList, RecordView, RecordWithKey, RotateRecord,
    Timestamp,
};
use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::http::{Api, Auth};
use super::input;
use super::session::{self, Session};
use super::table::{clean, render, shorten};

#[derive(Subcommand)]
pub enum RecordsCommand {
    /// Store a secret value as a new record.
    ///
    /// The value is read from stdin (all of it; one trailing newline is dropped) or, when stdin
    /// is a terminal, typed at a prompt that does not echo. It is never taken as an argument,
    /// where it would end up in your shell history.
    ///
    /// Example: printf %s "$STRIPE_KEY" | brine records create --name "Stripe live key"
    Create(CreateArgs),
    /// List your records.
    List {
        /// Print the server's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show a record's details (never its value).
    Show {
        /// The record's uuid or name.
        #[arg(value_name = "RECORD")]
        uuid: RecordRef,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Issue a new X-API-Key for a private record. The old key stops working at once.
    ///
    /// Sealed records need their current key (--api-key-file or BRINE_API_KEY), or a new value
    /// with --new-value, because the server alone cannot open them.
    Rotate(RotateArgs),
    /// Delete a record. It stops answering at once; there is no undo (its history stays in
    /// the logs for the retention period). Asks first when run at a terminal.
    Delete {
        /// The record's uuid or name.
        #[arg(value_name = "RECORD")]
        uuid: RecordRef,
        /// Do not ask.
        #[arg(long, short)]
        yes: bool,
    },
    /// Print a record's value as its owner sees it (audited as your reveal).
    Reveal {
        /// The record's uuid or name.
        #[arg(value_name = "RECORD")]
        uuid: RecordRef,
    },
    /// Replace a record's value, read like `create` reads it (stdin or a hidden prompt).
    SetValue {
        /// The record's uuid or name.
        #[arg(value_name = "RECORD")]
        uuid: RecordRef,
    },
    /// Stop a record answering (as for a uuid that does not exist), keeping everything.
    Disable {
        /// The record's uuid or name.
        #[arg(value_name = "RECORD")]
        uuid: RecordRef,
    },
    /// Let a disabled record answer again.
    Enable {
        /// The record's uuid or name.
        #[arg(value_name = "RECORD")]
        uuid: RecordRef,
    },
    /// Turn a record's secure page on or off, or give it a new password.
    #[command(subcommand)]
    Page(PageCommand),
    /// Show who read a record, when and from where (newest first).
    Events {
        /// The record's uuid or name.
        #[arg(value_name = "RECORD")]
        uuid: RecordRef,
        /// Show at most this many events.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: u32,
        /// Print the server's JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum PageCommand {
    /// Turn the secure page on, with a password (generated unless --password-file is given).
    Enable(PageArgs),
    /// Give the page a new password: the old one, and every link sent with it, stops working.
    Password(PageArgs),
    /// Turn the page off.
    Disable {
        /// The record's uuid or name.
        #[arg(value_name = "RECORD")]
        uuid: RecordRef,
    },
}

#[derive(Args)]
pub struct PageArgs {
    /// The record's uuid or name.
    #[arg(value_name = "RECORD")]
    uuid: RecordRef,
    /// A file holding the page password (at least 8 characters); without it, a strong one is
    /// generated and printed.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// Stop revealing after this many views.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    max_views: Option<i64>,
    /// Stop revealing after this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    expires_at: Option<OffsetDateTime>,
    /// Text the page shows before the password (not secret).
    #[arg(long)]
    label: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum AccessArg {
    /// Readable with its X-API-Key (shown once, when the record is created).
    Private,
    /// Readable by anyone who has its URL.
    Public,
    /// Not readable at /r/ at all; only you, signed in, can see it.
    #[value(name = "owner_only", alias = "owner-only")]
    OwnerOnly,
}

impl From<AccessArg> for Access {
    fn from(access: AccessArg) -> Self {
        match access {
            AccessArg::Private => Access::Private,
            AccessArg::Public => Access::Public,
            AccessArg::OwnerOnly => Access::OwnerOnly,
        }
    }
}

#[derive(Args)]
pub struct CreateArgs {
    /// A name to recognise the record by (not secret).
    #[arg(long)]
    name: String,
    /// Who may read it at /r/UUID.
    #[arg(long, value_enum, default_value = "private")]
    access: AccessArg,
    /// Keep no server-side copy of the decryption key: only the X-API-Key (or the record
    /// password) opens it, and even you can replace the value but never view it.
    #[arg(long)]
    sealed: bool,
    /// Stop serving the record after this time (RFC 3339, e.g. 2030-01-31T18:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    expires_at: Option<Timestamp>,
    /// Stop serving the record after this many successful reads.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
    max_reads: Option<i64>,
    /// A file holding a record password, which also opens a private record (at least 8
    /// characters; surrounding whitespace is ignored).
    #[arg(long, value_name = "FILE")]
    record_password_file: Option<PathBuf>,
    /// Requests each client address may make, as COUNT/PERIOD: 60/min, 1000/hour, 10/15min.
    #[arg(long, value_name = "RATE")]
    per_ip: Option<String>,
    /// Requests everyone together may make, as COUNT/PERIOD.
    #[arg(long, value_name = "RATE")]
    total: Option<String>,
    /// Requests allowed per calendar hour, day or month (UTC), exactly: 10000/month.
    #[arg(long, value_name = "COUNT/PERIOD", value_parser = parse_quota)]
    quota: Option<(u32, String)>,
    /// Write the X-API-Key to this new file (mode 0600) instead of showing it; an existing
    /// file is never overwritten.
    #[arg(long, value_name = "PATH", conflicts_with = "json")]
    key_file: Option<PathBuf>,
    /// Print the server's JSON answer (including the X-API-Key) instead of a summary.
    #[arg(long)]
    json: bool,
}

/// `10000/month` as (10000, "month").
fn parse_quota(s: &str) -> Result<(u32, String), String> {
    let invalid =
        || "expected COUNT/PERIOD with a period of hour, day or month, e.g. 10000/month".to_owned();
    let (count, per) = s.split_once('/').ok_or_else(invalid)?;
    let count = count.trim().parse().map_err(|_| invalid())?;
    let per = per.trim();
    if !["hour", "day", "month"].contains(&per) {
        return Err(invalid());
    }
    Ok((count, per.to_owned()))
}

#[derive(Args)]
pub struct RotateArgs {
    /// The record's uuid or name.
    #[arg(value_name = "RECORD")]
    uuid: RecordRef,
    /// Sealed records: a file holding the current X-API-Key (else BRINE_API_KEY is used).
    #[arg(long, value_name = "FILE")]
    api_key_file: Option<PathBuf>,
    /// Sealed records: replace the value too, read like `records create` reads it (stdin or a
    /// prompt). Needed when the current key is lost.
    #[arg(long)]
    new_value: bool,
    /// With --new-value: a file holding the record password to keep (required when the record
    /// has one).
    #[arg(long, value_name = "FILE", requires = "new_value")]
    record_password_file: Option<PathBuf>,
    /// Write the new X-API-Key to this new file (mode 0600) instead of showing it; an existing
    /// file is never overwritten.
    #[arg(long, value_name = "PATH", conflicts_with = "json")]
    key_file: Option<PathBuf>,
    /// Print the server's JSON answer instead of a summary.
    #[arg(long)]
    json: bool,
}

/// `per_ip 60/min, total 1000/hour`, or `none`.
fn rate_limit_text(record: &RecordView) -> String {
    let Some(limit) = &record.rate_limit else {
        return "none".to_owned();
    };
    let parts: Vec<String> = [("per_ip", limit.per_ip), ("total", limit.total)]
        .iter()
        .filter_map(|(name, rate)| rate.map(|rate| format!("{name} {rate}")))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// `37 of 10000 this month`, or `none`.
fn quota_text(record: &RecordView) -> String {
    let Some(quota) = &record.quota else {
        return "none".to_owned();
    };
    let per = serde_json::to_value(quota.per)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    match record.quota_used {
        Some(used) => format!("{used} of {} this {per}", quota.requests),
        None => format!("{} per {per}", quota.requests),
    }
}

pub(super) fn time_text(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

pub(super) fn parse_time(s: &str) -> Result<Timestamp, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map(Timestamp)
        .map_err(|_| "expected an RFC 3339 time such as 2030-01-31T18:00:00Z".to_owned())
}

/// A record as the owner names it on the command line: its uuid or its name.
#[derive(Clone, Debug)]
pub struct RecordRef(String);

impl std::str::FromStr for RecordRef {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// The signed-in session and a client for its server.
pub(super) struct Signed {
    pub(super) api: Api,
    pub(super) session: Session,
}

impl Signed {
    pub(super) async fn open() -> anyhow::Result<Self> {
        let session = session::load().await?;
        Ok(Self {
            api: Api::new(&session.server)?,
            session,
        })
    }

    pub(super) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        self.api
            .call(method, path, Auth::bearer(&self.session.token), body)
            .await
    }

    pub(super) fn base(&self) -> &str {
        self.api.base()
    }

    /// A record named by its uuid or by its name among the owner's records.
    pub(super) async fn resolve(&self, record: &RecordRef) -> anyhow::Result<Uuid> {
        super::read::resolve(&self.api, &self.session.token, &record.0).await
    }

    fn read_url(&self, uuid: &str) -> String {
        format!("{}/r/{uuid}", self.api.base())
    }
}

pub(super) fn decode<T: for<'de> Deserialize<'de>>(value: Value) -> anyhow::Result<T> {
    serde_json::from_value(value)
        .map_err(|_| anyhow!("the server's answer has an unexpected shape"))
}

const BOTH_ROUTES: &str = "this record opens both for code (X-API-Key) and for a person (secure \
     page) under one uuid; prefer two records, one for each, so that each can be revoked alone";

/// The server's advice about a record (`warnings` in its answer), on stderr.
pub(super) fn print_warnings(answer: &Value) {
    for warning in answer["warnings"].as_array().into_iter().flatten() {
        if let Some(text) = warning.as_str() {
            eprintln!("warning: {}", clean(text));
        }
    }
}

pub(super) fn print_json(value: &Value) -> anyhow::Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).context("cannot print JSON")?
    );
    Ok(())
}

pub async fn run(command: RecordsCommand) -> anyhow::Result<ExitCode> {
    let signed = Signed::open().await?;
    match command {
        RecordsCommand::Create(args) => create(&signed, args).await?,
        RecordsCommand::List { json } => list(&signed, json).await?,
        RecordsCommand::Show { uuid, json } => {
            show(&signed, signed.resolve(&uuid).await?, json).await?
        }
        RecordsCommand::Rotate(args) => rotate(&signed, args).await?,
        RecordsCommand::Delete { uuid, yes } => {
            delete(&signed, signed.resolve(&uuid).await?, yes).await?
        }
        RecordsCommand::Reveal { uuid } => reveal(&signed, signed.resolve(&uuid).await?).await?,
        RecordsCommand::SetValue { uuid } => {
            set_value(&signed, signed.resolve(&uuid).await?).await?
        }
        RecordsCommand::Disable { uuid } => {
            set_state(&signed, signed.resolve(&uuid).await?, "disable").await?
        }
        RecordsCommand::Enable { uuid } => {
            set_state(&signed, signed.resolve(&uuid).await?, "enable").await?
        }
        RecordsCommand::Page(command) => page(&signed, command).await?,
        RecordsCommand::Events { uuid, limit, json } => {
            events(&signed, signed.resolve(&uuid).await?, limit, json).await?
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn reveal(signed: &Signed, uuid: Uuid) -> anyhow::Result<()> {
    let answer = signed
        .call(Method::GET, &format!("/api/v1/records/{uuid}/value"), None)
        .await?;
    match answer.get("data") {
        Some(Value::String(value)) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let newline = if std::io::IsTerminal::is_terminal(&out) {
                "\n"
            } else {
                ""
            };
            write!(out, "{value}{newline}").context("cannot write to stdout")?;
        }
        // A bridge's value is its URL and headers: shown as JSON.
        Some(data) => print_json(data)?,
        None => bail!("the server's answer holds no value"),
    }
    Ok(())
}

async fn set_value(signed: &Signed, uuid: Uuid) -> anyhow::Result<()> {
    let value = input::secret_value("New value")?;
    let body = json!({"data": value.expose()});
    drop(value);
    signed
        .call(
            Method::PATCH,
            &format!("/api/v1/records/{uuid}"),
            Some(&body),
        )
        .await?;
    println!("Replaced the value of {uuid}. Readers get the new value from now on; keys stay.");
    Ok(())
}

async fn set_state(signed: &Signed, uuid: Uuid, action: &str) -> anyhow::Result<()> {
    signed
        .call(
            Method::POST,
            &format!("/api/v1/records/{uuid}/{action}"),
            None,
        )
        .await?;
    match action {
        "disable" => println!(
            "Disabled {uuid}: it answers as if it did not exist, until `brine records enable {uuid}`."
        ),
        _ => println!("Enabled {uuid}: it answers again."),
    }
    Ok(())
}

async fn page(signed: &Signed, command: PageCommand) -> anyhow::Result<()> {
    let (uuid, args) = match command {
        PageCommand::Disable { uuid } => {
            let uuid = signed.resolve(&uuid).await?;
            let body = json!({"enabled": false});
            signed
                .call(
                    Method::PUT,
                    &format!("/api/v1/records/{uuid}/secure-page"),
                    Some(&body),
                )
                .await?;
            println!("The secure page of {uuid} is off; its link no longer opens.");
            return Ok(());
        }
        PageCommand::Enable(args) | PageCommand::Password(args) => {
            (signed.resolve(&args.uuid).await?, args)
        }
    };
    let generated = args.password_file.is_none();
    let password = match &args.password_file {
        Some(path) => input::secret_file(path, "page password")?,
        None => input::Secret::from(
            brine_crypto::generate_passphrase()
                .context("cannot generate a password")?
                .to_string(),
        ),
    };
    let body = brine_proto::SecurePageBody {
        enabled: true,
        password: Some(password.expose().to_owned()),
        expires_at: args.expires_at.map(brine_proto::Timestamp),
        max_views: args.max_views,
        label: args.label,
    };
    let body = serde_json::to_value(body).context("cannot encode the page")?;
    signed
        .call(
            Method::PUT,
            &format!("/api/v1/records/{uuid}/secure-page"),
            Some(&body),
        )
        .await?;
    println!("Link:     {}/secure/{uuid}", signed.base());
    if generated {
        println!("Password: {}", password.expose());
    } else {
        println!("Password: the one in the file you gave");
    }
    println!("Send them over different channels. An earlier password no longer works.");
    Ok(())
}

async fn delete(signed: &Signed, uuid: Uuid, yes: bool) -> anyhow::Result<()> {
    let path = format!("/api/v1/records/{uuid}");
    if !yes && std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let record: RecordView = decode(signed.call(Method::GET, &path, None).await?)?;
        let question = format!(
            "Delete \"{}\" ({uuid})? Its value and keys are gone for good. Type yes to delete: ",
            clean(&record.name)
        );
        if !input::confirm(&question)? {
            bail!("nothing deleted");
        }
    }
    signed.call(Method::DELETE, &path, None).await?;
    println!("Deleted record {uuid}; it no longer answers. Its history stays in the logs.");
    Ok(())
}

async fn create(signed: &Signed, args: CreateArgs) -> anyhow::Result<()> {
    let password = args
        .record_password_file
        .as_deref()
        .map(|path| input::secret_file(path, "record password"))
        .transpose()?;
    let value = input::secret_value("Secret value")?;
    let rate_limit = (args.per_ip.is_some() || args.total.is_some())
        .then(|| json!({"per_ip": args.per_ip, "total": args.total}));
    let quota = args
        .quota
        .as_ref()
        .map(|(requests, per)| json!({"requests": requests, "per": per}));
    let body = CreateRecord {
        name: args.name.clone(),
        kind: Some(RecordKind::Credential),
        access: args.access.into(),
        data: Some(value.expose().to_owned()),
        bridge: None,
        params: None,
        password: password.as_ref().map(|p| p.expose().to_owned()),
        sealed: args.sealed,
        expires_at: args.expires_at,
        max_reads: args.max_reads,
        api_key: None,
        secure_page: None,
        rate_limit,
        quota,
    };
    let body = serde_json::to_value(body).context("cannot encode the record")?;
    drop(value);
    // Made before the record, so that a key is never issued with nowhere to go.
    let key_file = args.key_file.as_deref().map(KeyFile::create).transpose()?;
    let answer = signed
        .call(Method::POST, "/api/v1/records", Some(&body))
        .await;
    let answer = match (answer, key_file.as_ref()) {
        (Err(e), Some(file)) => {
            file.discard();
            return Err(e);
        }
        (answer, _) => answer?,
    };
    if args.json {
        return print_json(&answer);
    }
    print_warnings(&answer);
    let RecordWithKey {
        record, api_key, ..
    } = decode(answer)?;
    let sealed = if record.sealed { ", sealed" } else { "" };
    println!(
        "Created {}{sealed} record \"{}\".",
        record.access.as_str(),
        clean(&record.name)
    );
    println!("  uuid:       {}", record.uuid);
    println!(
        "  read URL:   {}",
        signed.read_url(&record.uuid.to_string())
    );
    if let Some(at) = record.expires_at {
        println!("  expires at: {}", time_text(at));
    }
    if let Some(n) = record.max_reads {
        println!("  max reads:  {n}");
    }
    if record.rate_limit.is_some() {
        println!("  rate limit: {}", rate_limit_text(&record));
    }
    if record.quota.is_some() {
        println!("  quota:      {}", quota_text(&record));
    }
    match (api_key, key_file) {
        (Some(key), Some(file)) => {
            file.write(&key)?;
            println!(
                "  X-API-Key:  written to {} (mode 0600)",
                file.path.display()
            );
            println!(
                "Read the value with: brine get {} --api-key-file {}",
                record.uuid,
                file.path.display()
            );
        }
        (Some(key), None) => {
            println!("  X-API-Key:  {key}");
            println!();
            println!(
                "The X-API-Key is shown once — store it now. brine cannot show it again; \
                 `brine records rotate {}` issues a new one.",
                record.uuid
            );
            println!(
                "Read the value with: brine get {} --api-key-file FILE (or set BRINE_API_KEY)",
                record.uuid
            );
        }
        (None, file) => {
            if let Some(file) = file {
                file.discard();
                eprintln!("note: this record has no X-API-Key, so no key file was written");
            }
            print_access(&record);
        }
    }
    Ok(())
}

/// How a record without an X-API-Key can be read.
fn print_access(record: &RecordView) {
    match record.access {
        Access::Public => {
            println!(
                "Anyone with the read URL can read it: brine get {}",
                record.uuid
            );
        }
        _ => println!("Only you can see it; the read URL refuses everyone."),
    }
}

/// A new file for an X-API-Key: created (mode 0600, never over an existing file) before the
/// key is asked for, written once it comes, removed if none does.
pub(super) struct KeyFile {
    path: PathBuf,
    file: std::fs::File,
}

impl KeyFile {
    pub(super) fn create(path: &std::path::Path) -> anyhow::Result<Self> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                anyhow!(
                    "{} exists: brine never overwrites a key file; choose another path",
                    path.display()
                )
            } else {
                anyhow!("cannot create {}: {e}", path.display())
            }
        })?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    pub(super) fn write(&self, key: &str) -> anyhow::Result<()> {
        use std::io::Write;
        let mut file = &self.file;
        writeln!(file, "{key}")
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write the key to {}", self.path.display()))
    }

    /// Removes the (still empty) file when no key came.
    pub(super) fn discard(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn list(signed: &Signed, json: bool) -> anyhow::Result<()> {
    let answer = signed.call(Method::GET, "/api/v1/records", None).await?;
    if json {
        return print_json(&answer);
    }
    let RecordList { records } = decode(answer)?;
    if records.is_empty() {
        println!("No records yet. Store one with `brine records create`.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            vec![
                r.uuid.to_string(),
                shorten(&clean(&r.name), 40),
                r.kind.as_str().to_owned(),
                r.access.as_str().to_owned(),
                r.status.as_str().to_owned(),
                r.last_used_at.map_or_else(|| "never".to_owned(), time_text),
            ]
        })
        .collect();
    let head = ["UUID", "NAME", "TYPE", "ACCESS", "STATUS", "LAST USED"];
    print!("{}", render(&head, &rows));
    Ok(())
}

/// A bridge call's detail as one line: `GET /v1/models → 200 in 12 ms, 5.1 kB`.
/// What an event's detail says in a few words: a bridge call's summary, the service token that
/// read the record, or what refused it.
fn detail_text(detail: Option<&Value>) -> Option<String> {
    let d = detail?;
    if let Some(token) = d.get("service_token").and_then(Value::as_str) {
        return Some(format!("service token {token:?}"));
    }
    if let Some(call) = call_text(d) {
        return Some(call);
    }
    let refused_by = d.get("refused_by").and_then(Value::as_str)?;
    Some(format!("refused by {refused_by}"))
}

fn call_text(d: &Value) -> Option<String> {
    let method = d.get("method")?.as_str()?;
    let path = d.get("path").and_then(Value::as_str).unwrap_or("/");
    let mut text = format!("{method} {path}");
    if let Some(status) = d.get("status").and_then(Value::as_u64) {
        text.push_str(&format!(" → {status}"));
    }
    if let Some(ms) = d.get("latency_ms").and_then(Value::as_u64) {
        text.push_str(&format!(" in {ms} ms"));
    }
    if let Some(bytes) = d.get("bytes").and_then(Value::as_u64) {
        text.push_str(&format!(", {bytes} B"));
    }
    Some(text)
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

async fn show(signed: &Signed, uuid: Uuid, json: bool) -> anyhow::Result<()> {
    let answer = signed
        .call(Method::GET, &format!("/api/v1/records/{uuid}"), None)
        .await?;
    if json {
        return print_json(&answer);
    }
    if answer["has_api_key"] == true && answer["secure_page"].is_object() {
        eprintln!("warning: {BOTH_ROUTES}");
    }
    let r: RecordView = decode(answer)?;
    let reads = match r.max_reads {
        Some(max) => format!("{} of {max}", r.reads),
        None => "counted only with a read limit; see last used".to_owned(),
    };
    // The address that answers callers, or why none does.
    let read_url = match (r.kind, r.access, r.has_api_key) {
        (_, Access::OwnerOnly, _) => "none: only you can see it (brine records show/reveal)".into(),
        (RecordKind::Credential, Access::Private, false) => {
            "none: no X-API-Key (the secure page is its way out)".into()
        }
        _ => signed.read_url(&r.uuid.to_string()),
    };
    let page = r.secure_page.as_ref().map_or_else(
        || "off".to_owned(),
        |p| {
            let views = match p.max_views {
                Some(max) => format!("{} of {max} views", p.views),
                None => format!("{} views", p.views),
            };
            let expires = p.expires_at.map_or_else(
                || "never expires".to_owned(),
                |at| format!("expires {}", time_text(at)),
            );
            format!(
                "{}{} ({views}, {expires}, {})",
                signed.base(),
                p.path,
                p.status.as_str()
            )
        },
    );
    let rows = [
        ("uuid", r.uuid.to_string()),
        ("name", clean(&r.name)),
        ("type", r.kind.as_str().to_owned()),
        ("access", r.access.as_str().to_owned()),
        ("sealed", yes_no(r.sealed).to_owned()),
        ("X-API-Key set", yes_no(r.has_api_key).to_owned()),
        ("password set", yes_no(r.has_password).to_owned()),
        ("status", r.status.as_str().to_owned()),
        (
            "expires at",
            r.expires_at.map_or_else(|| "never".to_owned(), time_text),
        ),
        ("reads", reads),
        (
            "last used",
            r.last_used_at.map_or_else(|| "never".to_owned(), time_text),
        ),
        ("rate limit", rate_limit_text(&r)),
        ("quota", quota_text(&r)),
        ("read URL", read_url),
        ("secure page", page),
        ("created at", time_text(r.created_at)),
        ("updated at", time_text(r.updated_at)),
    ];
    for (label, value) in rows {
        println!("{:<14} {value}", format!("{label}:"));
    }
    Ok(())
}

async fn rotate(signed: &Signed, args: RotateArgs) -> anyhow::Result<()> {
    let uuid = signed.resolve(&args.uuid).await?;
    let path = format!("/api/v1/records/{uuid}");
    let record: RecordView = decode(signed.call(Method::GET, &path, None).await?)?;
    let rotate_path = format!("{path}/api-key");
    let bearer = Some(signed.session.token.as_str());
    let key_file = args.key_file.as_deref().map(KeyFile::create).transpose()?;
    let answer = rotate_call(signed, &args, &record, &rotate_path, bearer).await;
    let answer = match (answer, key_file.as_ref()) {
        (Err(e), Some(file)) => {
            file.discard();
            return Err(e);
        }
        (answer, _) => answer?,
    };
    if args.json {
        return print_json(&answer);
    }
    let ApiKeyBody { api_key: key } = decode(answer)?;
    match key_file {
        Some(file) => {
            file.write(&key)?;
            println!(
                "New X-API-Key for {uuid} written to {} (mode 0600).",
                file.path.display()
            );
            println!("The old key no longer works.");
        }
        None => {
            println!("New X-API-Key for {uuid}: {key}");
            println!("It is shown once — store it now. The old key no longer works.");
        }
    }
    Ok(())
}

/// The rotation itself: the server alone for an ordinary record; a sealed one needs its
/// current key or a new value.
async fn rotate_call(
    signed: &Signed,
    args: &RotateArgs,
    record: &RecordView,
    rotate_path: &str,
    bearer: Option<&str>,
) -> anyhow::Result<Value> {
    Ok(if !record.sealed {
        if args.new_value {
            bail!("--new-value is only for sealed records");
        }
        signed.call(Method::POST, rotate_path, None).await?
    } else if args.new_value {
        let password = args
            .record_password_file
            .as_deref()
            .map(|path| input::secret_file(path, "record password"))
            .transpose()?;
        let value = input::secret_value("New secret value")?;
        let body = RotateRecord {
            data: Some(value.expose().to_owned()),
            password: password.as_ref().map(|p| Some(p.expose().to_owned())),
        };
        let body = serde_json::to_value(body).context("cannot encode the new value")?;
        signed.call(Method::POST, rotate_path, Some(&body)).await?
    } else {
        let key = input::api_key(args.api_key_file.as_deref())?.ok_or_else(|| {
            anyhow!(
                "record {} is sealed: give its current X-API-Key with --api-key-file FILE or \
                 BRINE_API_KEY, or replace its value with --new-value",
                record.uuid
            )
        })?;
        let auth = Auth {
            bearer,
            api_key: Some(&key),
            reading: false,
        };
        signed
            .api
            .call(Method::POST, rotate_path, auth, None)
            .await?
    })
}

async fn events(signed: &Signed, uuid: Uuid, limit: u32, json: bool) -> anyhow::Result<()> {
    let answer = signed
        .call(
            Method::GET,
            &format!("/api/v1/records/{uuid}/events?limit={limit}"),
            None,
        )
        .await?;
    if json {
        return print_json(&answer);
    }
    let EventList { events } = decode(answer)?;
    if events.is_empty() {
        println!("No events yet: nobody has tried to read this record.");
        return Ok(());
    }
    let unknown = || "-".to_owned();
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                time_text(e.at),
                clean(&e.channel),
                clean(&e.outcome),
                e.client_ip.as_deref().map_or_else(unknown, clean),
                e.user_agent
                    .as_deref()
                    .map_or_else(unknown, |ua| shorten(&clean(ua), 40)),
                detail_text(e.detail.as_ref()).map_or_else(unknown, |d| clean(&d)),
            ]
        })
        .collect();
    let head = ["AT", "CHANNEL", "OUTCOME", "CLIENT", "USER AGENT", "DETAIL"];
    print!("{}", render(&head, &rows));
    Ok(())
}
