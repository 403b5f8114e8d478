//! `brine tokens`: service tokens for CI and servers — make one scoped to named records, list
//! them, revoke one.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use brine_proto::{
    CreateServiceToken, NewServiceToken, ServiceTokenList, ServiceTokenView, Timestamp,
};
use clap::Subcommand;
use reqwest::Method;
use time::OffsetDateTime;
use uuid::Uuid;

use super::read::resolve;
use super::records::{KeyFile, Signed, decode, print_json, time_text};
use super::share::parse_duration;
use super::table::{clean, render};

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Make a read-only token for CI or a server, scoped to named records.
    ///
    /// Example: brine tokens create deploy --records stripe-test,db-url --expires 90d
    ///
    /// The token is printed once (or written to --token-file). Give it to the job as
    /// BRINE_SERVICE_TOKEN: `brine get`, `brine run` and `brine env` then read the records it
    /// names, by name or uuid; or send it as the X-API-Key of GET /r/{uuid}.
    Create {
        /// A name you will recognise in the records' events (unique among your tokens).
        name: String,
        /// The records it may read: names or uuids, separated by commas.
        #[arg(long, value_delimiter = ',', required = true, value_name = "RECORDS")]
        records: Vec<String>,
        /// How long it works: 30m, 12h, 90d... (at most 366d).
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        expires: time::Duration,
        /// Write the token to this new file (mode 0600; never over an existing file) instead
        /// of printing it.
        #[arg(long, value_name = "PATH")]
        token_file: Option<PathBuf>,
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// List your service tokens: what each reads, when it expires, when it was last used.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token (by name or id): it stops working at once.
    Revoke {
        /// The token's name or id.
        token: String,
    },
}

pub async fn run(command: TokensCommand) -> anyhow::Result<ExitCode> {
    let signed = Signed::open().await?;
    match command {
        TokensCommand::Create {
            name,
            records,
            expires,
            token_file,
            json,
        } => create(&signed, name, &records, expires, token_file, json).await?,
        TokensCommand::List { json } => list(&signed, json).await?,
        TokensCommand::Revoke { token } => revoke(&signed, &token).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn create(
    signed: &Signed,
    name: String,
    records: &[String],
    expires: time::Duration,
    token_file: Option<PathBuf>,
    json: bool,
) -> anyhow::Result<()> {
    let mut uuids = Vec::with_capacity(records.len());
    for record in records.iter().map(|r| r.trim()).filter(|r| !r.is_empty()) {
        uuids.push(resolve(&signed.api, &signed.session.token, record).await?);
    }
    let key_file = token_file.as_deref().map(KeyFile::create).transpose()?;
    let body = CreateServiceToken {
        name,
        records: uuids,
        expires_at: Timestamp(OffsetDateTime::now_utc() + expires),
    };
    let answer = signed
        .call(
            Method::POST,
            "/api/v1/tokens",
            Some(&serde_json::to_value(&body)?),
        )
        .await;
    let answer = match (answer, key_file.as_ref()) {
        (Ok(answer), _) => answer,
        (Err(e), Some(file)) => {
            file.discard();
            return Err(e);
        }
        (Err(e), None) => return Err(e),
    };
    if json && key_file.is_none() {
        return print_json(&answer);
    }
    let NewServiceToken {
        token,
        service_token,
    } = decode(answer)?;
    describe(&service_token);
    match key_file {
        Some(file) => {
            file.write(&token)?;
            println!(
                "The token is in {} (only you can read it); it is not shown again.",
                token_file.unwrap_or_default().display()
            );
        }
        None => {
            println!("Token (shown once; store it as BRINE_SERVICE_TOKEN in your CI's secrets):");
            println!("{token}");
        }
    }
    Ok(())
}

fn describe(token: &ServiceTokenView) {
    let names: Vec<String> = token.records.iter().map(|r| clean(&r.name)).collect();
    println!("Service token {:?} ({})", clean(&token.name), token.id);
    println!("  reads:   {}", names.join(", "));
    println!("  expires: {}", time_text(token.expires_at));
}

async fn list(signed: &Signed, json: bool) -> anyhow::Result<()> {
    let answer = signed.call(Method::GET, "/api/v1/tokens", None).await?;
    if json {
        return print_json(&answer);
    }
    let ServiceTokenList { tokens } = decode(answer)?;
    if tokens.is_empty() {
        println!(
            "No service tokens. Make one with `brine tokens create NAME --records ... --expires 90d`."
        );
        return Ok(());
    }
    let rows: Vec<Vec<String>> = tokens
        .iter()
        .map(|t| {
            vec![
                clean(&t.name),
                t.id.to_string(),
                t.records
                    .iter()
                    .map(|r| clean(&r.name))
                    .collect::<Vec<_>>()
                    .join(", "),
                if t.expired {
                    format!("expired {}", time_text(t.expires_at))
                } else {
                    time_text(t.expires_at)
                },
                t.last_used_at.map_or_else(|| "never".to_owned(), time_text),
            ]
        })
        .collect();
    print!(
        "{}",
        render(&["NAME", "ID", "READS", "EXPIRES", "LAST USED"], &rows)
    );
    Ok(())
}

async fn revoke(signed: &Signed, token: &str) -> anyhow::Result<()> {
    let id = match Uuid::try_parse(token) {
        Ok(id) => id,
        Err(_) => {
            let ServiceTokenList { tokens } =
                decode(signed.call(Method::GET, "/api/v1/tokens", None).await?)?;
            match tokens.iter().find(|t| t.name == token) {
                Some(found) => found.id,
                None => bail!("you have no service token named {token:?} (`brine tokens list`)"),
            }
        }
    };
    signed
        .call(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await?;
    println!("Revoked service token {id}: it stops working now.");
    Ok(())
}
