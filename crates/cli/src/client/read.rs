//! `brine get` and `brine run`: reading values at `/r/{uuid}` with an X-API-Key, or, for `get`,
//! as the signed-in owner.

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use reqwest::Method;
use uuid::Uuid;

use super::http::{Api, Auth, DEFAULT_SERVER};
use super::input::{self, API_KEY_ENV, Secret};
use super::session;

/// Where to read from, and with which key.
#[derive(Args)]
pub struct Source {
    /// The brine server's URL [default: the one you logged in to, else http://127.0.0.1:8080].
    #[arg(long, env = "BRINE_SERVER", value_name = "URL")]
    server: Option<String>,
    /// A file holding the record's X-API-Key (whitespace around it is ignored). Without it,
    /// the key comes from the BRINE_API_KEY environment variable, if set.
    #[arg(long, value_name = "FILE")]
    api_key_file: Option<PathBuf>,
}

impl Source {
    fn api(&self) -> anyhow::Result<Api> {
        let server = match &self.server {
            Some(server) => server.clone(),
            // A damaged or unreadable session file does not matter here: fall back quietly.
            None => match session::load_optional() {
                Ok(Some(session)) => session.server,
                _ => DEFAULT_SERVER.to_owned(),
            },
        };
        Api::new(&server)
    }

    fn default_key(&self) -> anyhow::Result<Option<Secret>> {
        input::api_key(self.api_key_file.as_deref())
    }
}

#[derive(Args)]
pub struct GetArgs {
    /// The record's uuid, or its name (names need `brine login`).
    record: String,
    #[command(flatten)]
    source: Source,
}

#[derive(Args)]
pub struct RunArgs {
    /// NAME=UUID: put record UUID's value in environment variable NAME. Repeat for more.
    /// Add @KEYFILE (NAME=UUID@path/to/key) to read that record's X-API-Key from a file.
    #[arg(long = "env", value_name = "NAME=UUID[@KEYFILE]", required = true, value_parser = parse_env_spec)]
    env: Vec<EnvSpec>,
    #[command(flatten)]
    source: Source,
    /// The command to run, after `--`, with its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

#[derive(Clone)]
struct EnvSpec {
    name: String,
    uuid: Uuid,
    key_file: Option<PathBuf>,
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_env_spec(spec: &str) -> Result<EnvSpec, String> {
    let (name, rest) = spec
        .split_once('=')
        .ok_or_else(|| "expected NAME=UUID or NAME=UUID@KEYFILE".to_owned())?;
    if !valid_env_name(name) {
        return Err(format!(
            "{name:?} is not a valid environment variable name (letters, digits and _, not \
             starting with a digit)"
        ));
    }
    let (uuid, key_file) = match rest.split_once('@') {
        Some((uuid, file)) if !file.is_empty() => (uuid, Some(PathBuf::from(file))),
        Some(_) => return Err("nothing after @: expected NAME=UUID@KEYFILE".to_owned()),
        None => (rest, None),
    };
    let uuid = Uuid::try_parse(uuid).map_err(|_| format!("{uuid:?} is not a record uuid"))?;
    Ok(EnvSpec {
        name: name.to_owned(),
        uuid,
        key_file,
    })
}

/// One record's value from `/r/{uuid}`.
async fn fetch(api: &Api, uuid: Uuid, key: Option<&Secret>) -> anyhow::Result<Secret> {
    let answer = api
        .call(Method::GET, &format!("/r/{uuid}"), Auth::read(key), None)
        .await?;
    match answer {
        serde_json::Value::Object(mut fields) => match fields.remove("data") {
            Some(serde_json::Value::String(data)) => Ok(Secret::from(data)),
            _ => bail!("the server's answer holds no value"),
        },
        _ => bail!("the server's answer holds no value"),
    }
}

/// The owner's session, when it is for the server asked for (or none was named).
fn owner_session(source: &Source) -> anyhow::Result<Option<(Api, session::Session)>> {
    let Some(session) = session::load_optional().ok().flatten() else {
        return Ok(None);
    };
    let api = Api::new(&session.server)?;
    match &source.server {
        Some(server) if super::http::normalize_server(server)? != api.base() => Ok(None),
        _ => Ok(Some((api, session))),
    }
}

/// A record named by uuid, or by name among the owner's records: exactly one must have it.
async fn resolve(api: &Api, token: &str, record: &str) -> anyhow::Result<Uuid> {
    if let Ok(uuid) = Uuid::try_parse(record) {
        return Ok(uuid);
    }
    let list = api
        .call(Method::GET, "/api/v1/records", Auth::bearer(token), None)
        .await?;
    let list: brine_proto::RecordList = serde_json::from_value(list)
        .map_err(|_| anyhow!("the server's answer has an unexpected shape"))?;
    let matching: Vec<_> = list.records.iter().filter(|r| r.name == record).collect();
    match matching.as_slice() {
        [one] => Ok(one.uuid),
        [] => bail!("you have no record named {record:?} (`brine records list` shows them)"),
        many => {
            let uuids: Vec<String> = many.iter().map(|r| r.uuid.to_string()).collect();
            bail!(
                "{} records are named {record:?}; give one of their uuids instead: {}",
                many.len(),
                uuids.join(", ")
            )
        }
    }
}

/// The value as its owner sees it (audited as the owner's reveal).
async fn reveal(api: &Api, token: &str, uuid: Uuid) -> anyhow::Result<Secret> {
    let answer = api
        .call(
            Method::GET,
            &format!("/api/v1/records/{uuid}/value"),
            Auth::bearer(token),
            None,
        )
        .await?;
    match answer.get("data") {
        Some(serde_json::Value::String(data)) => Ok(Secret::from(data.clone())),
        Some(_) => bail!("record {uuid} is a bridge: it has no single value to print"),
        None => bail!("the server's answer holds no value"),
    }
}

pub async fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    let key = args.source.default_key()?;
    let session = owner_session(&args.source)?;
    // A key reads as code does; without one, the owner's session reveals; else a public read.
    let value = match (key, session) {
        (Some(key), session) => {
            let uuid = match (Uuid::try_parse(&args.record), &session) {
                (Ok(uuid), _) => uuid,
                (Err(_), Some((api, s))) => resolve(api, &s.token, &args.record).await?,
                (Err(_), None) => bail!(
                    "{:?} is not a uuid; record names work once you are signed in (`brine login`)",
                    args.record
                ),
            };
            fetch(&args.source.api()?, uuid, Some(&key)).await?
        }
        (None, Some((api, s))) => {
            let uuid = resolve(&api, &s.token, &args.record).await?;
            reveal(&api, &s.token, uuid).await?
        }
        (None, None) => {
            let uuid = Uuid::try_parse(&args.record).map_err(|_| {
                anyhow!(
                    "{:?} is not a uuid; record names work once you are signed in (`brine login`)",
                    args.record
                )
            })?;
            fetch(&args.source.api()?, uuid, None).await?
        }
    };
    let mut stdout = std::io::stdout().lock();
    let newline: &[u8] = if stdout.is_terminal() { b"\n" } else { b"" };
    let written = stdout
        .write_all(value.expose().as_bytes())
        .and_then(|()| stdout.write_all(newline))
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // `brine get ... | head -c 4` closing the pipe early is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    for (i, spec) in args.env.iter().enumerate() {
        if args.env[..i].iter().any(|s| s.name == spec.name) {
            bail!("--env {} is given twice", spec.name);
        }
    }
    let api = args.source.api()?;
    let default_key = args.source.default_key()?;
    let mut values = Vec::with_capacity(args.env.len());
    for spec in &args.env {
        let failed = || format!("cannot fetch {} (record {})", spec.name, spec.uuid);
        let own_key = match &spec.key_file {
            Some(path) => Some(input::secret_file(path, "API key").with_context(failed)?),
            None => None,
        };
        let value = fetch(&api, spec.uuid, own_key.as_ref().or(default_key.as_ref()))
            .await
            .with_context(failed)?;
        if value.expose().contains('\0') {
            bail!(
                "the value of {} (record {}) contains a NUL byte, which an environment \
                 variable cannot hold",
                spec.name,
                spec.uuid
            );
        }
        values.push((spec.name.as_str(), value));
    }
    drop(api);

    let (program, program_args) = args
        .command
        .split_first()
        .ok_or_else(|| anyhow!("no command given after --"))?;
    let mut command = std::process::Command::new(program);
    command.args(program_args).env_remove(API_KEY_ENV);
    for (name, value) in &values {
        command.env(name, value.expose());
    }
    exec(command, program)
}

/// Becomes the command (same pid, so signals and the exit code are the command's own).
#[cfg(unix)]
fn exec(mut command: std::process::Command, program: &OsString) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let _ = std::io::stdout().flush();
    let error = command.exec();
    eprintln!("brine: cannot run {}: {error}", program.to_string_lossy());
    // The shell's conventions: 127 for "not found", 126 for "found but cannot run".
    Ok(ExitCode::from(
        if error.kind() == std::io::ErrorKind::NotFound {
            127
        } else {
            126
        },
    ))
}

#[cfg(not(unix))]
fn exec(mut command: std::process::Command, program: &OsString) -> anyhow::Result<ExitCode> {
    let status = command
        .status()
        .with_context(|| format!("cannot run {}", program.to_string_lossy()))?;
    let code = status.code().unwrap_or(1);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_specs_parse() {
        let id = "6f1c2a8e-0b7d-4f0e-9a51-2d3c4b5a6978";
        let spec = parse_env_spec(&format!("A_1={id}")).ok();
        assert!(spec.is_some_and(|s| s.name == "A_1" && s.key_file.is_none()));
        let spec = parse_env_spec(&format!("_B={id}@/tmp/k@x")).ok();
        assert!(spec.is_some_and(|s| s.key_file == Some(PathBuf::from("/tmp/k@x"))));
        for bad in [
            format!("1A={id}"),
            format!("A-B={id}"),
            format!("={id}"),
            "A=not-a-uuid".to_owned(),
            format!("A={id}@"),
            id.to_owned(),
        ] {
            assert!(parse_env_spec(&bad).is_err(), "{bad}");
        }
    }
}
