//! Operator commands for the master keyring: `brine admin add-master-key`,
//! `master-key-status`, `rotate-master-key` and `retire-master-key` (docs/operations.md,
//! "Master-key rotation").

use std::process::ExitCode;

use anyhow::Context;
use brine_crypto::Keyring;
use brine_server::Settings;
use brine_server::master_key::{self, KEY_FILE, KEYRING_FILE, Registered};
use brine_server::rotation::{self, left_over};
use brine_store::Store;
use clap::Args;

use crate::admin::{DatabaseArgs, redact};

/// The database, and the keyring the way `brine serve` finds it: `BRINE_MASTER_KEYS`, else
/// `BRINE_MASTER_KEY`, else `DATA_DIR/master.keyring`, else `DATA_DIR/master.key`.
/// Keys are read from the environment or the data directory only, never from flags (which
/// other users of the machine could read in the process list).
#[derive(Args)]
pub struct KeyringArgs {
    #[command(flatten)]
    database: DatabaseArgs,
}

impl KeyringArgs {
    fn settings(&self) -> Settings {
        Settings {
            data_dir: self.database.data_dir().to_path_buf(),
            master_key: std::env::var("BRINE_MASTER_KEY").ok().map(Into::into),
            master_keys: std::env::var("BRINE_MASTER_KEYS").ok().map(Into::into),
            ..Settings::default()
        }
    }

    async fn open(&self) -> anyhow::Result<(std::sync::Arc<dyn Store>, Keyring)> {
        let url = self.database.url()?;
        let store = brine_store::connect(&url)
            .await
            .with_context(|| format!("cannot open {}", redact(&url)))?;
        let ring = match master_key::load(&self.settings(), store.as_ref(), false).await {
            Ok(ring) => ring,
            Err(e) => {
                store.close().await;
                return Err(e.into());
            }
        };
        Ok((store, ring))
    }
}

#[derive(Args)]
pub struct AddKeyArgs {
    #[command(flatten)]
    keys: KeyringArgs,
    /// Make the new version current at once (on a single node; with several nodes, first give
    /// every node the new version, then make it current everywhere).
    #[arg(long)]
    make_current: bool,
    /// Print the new keyring (for BRINE_MASTER_KEYS) on stdout instead of writing
    /// DATA_DIR/master.keyring.
    #[arg(long)]
    print: bool,
}

/// Generates the next version's key and adds it to the keyring.
pub async fn add(args: AddKeyArgs) -> anyhow::Result<ExitCode> {
    let (store, ring) = args.keys.open().await?;
    store.close().await;
    let bigger = ring.with_new_key(args.make_current)?;
    let version = bigger.versions().max().unwrap_or(1);
    if args.print {
        // One line, as BRINE_MASTER_KEYS takes it.
        let text = bigger.to_text();
        let line: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.trim())
            .collect();
        println!("{}", line.join(",").replace(": ", ":"));
        eprintln!(
            "added master key version {version}{}; set BRINE_MASTER_KEYS on every node to the \
             line above, and keep a copy somewhere safe apart from the database's backups",
            if args.make_current { " (current)" } else { "" }
        );
        return Ok(ExitCode::SUCCESS);
    }
    anyhow::ensure!(
        std::env::var_os("BRINE_MASTER_KEYS").is_none()
            && std::env::var_os("BRINE_MASTER_KEY").is_none(),
        "the keyring comes from the environment here; pass --print and put the new keyring in \
         BRINE_MASTER_KEYS"
    );
    let dir = args.keys.database.data_dir();
    let path = dir.join(KEYRING_FILE);
    master_key::write_keyring_file(&path, &bigger)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let also = if dir.join(KEY_FILE).exists() {
        format!(
            " ({} now also holds version 1 from {KEY_FILE}, which is no longer read)",
            path.display()
        )
    } else {
        String::new()
    };
    println!(
        "added master key version {version} to {}{also}; current is version {}. Back the \
         keyring up now, apart from the database's backups; restart brine to use it",
        path.display(),
        bigger.current().version()
    );
    Ok(ExitCode::SUCCESS)
}

/// Which versions the database knows, and how many values each still holds.
pub async fn status(args: KeyringArgs) -> anyhow::Result<ExitCode> {
    let url = args.database.url()?;
    let store = brine_store::connect(&url)
        .await
        .with_context(|| format!("cannot open {}", redact(&url)))?;
    let known = Registered::read(store.as_ref()).await?;
    let usage = rotation::usage(store.as_ref()).await?;
    store.close().await;
    for version in known.checks.keys() {
        let state = if known.retired.contains(version) {
            "retired"
        } else {
            "registered"
        };
        let held: Vec<String> = usage
            .iter()
            .filter_map(|(field, counts)| {
                counts
                    .iter()
                    .find(|c| c.key_version == i64::from(*version))
                    .map(|c| format!("{} {}", c.count, field.label()))
            })
            .collect();
        println!(
            "version {version}: {state}; {}",
            if held.is_empty() {
                "nothing under it".to_owned()
            } else {
                held.join(", ")
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct RotateArgs {
    #[command(flatten)]
    keys: KeyringArgs,
    /// Values re-wrapped per batch.
    #[arg(long, default_value_t = 500)]
    batch: u32,
    /// Stop after this many values (run again to go on).
    #[arg(long)]
    limit: Option<u64>,
}

/// Re-wraps every server slot and re-seals every value sealed under a subkey of the master key
/// under the keyring's current version. Safe to stop and run again.
pub async fn rotate(args: RotateArgs) -> anyhow::Result<ExitCode> {
    let (store, ring) = args.keys.open().await?;
    let current = ring.current().version();
    let before = rotation::usage(store.as_ref()).await?;
    let total = u64::try_from(left_over(&before, current)).unwrap_or(0);
    eprintln!(
        "re-wrapping {total} value{} under master key version {current} (payloads are not \
         re-encrypted)",
        if total == 1 { "" } else { "s" }
    );
    let bar = crate::admin::progress_bar(total, "{bar:40} {pos}/{len} {msg}");
    let outcome = rotation::rotate(
        store.as_ref(),
        &ring,
        args.batch,
        args.limit,
        |field, progress| {
            bar.set_message(field.label());
            bar.set_position(progress.resealed + progress.raced + progress.failed);
        },
    )
    .await;
    let after = rotation::usage(store.as_ref()).await;
    store.close().await;
    bar.finish_and_clear();
    let outcome = outcome?;
    let left = left_over(&after?, current);
    let p = outcome.progress;
    println!(
        "re-wrapped {} value{} under version {current}; {left} still under older versions",
        p.resealed,
        if p.resealed == 1 { "" } else { "s" }
    );
    if p.raced > 0 {
        println!(
            "{} changed while being re-wrapped (an owner's edit writes the current version)",
            p.raced
        );
    }
    if p.failed > 0 {
        println!(
            "{} could not be opened (see the errors above): their version may be missing from \
             the keyring",
            p.failed
        );
    }
    if left == 0 {
        let older: Vec<u32> = ring.versions().filter(|v| *v != current).collect();
        if !older.is_empty() {
            println!(
                "done: nothing needs version{} {} any more; retire with `brine admin \
                 retire-master-key VERSION`",
                if older.len() > 1 { "s" } else { "" },
                master_key::list(&older)
            );
        } else {
            println!("done");
        }
        Ok(ExitCode::SUCCESS)
    } else {
        if outcome.stopped_at_limit {
            println!("stopped at --limit; run the command again to go on");
        }
        Ok(ExitCode::from(if p.failed > 0 { 1 } else { 3 }))
    }
}

#[derive(Args)]
pub struct RetireArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    /// The version to retire.
    version: u32,
}

/// Marks a version retired, once nothing is under it any more.
pub async fn retire(args: RetireArgs) -> anyhow::Result<ExitCode> {
    let url = args.database.url()?;
    let store = brine_store::connect(&url)
        .await
        .with_context(|| format!("cannot open {}", redact(&url)))?;
    let result = rotation::retire(store.as_ref(), args.version).await;
    store.close().await;
    if result? {
        println!(
            "retired master key version {}: remove it from every node's keyring; a node whose \
             current version it still is will refuse to start",
            args.version
        );
    } else {
        println!("master key version {} was retired already", args.version);
    }
    Ok(ExitCode::SUCCESS)
}
