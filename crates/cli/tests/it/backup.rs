//! `brine backup` and `brine restore` (issue 17): an online snapshot taken under load, put back
//! into a fresh data directory; the master key is never in it.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

fn brine(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_brine"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env_remove("BRINE_DATABASE_URL")
        .env_remove("BRINE_MASTER_KEY")
        .env_remove("BRINE_MASTER_KEYS")
        .output()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// (uuid, X-API-Key, value) of each record whose creation was acknowledged.
type Acked = Arc<Mutex<Vec<(String, String, String)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_taken_under_load_restores_every_acknowledged_record() {
    let s = TestServer::start().await;
    let token = s.signup("ana@example.com").await;
    let acked: Acked = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));

    // Writes and reads run all along: records created one after another, each read back.
    let writer = {
        let (http, base, token, acked, stop) = (
            s.http.clone(),
            s.base.clone(),
            token.clone(),
            acked.clone(),
            stop.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let value = format!("sk_live_backup_{n}");
                let res = http
                    .post(format!("{base}/api/v1/records"))
                    .bearer_auth(&token)
                    .json(&json!({"name": format!("R{n}"), "access": "private", "data": value}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), StatusCode::CREATED);
                let created = body(res).await;
                acked
                    .lock()
                    .unwrap()
                    .push((uuid_of(&created), key_of(&created), value));
            }
        })
    };
    let reader = {
        let (http, base, acked, stop) =
            (s.http.clone(), s.base.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut reads = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let last = acked.lock().unwrap().last().cloned();
                if let Some((uuid, key, value)) = last {
                    let res = http
                        .get(format!("{base}/r/{uuid}"))
                        .header("X-API-Key", key)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(body(res).await["data"], value.as_str());
                    reads += 1;
                }
                tokio::task::yield_now().await;
            }
            reads
        })
    };
    while acked.lock().unwrap().len() < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("brine-backup.db");
    let before = acked.lock().unwrap().len();
    let out = {
        let (file, dir) = (file.clone(), s.data_dir.clone());
        tokio::task::spawn_blocking(move || brine(&["backup", file.to_str().unwrap()], &dir))
            .await
            .unwrap()
    };
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("The master key is not in it"),
        "{}",
        text(&out)
    );
    // Serving went on during the backup: more records were acknowledged after it began.
    let target = acked.lock().unwrap().len() + 5;
    while acked.lock().unwrap().len() < target {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(reader.await.unwrap() > 0);
    let acked = acked.lock().unwrap().clone();

    // The file is private, and neither the master key nor a value is in it in the clear.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let bytes = std::fs::read(&file).unwrap();
    let key_text = std::fs::read_to_string(s.data_dir.join("master.key")).unwrap();
    let key_raw = base64::engine::general_purpose::STANDARD
        .decode(key_text.trim())
        .unwrap();
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(key_text.trim().as_bytes()) && !contains(&key_raw));
    assert!(!contains(b"sk_live_backup_"));

    // Never over the running server's database: it is in use.
    let out = brine(&["restore", file.to_str().unwrap(), "--force"], &s.data_dir);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("in use by a running brine"),
        "{}",
        text(&out)
    );

    // Into a fresh data directory. Without the key, restore says what is missing.
    let fresh = tempfile::tempdir().unwrap();
    let out = brine(&["restore", file.to_str().unwrap()], fresh.path());
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("give it the master key of this backup (version 1)"),
        "{}",
        text(&out)
    );
    // A second restore does not overwrite what the first put there.
    let out = brine(&["restore", file.to_str().unwrap()], fresh.path());
    assert!(!out.status.success());
    assert!(text(&out).contains("--force"), "{}", text(&out));
    std::fs::copy(
        s.data_dir.join("master.key"),
        fresh.path().join("master.key"),
    )
    .unwrap();
    let out = brine(
        &["restore", file.to_str().unwrap(), "--force"],
        fresh.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("ready"), "{}", text(&out));

    let restored = TestServer::start_settings(settings_in(fresh.path()))
        .await
        .unwrap();
    let mut later_present = 0;
    for (i, (uuid, key, value)) in acked.iter().enumerate() {
        let res = restored.read(uuid, Some(key)).await;
        if i < before {
            // Acknowledged before the backup began: always in it, with its value.
            assert_eq!(res.status(), StatusCode::OK, "record {i}");
            assert_eq!(body(res).await["data"], value.as_str());
        } else if res.status() == StatusCode::OK {
            // Acknowledged during or after: either wholly in it or not at all.
            assert_eq!(body(res).await["data"], value.as_str());
            later_present += 1;
        } else {
            assert_eq!(res.status(), StatusCode::NOT_FOUND);
        }
    }
    assert!(
        later_present < acked.len() - before,
        "the snapshot is of a moment, not of the end"
    );
    // The owner signs in on the restored installation.
    let res = restored
        .post("/api/v1/auth/login")
        .json(&json!({"email": "ana@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn backup_explains_postgresql_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_brine"))
        .args([
            "backup",
            "/tmp/never-written.db",
            "--database-url",
            "postgres://brine@127.0.0.1/brine",
        ])
        .env_remove("BRINE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("pg_dump"), "{}", text(&out));

    let s = TestServer::start_settings(settings_in(dir.path()))
        .await
        .unwrap();
    let file = dir.path().join("copy.db");
    std::fs::write(&file, b"something precious").unwrap();
    let out = brine(&["backup", file.to_str().unwrap()], dir.path());
    assert!(!out.status.success());
    assert!(text(&out).contains("--force"), "{}", text(&out));
    assert_eq!(std::fs::read(&file).unwrap(), b"something precious");
    let out = brine(&["backup", file.to_str().unwrap(), "--force"], dir.path());
    assert!(out.status.success(), "{}", text(&out));
    // Not a database at all: restore refuses before touching anything.
    let out = brine(
        &[
            "restore",
            dir.path().join("master.key").to_str().unwrap(),
            "--force",
        ],
        dir.path(),
    );
    assert!(!out.status.success());
    drop(s);
}
