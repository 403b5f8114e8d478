//! The PostgreSQL backend, for several brine nodes sharing one database.
//!
//! Nothing is cached in the node: every request reads the database, so a rotation, deletion or
//! logout committed by one node is seen by every other node on its very next request.

use std::str::FromStr;
use std::time::Duration;

use sqlx::Postgres;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};

use crate::Result;
use crate::sql::impl_sql_store;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects and applies pending migrations. sqlx holds a PostgreSQL advisory lock while it
    /// migrates, so nodes starting together apply each migration exactly once.
    pub async fn connect(url: &str) -> Result<Self> {
        let store = Self::connect_without_migrating(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without touching the schema (for `brine migrate` and tools).
    pub async fn connect_without_migrating(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)?.application_name("brine");
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }
}

impl_sql_store!(PgStore, Postgres, PgRow);
