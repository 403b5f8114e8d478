//! Reading secrets: from stdin, a terminal prompt without echo, a key file or the environment.
//! Secrets never come from command-line arguments (they would land in shell history and `ps`).

use std::fmt;
use std::io::{BufRead, IsTerminal, Read};
use std::path::Path;

use anyhow::{Context, bail};

/// The environment variable that holds an X-API-Key for `get`, `run` and `records rotate`.
pub const API_KEY_ENV: &str = "BRINE_API_KEY";
pub const SERVICE_TOKEN_ENV: &str = "BRINE_SERVICE_TOKEN";

/// The largest value a record holds (64 KiB), plus room for a trailing newline.
const MAX_VALUE_BYTES: u64 = 64 * 1024 + 2;

/// A secret string: a value, an X-API-Key or a password. Its `Debug` never shows it.
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Removes one trailing newline (`\n` or `\r\n`), as editors and `echo` add one.
fn trim_one_newline(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    s
}

/// A record value: all of stdin (one trailing newline trimmed) when stdin is not a terminal,
/// else typed at a prompt without echo.
pub fn secret_value(what: &str) -> anyhow::Result<Secret> {
    let stdin = std::io::stdin();
    let value = if stdin.is_terminal() {
        rpassword::prompt_password(format!("{what} (input hidden): "))
            .context("cannot read from the terminal")?
    } else {
        let mut bytes = Vec::new();
        stdin
            .lock()
            .take(MAX_VALUE_BYTES + 1)
            .read_to_end(&mut bytes)
            .context("cannot read stdin")?;
        if bytes.len() as u64 > MAX_VALUE_BYTES {
            bail!("the value on stdin is larger than the 64 KiB a record holds");
        }
        let text = String::from_utf8(bytes)
            .map_err(|_| anyhow::anyhow!("the value on stdin is not valid UTF-8 text"))?;
        trim_one_newline(text)
    };
    if value.is_empty() {
        bail!("the value is empty: pipe it on stdin, e.g. `printf %s \"$VALUE\" | brine ...`");
    }
    Ok(Secret(value))
}

/// An account password: the first line of stdin with `--password-stdin`, else a prompt without
/// echo (asked twice when `confirm`).
pub fn account_password(from_stdin: bool, confirm: bool) -> anyhow::Result<Secret> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        let password = trim_one_newline(line);
        if password.is_empty() {
            bail!("no password on stdin");
        }
        return Ok(Secret(password));
    }
    if !std::io::stdin().is_terminal() {
        bail!("no terminal to ask for the password on; pipe it in with --password-stdin");
    }
    let password = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    if confirm {
        let again =
            rpassword::prompt_password("Password (again): ").context("cannot read the password")?;
        if again != password {
            bail!("the two passwords differ");
        }
    }
    Ok(Secret(password))
}

/// A two-factor code: the next line of stdin with `--password-stdin` (after the password),
/// else a prompt without echo (a recovery code is worth hiding).
pub fn second_factor_code(from_stdin: bool) -> anyhow::Result<Secret> {
    let code = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the code from stdin")?;
        trim_one_newline(line)
    } else {
        if !std::io::stdin().is_terminal() {
            bail!("this account uses two-factor sign-in: no terminal to ask for the code on");
        }
        rpassword::prompt_password("Two-factor code (from your app, or a recovery code): ")
            .context("cannot read the code")?
    };
    if code.trim().is_empty() {
        bail!("no two-factor code given");
    }
    Ok(Secret(code.trim().to_owned()))
}

/// Asks a yes/no question on the terminal (stderr); only `yes` (any case) agrees.
pub fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::Write;
    let mut err = std::io::stderr();
    write!(err, "{question}").context("cannot ask")?;
    err.flush().context("cannot ask")?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("cannot read the answer")?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}

/// A secret kept in a file (an X-API-Key or a record password), surrounding whitespace trimmed.
pub fn secret_file(path: &Path, what: &str) -> anyhow::Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        bail!("the {what} file {} is empty", path.display());
    }
    Ok(Secret(secret.to_owned()))
}

/// The X-API-Key from `file` if given, else from `BRINE_API_KEY`, else none.
pub fn api_key(file: Option<&Path>) -> anyhow::Result<Option<Secret>> {
    if let Some(path) = file {
        return secret_file(path, "API key").map(Some);
    }
    match std::env::var(API_KEY_ENV) {
        Ok(key) if !key.trim().is_empty() => Ok(Some(Secret(key.trim().to_owned()))),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{API_KEY_ENV} is not valid text"),
    }
}

/// A service token from `file`, else from BRINE_SERVICE_TOKEN, if set.
pub fn service_token(file: Option<&Path>) -> anyhow::Result<Option<Secret>> {
    if let Some(path) = file {
        return secret_file(path, "service token").map(Some);
    }
    match std::env::var(SERVICE_TOKEN_ENV) {
        Ok(token) if !token.trim().is_empty() => Ok(Some(Secret(token.trim().to_owned()))),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => bail!("{SERVICE_TOKEN_ENV} is not valid text"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_exactly_one_newline() {
        assert_eq!(trim_one_newline("a\n".into()), "a");
        assert_eq!(trim_one_newline("a\r\n".into()), "a");
        assert_eq!(trim_one_newline("a\n\n".into()), "a\n");
        assert_eq!(trim_one_newline("a \r".into()), "a \r");
    }

    #[test]
    fn debug_hides_secrets() {
        let s = Secret("sk_live_canary".into());
        assert!(!format!("{s:?}").contains("canary"));
    }
}
