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
use super::input::{self, API_KEY_ENV, SERVICE_TOKEN_ENV, Secret};
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
    /// A file holding a service token (`brst_...`, made with `brine tokens create`). Without
    /// it, the token comes from the BRINE_SERVICE_TOKEN environment variable, if set.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
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

    /// The service token given, with the records it may read (asked of the server once).
    async fn service_token(&self, api: &Api) -> anyhow::Result<Option<ServiceToken>> {
        let Some(secret) = input::service_token(self.token_file.as_deref())? else {
            return Ok(None);
        };
        let answer = api
            .call(
                Method::GET,
                "/api/v1/service-token",
                Auth::read(Some(&secret)),
                None,
            )
            .await
            .context("the service token was refused")?;
        let view: brine_proto::ServiceTokenView = serde_json::from_value(answer)
            .map_err(|_| anyhow!("the server's answer has an unexpected shape"))?;
        Ok(Some(ServiceToken {
            secret,
            name: view.name,
            records: view.records,
        }))
    }
}

/// A service token and the records it may read.
struct ServiceToken {
    secret: Secret,
    name: String,
    records: Vec<brine_proto::TokenRecord>,
}

impl ServiceToken {
    /// A record of the token's scope, by uuid or by name.
    fn resolve(&self, record: &str) -> anyhow::Result<Uuid> {
        if let Ok(uuid) = Uuid::try_parse(record) {
            return Ok(uuid);
        }
        let matching: Vec<_> = self.records.iter().filter(|r| r.name == record).collect();
        match matching.as_slice() {
            [one] => Ok(one.uuid),
            [] => bail!(
                "service token {:?} reads no record named {record:?}; it reads: {}",
                self.name,
                self.records
                    .iter()
                    .map(|r| format!("{:?}", r.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
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
}

/// Everything a read may use, in the order it is tried: the record's own X-API-Key, a service
/// token, the owner's session; else none (public records).
struct Readers {
    api: Api,
    token: Option<ServiceToken>,
    session: Option<(Api, session::Session)>,
}

impl Readers {
    async fn new(source: &Source) -> anyhow::Result<Self> {
        let api = source.api()?;
        let token = source.service_token(&api).await?;
        // A service token is what CI uses: the owner's session is not looked at then.
        let session = match token {
            Some(_) => None,
            None => owner_session(source).await?,
        };
        Ok(Self {
            api,
            token,
            session,
        })
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
    /// NAME=RECORD: put the value of RECORD (a uuid, or a name when signed in) in environment
    /// variable NAME. Repeat for more. Add @KEYFILE (NAME=UUID@path/to/key) to read that
    /// record's X-API-Key from a file. Without --env and --env-file, the [env] table of
    /// ./brine.toml is read.
    #[arg(long = "env", value_name = "NAME=RECORD[@KEYFILE]", value_parser = parse_env_spec)]
    env: Vec<EnvSpec>,
    /// A file of NAME=RECORD[@KEYFILE] lines, as in a .env file: `#` comments, blank lines,
    /// an optional `export`, values in single or double quotes.
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    #[command(flatten)]
    source: Source,
    /// The command to run, after `--`, with its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

#[derive(Clone, Debug, PartialEq)]
struct EnvSpec {
    name: String,
    /// A uuid, or a record's name.
    record: String,
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
    let (record, key_file) = match rest.split_once('@') {
        Some((record, file)) if !file.is_empty() => (record, Some(PathBuf::from(file))),
        Some(_) => return Err("nothing after @: expected NAME=RECORD@KEYFILE".to_owned()),
        None => (rest, None),
    };
    if record.trim().is_empty() {
        return Err(format!("no record after {name}="));
    }
    Ok(EnvSpec {
        name: name.to_owned(),
        record: record.trim().to_owned(),
        key_file,
    })
}

/// The lines of an env file, as `parse_env_spec` takes them: `#` comments and blank lines
/// skipped, `export ` dropped, a value in quotes unquoted (`"..."` with `\"` and `\\`
/// escapes, `'...'` as written), and a ` # comment` after an unquoted value dropped.
fn parse_env_file(text: &str) -> Result<Vec<EnvSpec>, String> {
    let mut specs = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}", n + 1);
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| at("expected NAME=RECORD".to_owned()))?;
        let value = unquote(value.trim()).map_err(at)?;
        specs.push(parse_env_spec(&format!("{}={value}", name.trim())).map_err(at)?);
    }
    Ok(specs)
}

/// The project file that `run` and `env` read when given no `--env` or `--env-file`.
const PROJECT_FILE: &str = "brine.toml";

/// The `[env]` table of `./brine.toml`: `NAME = "record[@keyfile]"`.
fn project_file() -> anyhow::Result<Vec<EnvSpec>> {
    #[derive(serde::Deserialize)]
    struct Project {
        #[serde(default)]
        env: std::collections::BTreeMap<String, String>,
    }
    let path = std::path::Path::new(PROJECT_FILE);
    if !path.exists() {
        bail!(
            "nothing to read: give --env NAME=RECORD, --env-file FILE, or a {PROJECT_FILE} here \
             with an [env] table"
        );
    }
    use figment::providers::Format;
    let project: Project = figment::Figment::from(figment::providers::Toml::file(path))
        .extract()
        .with_context(|| format!("cannot read {PROJECT_FILE}"))?;
    if project.env.is_empty() {
        bail!("{PROJECT_FILE} has no [env] table of NAME = \"record\" lines");
    }
    project
        .env
        .iter()
        .map(|(name, record)| {
            parse_env_spec(&format!("{name}={record}"))
                .map_err(|e| anyhow!("{PROJECT_FILE}, [env] {name}: {e}"))
        })
        .collect()
}

fn unquote(value: &str) -> Result<String, String> {
    if let Some(inner) = value.strip_prefix('\'') {
        let end = inner.find('\'').ok_or("a ' is not closed")?;
        return Ok(inner[..end].to_owned());
    }
    if let Some(inner) = value.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Ok(out),
                '\\' => out.push(chars.next().ok_or("a \" is not closed")?),
                c => out.push(c),
            }
        }
        return Err("a \" is not closed".to_owned());
    }
    let value = match value.find(" #") {
        Some(comment) => &value[..comment],
        None => value,
    };
    Ok(value.trim_end().to_owned())
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

/// The owner's session (renewed if need be), when it is for the server asked for (or none was
/// named).
async fn owner_session(source: &Source) -> anyhow::Result<Option<(Api, session::Session)>> {
    let Some(session) = session::load_optional().ok().flatten() else {
        return Ok(None);
    };
    let api = Api::new(&session.server)?;
    match &source.server {
        Some(server) if super::http::normalize_server(server)? != api.base() => Ok(None),
        _ => Ok(Some((api, session::renewed(session).await?))),
    }
}

/// A record named by uuid, or by name among the owner's records: exactly one must have it.
pub(super) async fn resolve(api: &Api, token: &str, record: &str) -> anyhow::Result<Uuid> {
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

/// One record's value: with its key, read as code does; else with the service token; else the
/// owner's session reveals it; else a public read.
async fn read_one(readers: &Readers, record: &str, key: Option<&Secret>) -> anyhow::Result<Secret> {
    let not_a_uuid = || {
        anyhow!(
            "{record:?} is not a uuid; record names work with a service token or once you are \
             signed in (`brine login`)"
        )
    };
    let api = &readers.api;
    match (key, &readers.token, &readers.session) {
        (Some(key), token, session) => {
            let uuid = match (Uuid::try_parse(record), token, session) {
                (Ok(uuid), _, _) => uuid,
                (Err(_), Some(token), _) => token.resolve(record)?,
                (Err(_), None, Some((owner_api, s))) => {
                    resolve(owner_api, &s.token, record).await?
                }
                (Err(_), None, None) => return Err(not_a_uuid()),
            };
            fetch(api, uuid, Some(key)).await
        }
        (None, Some(token), _) => {
            let uuid = token.resolve(record)?;
            fetch(api, uuid, Some(&token.secret)).await
        }
        (None, None, Some((owner_api, s))) => {
            let uuid = resolve(owner_api, &s.token, record).await?;
            reveal(owner_api, &s.token, uuid).await
        }
        (None, None, None) => {
            let uuid = Uuid::try_parse(record).map_err(|_| not_a_uuid())?;
            fetch(api, uuid, None).await
        }
    }
}

pub async fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    let key = args.source.default_key()?;
    let readers = Readers::new(&args.source).await?;
    let value = read_one(&readers, &args.record, key.as_ref()).await?;
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

#[derive(Args)]
pub struct EnvArgs {
    /// NAME=RECORD[@KEYFILE], as for `brine run`. Repeat for more.
    #[arg(long = "env", value_name = "NAME=RECORD[@KEYFILE]", value_parser = parse_env_spec)]
    env: Vec<EnvSpec>,
    /// A file of NAME=RECORD[@KEYFILE] lines, as for `brine run`.
    #[arg(long, value_name = "FILE")]
    env_file: Option<PathBuf>,
    /// `dotenv` (NAME="value" lines) or `json` (one object).
    #[arg(long, value_enum, default_value = "dotenv")]
    format: EnvFormat,
    #[command(flatten)]
    source: Source,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum EnvFormat {
    Dotenv,
    Json,
}

/// Every value named by `--env` and `--env-file`, or an error if any cannot be read.
async fn read_all(
    env: &[EnvSpec],
    env_file: Option<&std::path::Path>,
    source: &Source,
) -> anyhow::Result<Vec<(String, Secret)>> {
    let mut specs = env.to_vec();
    if env.is_empty() && env_file.is_none() {
        specs = project_file()?;
    }
    if let Some(path) = env_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        specs.extend(parse_env_file(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?);
    }
    for (i, spec) in specs.iter().enumerate() {
        if specs[..i].iter().any(|s| s.name == spec.name) {
            bail!("{} is given twice", spec.name);
        }
    }
    let default_key = source.default_key()?;
    let readers = Readers::new(source).await?;
    // Every value first: if one cannot be had, the command does not start.
    let mut values = Vec::with_capacity(specs.len());
    for spec in &specs {
        let failed = || format!("cannot fetch {} (record {})", spec.name, spec.record);
        let own_key = match &spec.key_file {
            Some(path) => Some(input::secret_file(path, "API key").with_context(failed)?),
            None => None,
        };
        let key = own_key.as_ref().or(default_key.as_ref());
        let value = read_one(&readers, &spec.record, key)
            .await
            .with_context(failed)?;
        if value.expose().contains('\0') {
            bail!(
                "the value of {} (record {}) contains a NUL byte, which an environment \
                 variable cannot hold",
                spec.name,
                spec.record
            );
        }
        values.push((spec.name.clone(), value));
    }
    Ok(values)
}

/// Prints the values for a tool that reads a file of them (a deploy tool, docker --env-file).
pub async fn env(args: EnvArgs) -> anyhow::Result<ExitCode> {
    let values = read_all(&args.env, args.env_file.as_deref(), &args.source).await?;
    let mut out = String::new();
    match args.format {
        EnvFormat::Dotenv => {
            for (name, value) in &values {
                let quoted: String = value
                    .expose()
                    .chars()
                    .flat_map(|c| match c {
                        '"' => vec!['\\', '"'],
                        '\\' => vec!['\\', '\\'],
                        '\n' => vec!['\\', 'n'],
                        '$' => vec!['\\', '$'],
                        c => vec![c],
                    })
                    .collect();
                out.push_str(&format!("{name}=\"{quoted}\"\n"));
            }
        }
        EnvFormat::Json => {
            let object: serde_json::Map<String, serde_json::Value> = values
                .iter()
                .map(|(name, value)| (name.clone(), value.expose().into()))
                .collect();
            out = serde_json::to_string_pretty(&object).context("cannot encode the values")?;
            out.push('\n');
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(out.as_bytes())
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")?;
    Ok(ExitCode::SUCCESS)
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let values = read_all(&args.env, args.env_file.as_deref(), &args.source).await?;

    let (program, program_args) = args
        .command
        .split_first()
        .ok_or_else(|| anyhow!("no command given after --"))?;
    let mut command = std::process::Command::new(program);
    // The command gets the values it asked for, never what opened them.
    command
        .args(program_args)
        .env_remove(API_KEY_ENV)
        .env_remove(SERVICE_TOKEN_ENV);
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
            "A=".to_owned(),
            format!("A={id}@"),
            id.to_owned(),
        ] {
            assert!(parse_env_spec(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn env_files_read_like_dotenv() {
        let text = "# deploy secrets\n\
                    \n\
                    STRIPE_KEY=Stripe live # the live one\n\
                    export DB_URL=\"db url \\\"main\\\"\"\n\
                    SINGLE='it''s'\n\
                    KEYED=6f1c2a8e-0b7d-4f0e-9a51-2d3c4b5a6978@keys/k.key\n";
        let specs = parse_env_file(text).unwrap();
        let got: Vec<_> = specs
            .iter()
            .map(|s| (s.name.as_str(), s.record.as_str(), s.key_file.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("STRIPE_KEY", "Stripe live", None),
                ("DB_URL", "db url \"main\"", None),
                ("SINGLE", "it", None),
                (
                    "KEYED",
                    "6f1c2a8e-0b7d-4f0e-9a51-2d3c4b5a6978",
                    Some(PathBuf::from("keys/k.key"))
                ),
            ]
        );
        let error = parse_env_file("OK=a\nnot a line\n").unwrap_err();
        assert!(error.starts_with("line 2:"), "{error}");
        assert!(
            parse_env_file("A=\"open\n")
                .unwrap_err()
                .contains("not closed")
        );
        assert!(parse_env_file("1A=x\n").is_err());
    }
}
