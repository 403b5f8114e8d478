//! The session file: which server you signed in to, the token it gave you, and the refresh token
//! that renews it (a signed-in CLI stays signed in for days: `cli_session_days` on the server).
//!
//! Only you may read it (mode 0600, in a 0700 directory). It is replaced atomically: a temporary
//! file created with mode 0600 next to it is renamed over it, so it is never half-written or, even
//! briefly, readable by others.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use brine_proto::{RefreshBody, TokenBody};
use reqwest::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::http::{Api, Auth, ServerError};

const FILE_NAME: &str = "session.json";

/// Deliberately not `Debug`: it holds the token.
#[derive(Serialize, Deserialize)]
pub struct Session {
    pub server: String,
    pub token: String,
    /// Renews the session once (each renewal gives a new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When `token` expires (unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// Renew a token this long before it expires, so that a command never starts with one that
/// runs out on the way.
const RENEW_BEFORE_SECS: i64 = 120;

impl Session {
    /// The session a sign-in (or a renewal) answered with.
    pub fn from_answer(server: &str, body: TokenBody) -> Self {
        Self {
            server: server.to_owned(),
            token: body.token,
            refresh_token: body.refresh_token,
            expires_at: Some(now_secs() + body.expires_in),
        }
    }

    fn due_for_renewal(&self) -> bool {
        self.refresh_token.is_some()
            && self
                .expires_at
                .is_none_or(|at| at - now_secs() < RENEW_BEFORE_SECS)
    }
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn non_empty_env(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// `$BRINE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/brine`, else `$HOME/.config/brine`.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = non_empty_env("BRINE_CONFIG_DIR") {
        return Ok(dir);
    }
    // The XDG spec says relative paths are invalid and must be ignored.
    if let Some(dir) = non_empty_env("XDG_CONFIG_HOME").filter(|d| d.is_absolute()) {
        return Ok(dir.join("brine"));
    }
    if let Some(home) = non_empty_env("HOME") {
        return Ok(home.join(".config").join("brine"));
    }
    bail!("cannot tell where to keep the session: set BRINE_CONFIG_DIR or HOME")
}

pub fn path() -> anyhow::Result<PathBuf> {
    Ok(config_dir()?.join(FILE_NAME))
}

/// The saved session, or `None` when there is no session file.
pub fn load_optional() -> anyhow::Result<Option<Session>> {
    let path = path()?;
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    // serde_json's messages can quote values, so they are not shown: the file holds a token.
    let session = serde_json::from_str(&text).map_err(|_| {
        anyhow::anyhow!(
            "{} is damaged; run `brine login` to replace it",
            path.display()
        )
    })?;
    Ok(Some(session))
}

/// The saved session, or an error telling how to get one; renewed first when its token has
/// expired or is about to.
pub async fn load() -> anyhow::Result<Session> {
    match load_optional()? {
        Some(session) => renewed(session).await,
        None => bail!("not signed in: run `brine login` first"),
    }
}

/// `session`, renewed with its refresh token when its token has expired or is about to. Several
/// brine commands may run at once: one renews while the others wait on a lock, then take the
/// renewed session from the file (presenting the same refresh token twice would end the
/// session, as if it had been copied).
pub async fn renewed(session: Session) -> anyhow::Result<Session> {
    if !session.due_for_renewal() {
        return Ok(session);
    }
    let dir = config_dir()?;
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("session.lock"))
        .context("cannot open the session's lock file")?;
    lock.lock().context("cannot lock the session file")?;
    let current = load_optional()?.unwrap_or(session);
    if !current.due_for_renewal() {
        return Ok(current);
    }
    let Some(refresh_token) = current.refresh_token.as_deref() else {
        return Ok(current);
    };
    let api = Api::new(&current.server)?;
    let body = RefreshBody {
        refresh_token: refresh_token.to_owned(),
    };
    let answer = api
        .call(
            Method::POST,
            "/api/v1/auth/refresh",
            Auth::none(),
            Some(&serde_json::to_value(&body)?),
        )
        .await;
    match answer {
        Ok(answer) => {
            let body: TokenBody = serde_json::from_value(answer)
                .map_err(|_| anyhow!("the server's answer holds no token"))?;
            let session = Session::from_answer(&current.server, body);
            save(&session)?;
            Ok(session)
        }
        Err(e) => {
            if let Some(refused) = e.downcast_ref::<ServerError>()
                && refused.status == StatusCode::UNAUTHORIZED
            {
                remove()?;
                bail!(
                    "your session has ended ({}); run `brine login` to sign in again",
                    refused.message.trim_end_matches('.')
                );
            }
            Err(e)
        }
    }
}

/// Saves the session; returns the file's path.
pub fn save(session: &Session) -> anyhow::Result<PathBuf> {
    let dir = config_dir()?;
    create_private_dir(&dir)?;
    let path = dir.join(FILE_NAME);
    let json = serde_json::to_vec_pretty(session).context("cannot encode the session")?;
    write_atomically(&dir, &path, &json)
        .with_context(|| format!("cannot write the session file {}", path.display()))?;
    Ok(path)
}

/// Deletes the session file; `false` if there was none.
pub fn remove() -> anyhow::Result<bool> {
    let path = path()?;
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot delete {}", path.display())),
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{FILE_NAME}.{}.tmp", uuid::Uuid::new_v4()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| fs::rename(&tmp, path));
    if renamed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    renamed?;
    // Makes the rename itself durable; failing to is no reason to fail the login.
    #[cfg(unix)]
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
