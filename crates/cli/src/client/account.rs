//! `brine signup`, `brine login`, `brine logout`.

use std::process::ExitCode;

use anyhow::{Context, anyhow};
use brine_proto::{Credentials, TokenBody};
use clap::Args;
use reqwest::{Method, StatusCode};

use super::http::{Api, Auth, DEFAULT_SERVER, ServerError};
use super::input;
use super::session::{self, Session};

#[derive(Args)]
pub struct AuthArgs {
    /// The brine server's URL.
    #[arg(long, env = "BRINE_SERVER", default_value = DEFAULT_SERVER, value_name = "URL")]
    server: String,
    /// Your account's email address.
    #[arg(long, env = "BRINE_EMAIL")]
    email: String,
    /// Read the password from the first line of stdin instead of asking on the terminal
    /// (for scripts: `printf '%s\n' "$PW" | brine login --email ... --password-stdin`). With
    /// two-factor sign-in, the code is the second line.
    #[arg(long)]
    password_stdin: bool,
}

pub async fn signup(args: AuthArgs) -> anyhow::Result<ExitCode> {
    open_session(args, "/api/v1/auth/signup", true).await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn login(args: AuthArgs) -> anyhow::Result<ExitCode> {
    open_session(args, "/api/v1/auth/login", false).await?;
    Ok(ExitCode::SUCCESS)
}

async fn open_session(args: AuthArgs, path: &str, new_account: bool) -> anyhow::Result<()> {
    let api = Api::new(&args.server)?;
    let password = input::account_password(args.password_stdin, new_account)?;
    let mut body = Credentials {
        email: args.email.clone(),
        password: password.expose().to_owned(),
        code: None,
        // A CLI session renews itself, so it lasts for days rather than a token's hour.
        refresh: true,
    };
    let mut answer = api
        .call(
            Method::POST,
            path,
            Auth::none(),
            Some(&serde_json::to_value(&body)?),
        )
        .await;
    // Two-factor sign-in: the password was right; ask for the code and sign in with both.
    if let Err(e) = &answer
        && e.downcast_ref::<ServerError>()
            .is_some_and(|s| s.error == "Code required")
    {
        body.code = Some(
            input::second_factor_code(args.password_stdin)?
                .expose()
                .to_owned(),
        );
        answer = api
            .call(
                Method::POST,
                path,
                Auth::none(),
                Some(&serde_json::to_value(&body)?),
            )
            .await;
    }
    let answer = answer?;
    let body: TokenBody = serde_json::from_value(answer)
        .map_err(|_| anyhow!("the server's answer holds no token"))?;
    let file = session::save(&Session::from_answer(api.base(), body))?;
    let verb = if new_account {
        "Created the account and signed in"
    } else {
        "Signed in"
    };
    println!(
        "{verb} to {} as {}. Session saved in {}.",
        api.base(),
        args.email.trim(),
        file.display()
    );
    Ok(())
}

pub async fn logout() -> anyhow::Result<ExitCode> {
    let Some(session) = session::load_optional()? else {
        println!("Not signed in; nothing to do.");
        return Ok(ExitCode::SUCCESS);
    };
    // An expired token is renewed first, so that the server ends the session it belongs to
    // (which would otherwise stay renewable); a session that had already ended is gone.
    let session = match session::renewed(session).await {
        Ok(session) => session,
        Err(_) if !session::path()?.exists() => {
            println!("Signed out (the session had already ended).");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e),
    };
    let api = Api::new(&session.server)?;
    let revoked = api
        .call(
            Method::POST,
            "/api/v1/auth/logout",
            Auth::bearer(&session.token),
            None,
        )
        .await;
    match revoked {
        Ok(_) => {}
        // An expired or already revoked token: nothing left to revoke on the server.
        Err(e)
            if e.downcast_ref::<ServerError>()
                .is_some_and(|s| s.status == StatusCode::UNAUTHORIZED) => {}
        // Keeping the file lets you retry: deleting it would leave a live token behind.
        Err(e) => {
            let path = session::path()?;
            return Err(e).with_context(|| {
                format!(
                    "the server did not revoke the session, so {} is kept; try again, or delete \
                     it by hand",
                    path.display()
                )
            });
        }
    }
    session::remove()?;
    println!("Signed out of {}.", api.base());
    Ok(ExitCode::SUCCESS)
}

/// Who the saved session signs in as, and where.
pub async fn whoami() -> anyhow::Result<ExitCode> {
    let Some(session) = session::load_optional()? else {
        println!("Not signed in. Sign in with `brine login`.");
        return Ok(ExitCode::FAILURE);
    };
    let session = session::renewed(session).await?;
    let api = Api::new(&session.server)?;
    let answer = api
        .call(
            Method::GET,
            "/api/v1/account",
            Auth::bearer(&session.token),
            None,
        )
        .await?;
    let account: brine_proto::AccountView = serde_json::from_value(answer)
        .map_err(|_| anyhow!("the server's answer has an unexpected shape"))?;
    println!("{} on {}", account.email, api.base());
    if account.two_factor {
        println!(
            "two-factor sign-in: on ({} recovery codes left)",
            account.recovery_codes_left
        );
    } else {
        println!("two-factor sign-in: off (turn it on in the dashboard's Account page)");
    }
    Ok(ExitCode::SUCCESS)
}
