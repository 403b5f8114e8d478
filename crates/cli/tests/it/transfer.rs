//! `brine export` / `brine import` / `brine migrate`: moving an installation between SQLite and
//! PostgreSQL, still encrypted.

use std::process::Command;

use brine_store::testing::{PostgresForTests, TempDatabase, postgres_for_tests};
use serde_json::{Value, json};

use crate::common::*;

fn brine(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_brine"))
        .args(args)
        .env_remove("BRINE_DATABASE_URL")
        .env_remove("BRINE_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "brine {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Records of every kind, and what reading each must give back.
struct Fixture {
    token_email: &'static str,
    records: Vec<(Value, &'static str)>,
}

async fn fill(s: &TestServer) -> Fixture {
    let token = s.signup("ana@example.com").await;
    let mut records = Vec::new();
    for (spec, value) in [
        (
            json!({"name": "A", "access": "private", "data": "private-v", "password": "a password"}),
            "private-v",
        ),
        (
            json!({"name": "B", "access": "public", "data": "public-v"}),
            "public-v",
        ),
        (
            json!({"name": "C", "access": "private", "data": "sealed-v", "sealed": true}),
            "sealed-v",
        ),
        (
            json!({"name": "D", "access": "owner_only", "data": "owner-v"}),
            "owner-v",
        ),
    ] {
        let created = s.create(&token, spec).await;
        // One audited read each, so events travel too.
        let key = created["api_key"].as_str();
        s.read(&uuid_of(&created), key).await;
        records.push((created, value));
    }
    Fixture {
        token_email: "ana@example.com",
        records,
    }
}

/// Every record reads back identically on `s`, and its audit trail came along.
async fn check(s: &TestServer, fixture: &Fixture) {
    let res = s
        .post("/api/v1/auth/login")
        .json(&json!({"email": fixture.token_email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let token = body(res).await["token"].as_str().unwrap().to_owned();
    for (created, value) in &fixture.records {
        let uuid = uuid_of(created);
        let access = created["record"]["access"].as_str().unwrap();
        if access != "owner_only" {
            let res = s.read(&uuid, created["api_key"].as_str()).await;
            assert_eq!(body(res).await["data"], *value, "{uuid} reads back");
        }
        if created["record"]["sealed"] != true {
            let res = s
                .get(&format!("/api/v1/records/{uuid}/value"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            assert_eq!(body(res).await["data"], *value);
        }
        let res = s
            .get(&format!("/api/v1/records/{uuid}/events"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(body(res).await["events"].as_array().unwrap().len() >= 2);
    }
    let res = s
        .post(&format!("/r/{}", uuid_of(&fixture.records[0].0)))
        .json(&json!({"password": "a password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["data"], "private-v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn export_sqlite_import_postgres_and_back() {
    let PostgresForTests::Available(admin) = postgres_for_tests().unwrap() else {
        eprintln!("skipped: set BRINE_TEST_POSTGRES_URL to run this test");
        return;
    };
    // SQLite → file.
    let sqlite = TestServer::start().await;
    let fixture = fill(&sqlite).await;
    let data_dir = sqlite.data_dir.clone();
    let leftovers = sqlite.stop().await;
    let work = tempfile::tempdir().unwrap();
    let first = work.path().join("from-sqlite.jsonl");
    let out = brine(&[
        "export",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "-o",
        first.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("1 accounts, 4 records"), "{said}");
    let exported = std::fs::read_to_string(&first).unwrap();
    for secret in [
        "private-v",
        "public-v",
        "sealed-v",
        "owner-v",
        "a password",
        PASSWORD,
    ] {
        assert!(
            !exported.contains(secret),
            "the export holds a plaintext secret"
        );
    }

    // File → PostgreSQL, served with the same master key.
    let pg = TempDatabase::create(&admin).await.unwrap();
    brine(&["migrate", "--database-url", &pg.url]);
    brine(&[
        "import",
        "--database-url",
        &pg.url,
        "-i",
        first.to_str().unwrap(),
    ]);
    let mut settings = settings_in(&data_dir);
    settings.database_url = Some(pg.url.clone());
    let on_pg = TestServer::start_settings(settings).await.unwrap();
    check(&on_pg, &fixture).await;
    on_pg.stop().await;

    // PostgreSQL → file → a fresh SQLite database.
    let second = work.path().join("from-postgres.jsonl");
    brine(&[
        "export",
        "--database-url",
        &pg.url,
        "-o",
        second.to_str().unwrap(),
    ]);
    let fresh = tempfile::tempdir().unwrap();
    std::fs::copy(data_dir.join("master.key"), fresh.path().join("master.key")).unwrap();
    let sqlite_url = format!("sqlite://{}", fresh.path().join("brine.db").display());
    brine(&[
        "import",
        "--database-url",
        &sqlite_url,
        "-i",
        second.to_str().unwrap(),
    ]);
    let back = TestServer::start_settings(settings_in(fresh.path()))
        .await
        .unwrap();
    check(&back, &fixture).await;
    drop(leftovers);
}

#[tokio::test]
async fn import_refuses_a_database_in_use() {
    let s = TestServer::start().await;
    fill(&s).await;
    let data_dir = s.data_dir.clone();
    let _leftovers = s.stop().await;
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("x.jsonl");
    brine(&[
        "export",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "-o",
        file.to_str().unwrap(),
    ]);
    let out = Command::new(env!("CARGO_BIN_EXE_brine"))
        .args([
            "import",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "-i",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty database"));
}
