//! `brine logs export`: the account's event log, streamed to a file or stdout.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use super::http::Auth;
use super::records::Signed;

#[derive(Subcommand)]
pub enum LogsCommand {
    /// Download the account's events (newest first) as JSON lines or CSV, however many.
    ///
    /// Example: brine logs export --format csv --from 2026-11-01T00:00:00Z -o november.csv
    Export(ExportArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Jsonl,
    Csv,
}

#[derive(Args)]
pub struct ExportArgs {
    /// JSON lines (one event a line) or CSV with a header row.
    #[arg(long, value_enum, default_value = "jsonl")]
    format: Format,
    /// Write to this file (created with mode 0600: it holds addresses); stdout when absent or `-`.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    force: bool,
    /// Only events at or after this time (RFC 3339).
    #[arg(long)]
    from: Option<String>,
    /// Only events before this time (RFC 3339).
    #[arg(long)]
    to: Option<String>,
    /// Only this record's events (a uuid; deleted records too).
    #[arg(long)]
    record: Option<String>,
    /// Only events of this channel (read, bridge, secure_page, owner, ...).
    #[arg(long)]
    channel: Option<String>,
    /// Only events with this outcome (ok, denied, rate_limited, ...).
    #[arg(long)]
    outcome: Option<String>,
}

pub async fn run(command: LogsCommand) -> anyhow::Result<std::process::ExitCode> {
    match command {
        LogsCommand::Export(args) => export(args).await,
    }
}

async fn export(args: ExportArgs) -> anyhow::Result<std::process::ExitCode> {
    let signed = Signed::open().await?;
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair(
        "format",
        match args.format {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        },
    );
    for (name, value) in [
        ("from", &args.from),
        ("to", &args.to),
        ("record", &args.record),
        ("channel", &args.channel),
        ("outcome", &args.outcome),
    ] {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    let path = format!("/api/v1/logs/export?{}", query.finish());
    let mut response = signed.stream(&path).await?;
    let to_file = args.output.as_ref().filter(|p| p.as_os_str() != "-");
    let mut out: Box<dyn Write> = match to_file {
        Some(file) => Box::new(std::io::BufWriter::new(create(file, args.force)?)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let progress = progress();
    let (mut bytes, mut lines) = (0u64, 0u64);
    while let Some(chunk) = response
        .chunk()
        .await
        .context("the export stopped before its end; the output is incomplete")?
    {
        out.write_all(&chunk).context("cannot write the export")?;
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|b| **b == b'\n').count() as u64;
        progress.set_position(bytes);
        progress.set_message(format!("{lines} lines"));
    }
    out.flush().context("cannot write the export")?;
    progress.finish_and_clear();
    let events = match args.format {
        Format::Jsonl => lines,
        Format::Csv => lines.saturating_sub(1),
    };
    if let Some(file) = to_file {
        eprintln!("{events} events written to {}", file.display());
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The output file, readable by its owner only; an existing file is kept unless `force`.
fn create(path: &std::path::Path, force: bool) -> anyhow::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(file) => Ok(file),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => bail!(
            "{} exists; choose another file, or add --force to replace it",
            path.display()
        ),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// Bytes and lines so far on stderr, when it is a terminal (the total is not known ahead).
fn progress() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {binary_bytes} · {msg} · {elapsed}")
    {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

impl Signed {
    async fn stream(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        self.api
            .stream(path, Auth::bearer(&self.session.token))
            .await
    }
}
