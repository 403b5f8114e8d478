//! `brine intake`: ask someone for a secret through a one-time link (an intake link), list your
//! links, revoke one.

use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

use anyhow::{Context, bail};
use brine_proto::{CreateIntake, IntakeCreated, IntakeInto, IntakeList, Timestamp};
use clap::{Args, Subcommand};
use reqwest::Method;
use time::OffsetDateTime;
use uuid::Uuid;

use super::input::Secret;
use super::read::resolve;
use super::records::{Signed, print_json, time_text};
use super::share::parse_duration;
use super::table::{clean, render, shorten};

#[derive(Subcommand)]
pub enum IntakeCommand {
    /// Make a one-time link on which someone sends you a secret, without an account.
    ///
    /// By default the value becomes a new private credential; its X-API-Key is printed now,
    /// once, and opens the value as soon as it arrives. With --into-bridge, the value becomes a
    /// header of one of your bridges instead, e.g.
    /// --into-bridge OpenAI --header Authorization --template 'Bearer {{value}}'.
    /// The link is printed once: brine keeps only its hash.
    Create(CreateArgs),
    /// Your intake links: open, used, expired and revoked.
    List {
        /// Print the server's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an open link: it stops working at once.
    Revoke {
        /// The link's id (from `brine intake list`).
        id: Uuid,
    },
}

#[derive(Args)]
pub struct CreateArgs {
    /// What you ask for, shown on the link's page (e.g. "the staging database URL").
    #[arg(long = "for", value_name = "TEXT")]
    asked_for: String,
    /// The new credential's name (default: what you ask for).
    #[arg(long, conflicts_with = "into_bridge")]
    name: Option<String>,
    /// Ask for a password the person must type before sending (asked twice on the terminal,
    /// or read from the first line of stdin). Send it apart from the link.
    #[arg(long)]
    password_prompt: bool,
    /// How long the link works: a number with s, m, h or d (e.g. 7d, 12h).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    expires: Option<time::Duration>,
    /// Put the value into a header of this bridge (its name or uuid) instead of a new credential.
    #[arg(long, value_name = "BRIDGE", requires = "template")]
    into_bridge: Option<String>,
    /// With --into-bridge: the header to set.
    #[arg(long, default_value = "Authorization", requires = "into_bridge")]
    header: String,
    /// With --into-bridge: the header's value, with {{value}} where the value goes.
    #[arg(long, requires = "into_bridge")]
    template: Option<String>,
    /// Print the server's JSON answer (the link and any key are in it).
    #[arg(long)]
    json: bool,
}

/// The link's password: asked twice on a terminal, else the first line of stdin.
fn link_password() -> anyhow::Result<Secret> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = rpassword::prompt_password("Link password (input hidden): ")
            .context("cannot read the password")?;
        let again = rpassword::prompt_password("Link password (again): ")
            .context("cannot read the password")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        bail!("no password given");
    }
    Ok(Secret::from(password))
}

async fn create(signed: &Signed, args: CreateArgs) -> anyhow::Result<()> {
    let password = args.password_prompt.then(link_password).transpose()?;
    let into = match (&args.into_bridge, args.template) {
        (Some(bridge), Some(template)) => IntakeInto::BridgeHeader {
            bridge: resolve(&signed.api, &signed.session.token, bridge).await?,
            header: args.header.clone(),
            template,
        },
        _ => IntakeInto::Credential { name: args.name },
    };
    let body = CreateIntake {
        asked_for: args.asked_for,
        password: password.as_ref().map(|p| p.expose().to_owned()),
        expires_at: args
            .expires
            .map(|d| Timestamp(OffsetDateTime::now_utc() + d)),
        into,
    };
    let body = serde_json::to_value(body).context("cannot encode the link")?;
    drop(password);
    let answer = signed
        .call(Method::POST, "/api/v1/intake", Some(&body))
        .await?;
    if args.json {
        return print_json(&answer);
    }
    let made: IntakeCreated =
        serde_json::from_value(answer).context("the server's answer has an unexpected shape")?;
    println!("Link:      {}", made.url);
    match (&made.link.into, &made.api_key) {
        (IntakeInto::Credential { name }, Some(key)) => {
            println!(
                "Record:    {} ({})",
                made.link.record,
                clean(name.as_deref().unwrap_or(""))
            );
            println!("X-API-Key: {key}");
            println!();
            println!("The key is shown only now: store it where your code will read it. It opens");
            println!("the value once the person has sent it through the link.");
        }
        (IntakeInto::BridgeHeader { header, .. }, _) => {
            println!(
                "Into:      header {} of bridge {}",
                clean(header),
                made.link.record
            );
        }
        _ => {}
    }
    println!();
    println!(
        "The link is shown only now and works once. Send it to the person{}.",
        if made.link.has_password {
            ", and the password through another channel"
        } else {
            ""
        }
    );
    println!("See whether it was used: brine intake list");
    Ok(())
}

async fn list(signed: &Signed, json: bool) -> anyhow::Result<()> {
    let answer = signed.call(Method::GET, "/api/v1/intake", None).await?;
    if json {
        return print_json(&answer);
    }
    let IntakeList { links } =
        serde_json::from_value(answer).context("the server's answer has an unexpected shape")?;
    if links.is_empty() {
        println!("No intake links yet. Make one with `brine intake create --for TEXT`.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = links
        .iter()
        .map(|l| {
            let into = match &l.into {
                IntakeInto::Credential { .. } => format!("credential {}", l.record),
                IntakeInto::BridgeHeader { header, .. } => {
                    format!("bridge {} header {}", l.record, clean(header))
                }
            };
            vec![
                l.id.to_string(),
                shorten(&clean(&l.asked_for), 40),
                into,
                l.state.clone(),
                time_text(l.created_at),
                l.expires_at.map_or_else(|| "never".to_owned(), time_text),
            ]
        })
        .collect();
    let head = ["ID", "ASKED FOR", "INTO", "STATE", "CREATED", "EXPIRES"];
    print!("{}", render(&head, &rows));
    Ok(())
}

pub async fn run(command: IntakeCommand) -> anyhow::Result<ExitCode> {
    let signed = Signed::open().await?;
    match command {
        IntakeCommand::Create(args) => create(&signed, args).await?,
        IntakeCommand::List { json } => list(&signed, json).await?,
        IntakeCommand::Revoke { id } => {
            let answer = signed
                .call(Method::DELETE, &format!("/api/v1/intake/{id}"), None)
                .await?;
            println!(
                "Revoked: {} (state: {})",
                clean(answer["asked_for"].as_str().unwrap_or_default()),
                clean(answer["state"].as_str().unwrap_or_default())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
