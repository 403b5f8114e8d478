//! `brine handoff`: hand one value to someone until an end date — a secure page for the person,
//! a separate X-API-Key for their code — then end it and rotate the key at its provider.

use std::process::ExitCode;

use anyhow::Context;
use brine_proto::{CreateHandoff, HandoffCreated, HandoffList, HandoffView, Timestamp};
use clap::{Args, Subcommand};
use reqwest::Method;
use time::OffsetDateTime;
use uuid::Uuid;

use super::input;
use super::records::{Signed, decode, parse_time, print_json, time_text};
use super::share::parse_duration;
use super::table::{clean, render, shorten};

#[derive(Subcommand)]
pub enum HandoffCommand {
    /// Start a handoff from one value (read from stdin, or a hidden prompt; never an argument).
    ///
    /// Prints the secure page's link and its generated password (send them over different
    /// channels) and the X-API-Key for the person's code. All three are shown once.
    Create(CreateArgs),
    /// Your handoffs, with any to-do left by one that ended.
    List {
        #[arg(long)]
        json: bool,
    },
    /// One handoff: its records, their last use, its to-do.
    Show {
        id: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// End a handoff now: both records stop answering at once, and the to-do "rotate the
    /// upstream key at the provider" is raised.
    End {
        id: Uuid,
        #[arg(long)]
        json: bool,
    },
    /// Tick an ended handoff's to-do, once the key has been rotated at its provider.
    Done {
        id: Uuid,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct CreateArgs {
    /// For whom, e.g. "Ana (contractor)". The two records are named after it.
    #[arg(long)]
    name: String,
    /// When it ends: a duration from now (30m, 12h, 14d) or an RFC 3339 time.
    #[arg(long, value_name = "WHEN", value_parser = parse_end)]
    ends: Timestamp,
    /// Print the server's JSON answer (with the password and the key) instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_end(text: &str) -> Result<Timestamp, String> {
    match parse_duration(text) {
        Ok(d) => Ok(Timestamp(OffsetDateTime::now_utc() + d)),
        Err(_) => parse_time(text)
            .map_err(|_| format!("'{text}' is neither a duration like 14d nor an RFC 3339 time")),
    }
}

pub async fn run(command: HandoffCommand) -> anyhow::Result<ExitCode> {
    let signed = Signed::open().await?;
    match command {
        HandoffCommand::Create(args) => create(&signed, args).await?,
        HandoffCommand::List { json } => list(&signed, json).await?,
        HandoffCommand::Show { id, json } => {
            let answer = signed
                .call(Method::GET, &format!("/api/v1/handoffs/{id}"), None)
                .await?;
            print_view(&signed, answer, json)?;
        }
        HandoffCommand::End { id, json } => {
            let answer = signed
                .call(Method::POST, &format!("/api/v1/handoffs/{id}/end"), None)
                .await?;
            print_view(&signed, answer, json)?;
        }
        HandoffCommand::Done { id, json } => {
            let answer = signed
                .call(Method::POST, &format!("/api/v1/handoffs/{id}/done"), None)
                .await?;
            print_view(&signed, answer, json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn create(signed: &Signed, args: CreateArgs) -> anyhow::Result<()> {
    let value = input::secret_value("Value to hand over")?;
    let body = CreateHandoff {
        name: args.name,
        data: value.expose().to_owned(),
        ends_at: args.ends,
    };
    let body = serde_json::to_value(body).context("cannot encode the handoff")?;
    drop(value);
    let answer = signed
        .call(Method::POST, "/api/v1/handoffs", Some(&body))
        .await?;
    if args.json {
        return print_json(&answer);
    }
    let created: HandoffCreated = decode(answer)?;
    let h = &created.handoff;
    let base = signed.base();
    println!(
        "Handoff {} for {}, ends {}",
        h.id,
        clean(&h.name),
        time_text(h.ends_at)
    );
    println!();
    println!("For the person — send these two over different channels (say, the link by email");
    println!("and the password by text message), so that neither alone opens the page:");
    if let Some(page) = &h.page_record {
        println!("  Link:      {base}{}", page.path);
    }
    println!("  Password:  {}", created.page_password);
    println!();
    println!("For their code:");
    if let Some(code) = &h.code_record {
        println!("  Read URL:  {base}{}", code.path);
    }
    println!("  X-API-Key: {}", created.api_key);
    println!();
    println!("The password and the key are shown only now. Both stop working at the end date;");
    println!("end it earlier with: brine handoff end {}", h.id);
    Ok(())
}

async fn list(signed: &Signed, json: bool) -> anyhow::Result<()> {
    let answer = signed.call(Method::GET, "/api/v1/handoffs", None).await?;
    if json {
        return print_json(&answer);
    }
    let HandoffList { handoffs } = decode(answer)?;
    if handoffs.is_empty() {
        println!("No handoffs yet. Start one with `brine handoff create`.");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = handoffs
        .iter()
        .map(|h| {
            vec![
                h.id.to_string(),
                shorten(&clean(&h.name), 32),
                state(h).to_owned(),
                time_text(h.ended_at.unwrap_or(h.ends_at)),
                todo_text(h).to_owned(),
            ]
        })
        .collect();
    let head = ["ID", "FOR", "STATE", "ENDS/ENDED", "TO DO"];
    print!("{}", render(&head, &rows));
    for h in handoffs.iter().filter(|h| todo_open(h)) {
        eprintln!(
            "to do: rotate the upstream key at the provider (handoff for {} ended); then run \
             `brine handoff done {}`",
            clean(&h.name),
            h.id
        );
    }
    Ok(())
}

fn state(h: &HandoffView) -> &'static str {
    match h.ended_by.as_deref() {
        None => "running",
        Some("owner") => "ended early",
        Some(_) => "ended",
    }
}

fn todo_open(h: &HandoffView) -> bool {
    h.todo.as_ref().is_some_and(|t| t.done_at.is_none())
}

fn todo_text(h: &HandoffView) -> &'static str {
    match &h.todo {
        None => "-",
        Some(t) if t.done_at.is_none() => "rotate the upstream key",
        Some(_) => "done",
    }
}

fn print_view(signed: &Signed, answer: serde_json::Value, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&answer);
    }
    let h: HandoffView = decode(answer)?;
    let base = signed.base();
    println!("Handoff:  {} for {}", h.id, clean(&h.name));
    println!("State:    {}", state(&h));
    match h.ended_at {
        Some(at) => println!("Ended:    {}", time_text(at)),
        None => println!("Ends:     {}", time_text(h.ends_at)),
    }
    for (what, record) in [("Page", &h.page_record), ("Code", &h.code_record)] {
        match record {
            Some(r) => println!(
                "{what}:     {base}{} ({}; last used {})",
                r.path,
                r.status.as_str(),
                r.last_used_at.map_or_else(|| "never".to_owned(), time_text)
            ),
            None => println!("{what}:     (deleted)"),
        }
    }
    if let Some(todo) = &h.todo {
        match todo.done_at {
            None => {
                println!(
                    "To do:    {} (whoever saw the key may have kept a copy)",
                    todo.task
                );
                println!("          then run: brine handoff done {}", h.id);
            }
            Some(at) => println!("To do:    done {}", time_text(at)),
        }
    }
    Ok(())
}
