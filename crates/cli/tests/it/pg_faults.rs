//! PostgreSQL faults and crash consistency: the database stopped, restarted and killed under
//! load (a private cluster the test runs itself), and brine itself killed (SIGKILL) mid-load on
//! SQLite and PostgreSQL. Every answer is a success or a 503 envelope, never a hang; afterwards
//! everything acknowledged is there.

use std::time::Instant;

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use tempfile::TempDir;

use crate::common::*;
use crate::mixed_load::{Load, NO_HANG, Target, client, verify};
use crate::pg_cluster::{Down, PgCluster};
use crate::upstream::Upstream;

const VALUE: &str = "sk_pgfaults_outage_canary";

/// An in-process brine on the private cluster, allowed to call loopback upstreams.
async fn server_on(cluster: &PgCluster) -> (TestServer, TempDir) {
    let dir = TempDir::new().unwrap();
    let mut settings = settings_in(dir.path());
    settings.database_url = Some(cluster.url());
    settings.allow_private_upstreams = true;
    (TestServer::start_settings(settings).await.unwrap(), dir)
}

/// Runs a blocking cluster operation off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_stopped_answers_503_and_recovers_without_a_restart() {
    if !root_or_skip("a private PostgreSQL cluster") {
        return;
    }
    let mut cluster = blocking(PgCluster::start).await;
    let (s, _dir) = server_on(&cluster).await;
    let token = s.signup("ana@example.com").await;
    let created = s
        .create(
            &token,
            json!({"name": "K", "access": "private", "data": VALUE}),
        )
        .await;
    let (uuid, key) = (uuid_of(&created), key_of(&created));
    assert_eq!(s.read(&uuid, Some(&key)).await.status(), StatusCode::OK);

    let mut cluster = blocking(move || {
        cluster.down(Down::Fast);
        cluster
    })
    .await;
    // Every kind of request that needs the database, all at once.
    let http = client();
    let requests = [
        (
            "read",
            http.get(s.url(&format!("/r/{uuid}")))
                .header("X-API-Key", &key),
        ),
        (
            "create",
            http.post(s.url("/api/v1/records"))
                .bearer_auth(&token)
                .json(&json!({"name": "L", "access": "private", "data": VALUE})),
        ),
        (
            "reveal",
            http.get(s.url(&format!("/api/v1/records/{uuid}/value")))
                .bearer_auth(&token),
        ),
        (
            "list",
            http.get(s.url("/api/v1/records")).bearer_auth(&token),
        ),
        (
            "rotate",
            http.post(s.url(&format!("/api/v1/records/{uuid}/api-key")))
                .bearer_auth(&token),
        ),
        (
            "events",
            http.get(s.url(&format!("/api/v1/records/{uuid}/events")))
                .bearer_auth(&token),
        ),
        (
            "login",
            http.post(s.url("/api/v1/auth/login"))
                .json(&json!({"email": "ana@example.com", "password": PASSWORD})),
        ),
    ];
    let started = Instant::now();
    let answers = join_all(
        requests
            .into_iter()
            .map(|(what, req)| async move { (what, req.send().await) }),
    )
    .await;
    for (what, res) in answers {
        let res = res.unwrap_or_else(|e| panic!("{what}: no answer within {NO_HANG:?}: {e}"));
        assert!(res.headers().contains_key("retry-after"), "{what}");
        let text = expect_error(res, StatusCode::SERVICE_UNAVAILABLE)
            .await
            .to_string();
        assert!(!text.contains(VALUE), "{what}: {text}");
    }
    // Printed, not asserted: how long a caller waits for the 503.
    eprintln!("PostgreSQL down: 503s after {:?}", started.elapsed());

    let cluster = blocking(move || {
        cluster.up();
        cluster
    })
    .await;
    // The pool reconnects by itself: the same brine answers again.
    let mut recovered = false;
    for _ in 0..300 {
        let res = http
            .get(s.url(&format!("/r/{uuid}")))
            .header("X-API-Key", &key)
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::OK {
            assert_eq!(body(res).await["data"], VALUE);
            recovered = true;
            break;
        }
        expect_error(res, StatusCode::SERVICE_UNAVAILABLE).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "brine did not recover when PostgreSQL came back; its log:\n{}",
        cluster.log()
    );
    // Writes too; the outage changed nothing (the rotation answered 503, so the key is the same).
    let other = s
        .create(
            &token,
            json!({"name": "M", "access": "private", "data": "after"}),
        )
        .await;
    assert_eq!(
        body(s.read(&uuid_of(&other), Some(&key_of(&other))).await).await["data"],
        "after"
    );
    let res = s
        .get(&format!("/api/v1/records/{uuid}/value"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(body(res).await["data"], VALUE);
}

/// Signs up, creates a public bridge to `up` and returns where the load goes.
async fn target(base: &str, up: &Upstream) -> Target {
    let http = client();
    let res = http
        .post(format!("{base}/api/v1/auth/signup"))
        .json(&json!({"email": "load@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let token = body(res).await["token"].as_str().unwrap().to_owned();
    let res = http
        .post(format!("{base}/api/v1/records"))
        .bearer_auth(&token)
        .json(
            &json!({"name": "Weather", "type": "bridge", "access": "public",
            "bridge": {"url": up.url("/weather")}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let bridge = uuid_of(&body(res).await);
    Target {
        base: base.to_owned(),
        token,
        bridge,
    }
}

/// Mixed load on brine while the private cluster goes down `each` way and comes back.
async fn cluster_restarts_under_load(each: &[Down]) {
    let cluster = blocking(PgCluster::start).await;
    let (s, _dir) = server_on(&cluster).await;
    let up = Upstream::start().await;
    let target = target(&s.base, &up).await;
    let load = Load::start(&target, 6, false);
    load.wait_for_acks(30).await;
    let mut cluster = cluster;
    for &how in each {
        cluster = blocking(move || {
            cluster.restart(how);
            cluster
        })
        .await;
        // The same brine serves again, without a restart.
        load.wait_for_acks(30).await;
    }
    let ledger = load.finish().await;
    eprintln!(
        "{each:?}: {} acknowledged, {} answered 503, {} records",
        ledger.acknowledged,
        ledger.unavailable,
        ledger.records.len()
    );
    verify(&target, &ledger).await;
    assert_every_record_has_its_slots(&cluster.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_restarted_under_load_loses_nothing_acknowledged() {
    if !root_or_skip("a private PostgreSQL cluster") {
        return;
    }
    cluster_restarts_under_load(&[Down::Fast, Down::Immediate]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_killed_under_load_loses_nothing_acknowledged() {
    if !root_or_skip("a private PostgreSQL cluster") {
        return;
    }
    cluster_restarts_under_load(&[Down::Kill]).await;
}

/// No record lacks its server or api-key slot (every record of these tests is private).
async fn assert_every_record_has_its_slots(database_url: &str) {
    const HALF_WRITTEN: &str = "SELECT COUNT(*) FROM records r WHERE r.access = 'private' AND \
         (NOT EXISTS (SELECT 1 FROM key_slots k WHERE k.record_uuid = r.uuid AND k.kind = 'server') \
         OR NOT EXISTS (SELECT 1 FROM key_slots k WHERE k.record_uuid = r.uuid AND k.kind = 'api_key'))";
    const ALL: &str = "SELECT COUNT(*) FROM records";
    let (half, all): (i64, i64) = if database_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(database_url).await.unwrap();
        let half = sqlx::query_scalar(HALF_WRITTEN)
            .fetch_one(&pool)
            .await
            .unwrap();
        let all = sqlx::query_scalar(ALL).fetch_one(&pool).await.unwrap();
        pool.close().await;
        (half, all)
    } else {
        let pool = sqlx::PgPool::connect(database_url).await.unwrap();
        let half = sqlx::query_scalar(HALF_WRITTEN)
            .fetch_one(&pool)
            .await
            .unwrap();
        let all = sqlx::query_scalar(ALL).fetch_one(&pool).await.unwrap();
        pool.close().await;
        (half, all)
    };
    assert!(all > 0, "the load stored records");
    assert_eq!(half, 0, "records without their key slots");
}

each_backend! {
async fn brine_killed_mid_load_loses_nothing_acknowledged() {
    // On PostgreSQL a per-test database on the shared server: this test kills brine, not the
    // database, so it needs no private cluster (nor root).
    let s = TestServer::start().await;
    let database_url = s.database_url();
    let data_dir = s.data_dir.to_str().unwrap().to_owned();
    // The in-process server only made the database and the master key; the real `brine serve`
    // runs on them (the leftovers hold both until the end).
    let leftovers = s.stop().await;
    let args = [
        "--listen", "127.0.0.1:0",
        "--data-dir", data_dir.as_str(),
        "--database-url", database_url.as_str(),
        "--allow-private-upstreams",
    ];
    let envs = [("BRINE_KEEP_USER_AGENT", "full")];
    let mut brine = BrineProcess::start(&args, &envs);
    let up = Upstream::start().await;
    let mut target = target(&brine.base, &up).await;
    let load = Load::start(&target, 6, true);
    load.wait_for_acks(60).await;
    brine.child.kill().unwrap();
    brine.child.wait().unwrap();
    let ledger = load.finish().await;
    eprintln!(
        "killed: {} acknowledged, {} unanswered, {} records",
        ledger.acknowledged,
        ledger.unanswered,
        ledger.records.len()
    );
    drop(brine);

    let again = BrineProcess::start(&args, &envs);
    target.base = again.base.clone();
    verify(&target, &ledger).await;
    assert_every_record_has_its_slots(&database_url).await;
    let log = again.stop();
    assert!(!log.contains("sk_pgfaults"), "a value reached the log");
    drop(leftovers);
}
}
