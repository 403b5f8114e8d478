//! Test support (feature `testing`): throw-away PostgreSQL databases.
//!
//! Tests name a server with `BRINE_TEST_POSTGRES_URL` (an admin URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`). Without it, PostgreSQL tests are skipped —
//! unless `BRINE_TEST_REQUIRE_POSTGRES=1`, as CI sets, which turns a skip into a failure.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};
use uuid::Uuid;

/// What the environment says about PostgreSQL for tests.
pub enum PostgresForTests {
    Available(String),
    Skipped,
}

pub fn postgres_for_tests() -> Result<PostgresForTests, String> {
    match std::env::var("BRINE_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Ok(PostgresForTests::Available(url)),
        _ if std::env::var("BRINE_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") => {
            Err("BRINE_TEST_REQUIRE_POSTGRES=1 but BRINE_TEST_POSTGRES_URL is not set".to_owned())
        }
        _ => Ok(PostgresForTests::Skipped),
    }
}

/// A fresh database, dropped (with its connections) when this value is dropped.
pub struct TempDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl TempDatabase {
    pub async fn create(admin_url: &str) -> Result<Self, String> {
        let name = format!("brine_test_{}", Uuid::new_v4().simple());
        let mut admin = PgConnectOptions::from_str(admin_url)
            .map_err(|e| e.to_string())?
            .connect()
            .await
            .map_err(|e| format!("cannot reach the test PostgreSQL server: {e}"))?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .map_err(|e| e.to_string())?;
        admin.close().await.map_err(|e| e.to_string())?;
        Ok(Self {
            url: with_database(admin_url, &name),
            admin_url: admin_url.to_owned(),
            name,
        })
    }
}

/// `admin_url` with its database name replaced by `name` (query parameters kept).
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (admin_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TempDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop may run inside an async runtime: do the work on a thread with its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let mut admin = PgConnectOptions::from_str(&admin_url)
                    .map_err(|e| e.to_string())?
                    .connect()
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut admin)
                .await
                .map_err(|e| e.to_string())?;
                admin.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("warning: could not drop test database {}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        use super::with_database;
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
