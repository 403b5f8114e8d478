//! `brine bridges`: make, inspect, change and try bridges from the terminal.
//!
//! A bridge's upstream headers hold its API key, so they never come from the command line
//! (where they would stay in the shell's history): `create` reads the bridge from a JSON or TOML
//! file, and `set` reads a header's value from stdin or a hidden prompt.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use super::input;
use super::records::{RecordRef, Signed};

#[derive(Subcommand)]
pub enum BridgesCommand {
    /// Make a bridge from a file: a JSON or TOML object with `name`, `access` (default public)
    /// and `bridge` (url, headers, allowed_origins, params, ...), as the API takes it.
    ///
    /// Example bridge.toml:  name = "Weather"
    ///                        [bridge]
    ///                        url = "https://api.example.com/v1/current.json?key=KEY&q={{city}}"
    ///                        params = ["city"]
    ///                        allowed_origins = ["https://app.example.com"]
    ///
    /// Or from flags: brine bridges create --name Weather --url URL --param city
    ///                --origin https://app.example.com --header Authorization
    /// (each --header's value is read from stdin, one line per header, or a hidden prompt).
    Create(CreateArgs),
    /// Show a bridge's settings (its URL and headers stay hidden; `brine records reveal` shows
    /// them).
    Show {
        /// The bridge's uuid or name.
        #[arg(value_name = "BRIDGE")]
        uuid: RecordRef,
    },
    /// Change one setting and keep the rest: `brine bridges set UUID allowed_methods '["GET","POST"]'`.
    ///
    /// VALUE is JSON when it reads as JSON, else text. `header NAME` replaces one upstream header
    /// with a value read from stdin or a hidden prompt; `header NAME --remove` removes it.
    Set(SetArgs),
    /// Call the bridge as a caller would (the dashboard's playground), and print the answer.
    Try(TryArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// The JSON (.json) or TOML (.toml) file.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["name", "url"], required_unless_present = "url")]
    file: Option<PathBuf>,
    /// The bridge's name.
    #[arg(long, requires = "url")]
    name: Option<String>,
    /// The upstream URL, with optional {{param}} placeholders.
    #[arg(long, requires = "name")]
    url: Option<String>,
    /// A {{param}} the caller fills. Repeat for more.
    #[arg(long = "param", value_name = "NAME")]
    params: Vec<String>,
    /// A browser origin allowed to call it. Repeat for more.
    #[arg(long = "origin", value_name = "ORIGIN")]
    origins: Vec<String>,
    /// A method allowed (default GET). Repeat for more.
    #[arg(long = "method", value_name = "METHOD")]
    methods: Vec<String>,
    /// An upstream header to add; its value is read from stdin (a line per header, in order)
    /// or a hidden prompt, never from the command line. Repeat for more.
    #[arg(long = "header", value_name = "NAME")]
    headers: Vec<String>,
    /// `public` (default: anyone with its address calls it) or `private` (callers need its
    /// X-API-Key).
    #[arg(long, default_value = "public")]
    access: String,
}

#[derive(Args)]
pub struct SetArgs {
    /// The bridge's uuid or name.
    #[arg(value_name = "BRIDGE")]
    uuid: RecordRef,
    /// The setting: url, allowed_methods, allowed_origins, allowed_paths, params, timeout_ms,
    /// total_timeout_ms, fallback_urls, ... or `header`.
    field: String,
    /// Its new value (for `header`: the header's name).
    value: String,
    /// With `header`: remove that header.
    #[arg(long)]
    remove: bool,
}

#[derive(Args)]
pub struct TryArgs {
    /// The bridge's uuid or name.
    #[arg(value_name = "BRIDGE")]
    uuid: RecordRef,
    /// The method (default GET).
    #[arg(long, short = 'X')]
    method: Option<String>,
    /// A path below the bridge's URL.
    #[arg(long, default_value = "")]
    path: String,
    /// A query parameter, NAME=VALUE. Repeat for more.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// A request body (JSON when it reads as JSON, else text).
    #[arg(long)]
    body: Option<String>,
    /// A GJSON path picking part of a JSON answer.
    #[arg(long)]
    select: Option<String>,
}

pub async fn run(command: BridgesCommand) -> anyhow::Result<ExitCode> {
    let signed = Signed::open().await?;
    match command {
        BridgesCommand::Create(args) => create(&signed, args).await,
        BridgesCommand::Show { uuid } => show(&signed, signed.resolve(&uuid).await?).await,
        BridgesCommand::Set(args) => set(&signed, args).await,
        BridgesCommand::Try(args) => try_call(&signed, args).await,
    }?;
    Ok(ExitCode::SUCCESS)
}

/// A bridge's spec from a JSON or TOML file, by its extension.
fn read_spec(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let spec: Value = match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => {
            use figment::providers::Format;
            figment::Figment::from(figment::providers::Toml::string(&text))
                .extract()
                .with_context(|| format!("{} is not valid TOML", path.display()))?
        }
        _ => serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?,
    };
    if !spec.get("bridge").is_some_and(Value::is_object) {
        bail!(
            "{} has no `bridge` table (url, headers, ...)",
            path.display()
        );
    }
    Ok(spec)
}

/// A bridge's spec from flags, header values read from stdin or prompts.
fn spec_from_flags(args: CreateArgs) -> anyhow::Result<Value> {
    let mut headers = serde_json::Map::new();
    let from_pipe = !std::io::IsTerminal::is_terminal(&std::io::stdin());
    for name in &args.headers {
        let value = if from_pipe {
            let mut line = String::new();
            std::io::BufRead::read_line(&mut std::io::stdin().lock(), &mut line)
                .context("cannot read a header value from stdin")?;
            let value = line.trim_end_matches(['\r', '\n']).to_owned();
            if value.is_empty() {
                bail!("no value on stdin for header {name}");
            }
            value
        } else {
            input::secret_value(&format!("Value of {name}"))?
                .expose()
                .to_owned()
        };
        headers.insert(name.clone(), json!(value));
    }
    let mut bridge = json!({"url": args.url, "headers": headers});
    for (field, values) in [
        ("params", &args.params),
        ("allowed_origins", &args.origins),
        ("allowed_methods", &args.methods),
    ] {
        if !values.is_empty() {
            bridge[field] = json!(values);
        }
    }
    Ok(json!({"name": args.name, "access": args.access, "bridge": bridge}))
}

async fn create(signed: &Signed, args: CreateArgs) -> anyhow::Result<()> {
    let mut spec = match &args.file {
        Some(file) => read_spec(file)?,
        None => spec_from_flags(args)?,
    };
    let object = spec
        .as_object_mut()
        .ok_or_else(|| anyhow!("the bridge's file must hold an object"))?;
    object.insert("type".into(), json!("bridge"));
    object.entry("access").or_insert(json!("public"));
    let answer = signed
        .call(Method::POST, "/api/v1/records", Some(&spec))
        .await?;
    let record = &answer["record"];
    let uuid = record["uuid"].as_str().unwrap_or_default();
    println!(
        "Created bridge \"{}\".",
        record["name"].as_str().unwrap_or_default()
    );
    println!("  uuid:     {uuid}");
    println!("  call it:  {}/r/{uuid}", signed.base());
    if let Some(key) = answer["api_key"].as_str() {
        println!("  X-API-Key: {key}");
        println!("The X-API-Key is shown once — store it now.");
    }
    Ok(())
}

async fn show(signed: &Signed, uuid: Uuid) -> anyhow::Result<()> {
    let record = signed
        .call(Method::GET, &format!("/api/v1/records/{uuid}"), None)
        .await?;
    let Some(bridge) = record.get("bridge").filter(|b| b.is_object()) else {
        bail!("record {uuid} is not a bridge");
    };
    println!("{}", record["name"].as_str().unwrap_or_default());
    println!("  call it:  {}/r/{uuid}", signed.base());
    println!(
        "  access:   {}",
        record["access"].as_str().unwrap_or_default()
    );
    let text = serde_json::to_string_pretty(bridge).context("cannot print the bridge")?;
    for line in text.lines() {
        println!("  {line}");
    }
    Ok(())
}

async fn set(signed: &Signed, args: SetArgs) -> anyhow::Result<()> {
    let uuid = signed.resolve(&args.uuid).await?;
    let change = if args.field == "header" {
        let value = if args.remove {
            Value::Null
        } else {
            let secret = input::secret_value(&format!("Value of {}", args.value))?;
            json!(secret.expose())
        };
        json!({"headers": {args.value.clone(): value}})
    } else {
        if args.remove {
            bail!("--remove is for `header NAME`");
        }
        let value = serde_json::from_str(&args.value).unwrap_or_else(|_| json!(args.value));
        json!({args.field.clone(): value})
    };
    // A JSON merge patch of the bridge: every other setting stays as it is.
    signed
        .call(
            Method::PATCH,
            &format!("/api/v1/records/{uuid}"),
            Some(&json!({"bridge": change})),
        )
        .await?;
    match (args.field.as_str(), args.remove) {
        ("header", true) => println!("Removed header {} of {uuid}.", args.value),
        ("header", false) => println!("Set header {} of {uuid}.", args.value),
        (field, _) => println!("Set {field} of {uuid}."),
    }
    Ok(())
}

async fn try_call(signed: &Signed, args: TryArgs) -> anyhow::Result<()> {
    let uuid = signed.resolve(&args.uuid).await?;
    let mut params = BTreeMap::new();
    for param in &args.params {
        let (name, value) = param
            .split_once('=')
            .ok_or_else(|| anyhow!("--param {param:?}: expected NAME=VALUE"))?;
        params.insert(name.to_owned(), value.to_owned());
    }
    let body = args
        .body
        .as_deref()
        .map(|b| serde_json::from_str(b).unwrap_or_else(|_| json!(b)));
    let call = brine_proto::TryCall {
        method: args.method,
        path: args.path,
        params,
        headers: BTreeMap::new(),
        body,
        select: args.select,
    };
    let call = serde_json::to_value(call).context("cannot encode the call")?;
    let answer = signed
        .call(
            Method::POST,
            &format!("/api/v1/records/{uuid}/try"),
            Some(&call),
        )
        .await?;
    let result: brine_proto::TryResult = serde_json::from_value(answer)
        .map_err(|_| anyhow!("the server's answer has an unexpected shape"))?;
    eprintln!(
        "{} in {} ms (upstream {})",
        result.status, result.duration_ms, result.hop
    );
    match &result.body {
        Value::String(text) => println!("{text}"),
        other => println!(
            "{}",
            serde_json::to_string_pretty(other).context("cannot print the answer")?
        ),
    }
    Ok(())
}
