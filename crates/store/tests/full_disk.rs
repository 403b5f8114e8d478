//! SQLite on a volume that fills up and then gets space back: every write acknowledged after the
//! space returns is committed, and no connection is left holding a transaction. Mounting the
//! tmpfs needs root: not root, the test prints `skipped` and passes, unless
//! `BRINE_TEST_REQUIRE_ROOT=1` (CI), which makes the skip a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::path::Path;
use std::process::Command;

use brine_store::{Lifecycle, SqliteStore};
use sqlx::{Connection, Row};

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// A tmpfs at a fresh directory, unmounted (lazily) on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Result<Self, String> {
        let dir = tempfile::TempDir::new().map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("brine-store-full")
            .arg(dir.path())
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Self(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// Fills the volume holding `path` to the last byte.
fn fill(path: &Path) {
    let mut file = std::fs::File::create(path).unwrap();
    for size in [64 * 1024, 512] {
        let block = vec![0u8; size];
        while file
            .write_all(&block)
            .and_then(|()| file.sync_all())
            .is_ok()
        {}
    }
}

async fn rows(url: &str) -> i64 {
    let mut other = sqlx::SqliteConnection::connect(url).await.unwrap();
    let n = sqlx::query("SELECT count(*) FROM fill")
        .fetch_one(&mut other)
        .await
        .unwrap()
        .get(0);
    other.close().await.unwrap();
    n
}

#[tokio::test]
async fn commits_after_a_full_disk_are_saved() {
    let required = std::env::var("BRINE_TEST_REQUIRE_ROOT").as_deref() == Ok("1");
    let volume = match (is_root(), Tmpfs::mount("4m")) {
        (true, Ok(volume)) => volume,
        (root, mounted) => {
            assert!(
                !required,
                "BRINE_TEST_REQUIRE_ROOT=1 but cannot mount a tmpfs (root: {root}): {:?}",
                mounted.err()
            );
            eprintln!("skipped commits_after_a_full_disk_are_saved: mounting a tmpfs needs root");
            return;
        }
    };
    let url = format!("sqlite://{}", volume.0.path().join("brine.db").display());
    let store = SqliteStore::connect(&url).await.unwrap();
    let pool = store.pool();
    sqlx::query("CREATE TABLE fill (x BLOB)")
        .execute(pool)
        .await
        .unwrap();
    let ballast = volume.0.path().join("ballast");
    fill(&ballast);

    // Transactions whose commit finds no room, one at a time, enough for every pooled
    // connection to get more than one of them (it took two failed commits on one connection to
    // leave it stuck in a transaction, when sqlx reused it).
    let mut refused = 0;
    for _ in 0..20 {
        let mut tx = pool.begin().await.unwrap();
        let inserted = sqlx::query("INSERT INTO fill VALUES (zeroblob(200000))")
            .execute(&mut *tx)
            .await;
        let committed = match &inserted {
            Ok(_) => tx.commit().await.map_err(|e| e.to_string()),
            Err(e) => Err(format!("insert: {e}")),
        };
        if committed.is_err() {
            refused += 1;
        }
    }
    assert!(
        refused > 10,
        "the full volume refused only {refused} commits of 20"
    );
    let before = rows(&url).await;

    std::fs::remove_file(&ballast).unwrap();
    for i in 1..=20 {
        let mut tx = pool.begin().await.unwrap();
        sqlx::query("INSERT INTO fill VALUES (x'01')")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        // Committed means another connection sees it now, not after some later commit.
        assert_eq!(
            rows(&url).await,
            before + i,
            "commit {i} after space returned"
        );
    }
    store.close().await;
}
