//! The conformance suite every [`Limiter`] passes (feature `testing`), and how tests find Redis.
//!
//! Tests name a Redis server with `BRINE_TEST_REDIS_URL`; without it, Redis tests are skipped —
//! unless `BRINE_TEST_REQUIRE_REDIS=1`, as CI sets, which turns a skip into a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::{Key, Limiter, Rate, Rule};

pub enum RedisForTests {
    Available(String),
    Skipped,
}

pub fn redis_for_tests() -> Result<RedisForTests, String> {
    match std::env::var("BRINE_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Ok(RedisForTests::Available(url)),
        _ if std::env::var("BRINE_TEST_REQUIRE_REDIS").is_ok_and(|v| v == "1") => {
            Err("BRINE_TEST_REQUIRE_REDIS=1 but BRINE_TEST_REDIS_URL is not set".to_owned())
        }
        _ => Ok(RedisForTests::Skipped),
    }
}

fn rule(key: Key, rate: &str) -> Rule {
    Rule {
        key,
        rate: Rate::parse(rate).unwrap(),
    }
}

/// Runs every check on `limiter`. Keys are fresh for each run, so a shared Redis is fine.
pub async fn conformance(limiter: Arc<dyn Limiter>) {
    a_burst_gets_exactly_count_through(limiter.as_ref()).await;
    keys_have_separate_budgets(limiter.as_ref()).await;
    a_refusal_charges_no_rule(limiter.as_ref()).await;
    remaining_counts_down_to_zero(limiter.as_ref()).await;
    budgets_refill_over_time(limiter.as_ref()).await;
    concurrent_requests_never_overshoot(limiter).await;
}

async fn a_burst_gets_exactly_count_through(limiter: &dyn Limiter) {
    let rules = [rule(Key::Record(Uuid::new_v4()), "3/min")];
    for _ in 0..3 {
        let d = limiter.acquire(&rules).await.unwrap().unwrap();
        assert!(d.allowed);
    }
    let refused = limiter.acquire(&rules).await.unwrap().unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.remaining, 0);
    // One emission (20 s) minus the little time the calls took.
    let wait = refused.retry_after;
    assert!(
        wait <= Duration::from_secs(20) && wait > Duration::from_secs(15),
        "{wait:?}"
    );
    assert!(
        refused.reset > Duration::from_secs(55),
        "{:?}",
        refused.reset
    );
    assert!(limiter.acquire(&[]).await.unwrap().is_none());
}

async fn keys_have_separate_budgets(limiter: &dyn Limiter) {
    let record = Uuid::new_v4();
    let a = [rule(Key::RecordClient(record, [1; 16]), "1/hour")];
    let b = [rule(Key::RecordClient(record, [2; 16]), "1/hour")];
    assert!(limiter.acquire(&a).await.unwrap().unwrap().allowed);
    assert!(!limiter.acquire(&a).await.unwrap().unwrap().allowed);
    assert!(limiter.acquire(&b).await.unwrap().unwrap().allowed);
    // Fresh digests: a shared Redis keeps earlier runs' keys for an hour.
    let email = [rule(Key::LoginEmail(Uuid::new_v4().into_bytes()), "1/hour")];
    let other = [rule(Key::LoginEmail(Uuid::new_v4().into_bytes()), "1/hour")];
    assert!(limiter.acquire(&email).await.unwrap().unwrap().allowed);
    assert!(!limiter.acquire(&email).await.unwrap().unwrap().allowed);
    assert!(limiter.acquire(&other).await.unwrap().unwrap().allowed);
}

async fn a_refusal_charges_no_rule(limiter: &dyn Limiter) {
    let wide = rule(Key::Record(Uuid::new_v4()), "3/min");
    let narrow = rule(Key::Account(Uuid::new_v4()), "1/min");
    assert!(
        limiter
            .acquire(&[wide, narrow])
            .await
            .unwrap()
            .unwrap()
            .allowed
    );
    let refused = limiter.acquire(&[wide, narrow]).await.unwrap().unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.rate, narrow.rate, "the narrow rule binds");
    // The refused call took nothing from the wide rule: two of its three remain.
    for left in [1, 0] {
        let d = limiter.acquire(&[wide]).await.unwrap().unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, left);
    }
    assert!(!limiter.acquire(&[wide]).await.unwrap().unwrap().allowed);
}

async fn remaining_counts_down_to_zero(limiter: &dyn Limiter) {
    let rules = [rule(Key::Record(Uuid::new_v4()), "5/hour")];
    for left in (0..5).rev() {
        let d = limiter.acquire(&rules).await.unwrap().unwrap();
        assert_eq!((d.allowed, d.remaining), (true, left));
        assert_eq!(d.retry_after, Duration::ZERO);
        assert_eq!(d.rate, rules[0].rate);
    }
}

async fn budgets_refill_over_time(limiter: &dyn Limiter) {
    let rules = [rule(Key::Account(Uuid::new_v4()), "10/s")];
    for _ in 0..10 {
        assert!(limiter.acquire(&rules).await.unwrap().unwrap().allowed);
    }
    assert!(!limiter.acquire(&rules).await.unwrap().unwrap().allowed);
    // One emission is 100 ms: after at least 150 ms, one more request fits.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(limiter.acquire(&rules).await.unwrap().unwrap().allowed);
}

async fn concurrent_requests_never_overshoot(limiter: Arc<dyn Limiter>) {
    let record = Uuid::new_v4();
    let rules = [
        rule(Key::Record(record), "20/hour"),
        rule(Key::RecordClient(record, [3; 16]), "100/hour"),
    ];
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.acquire(&rules).await.unwrap().unwrap().allowed })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        admitted += usize::from(task.await.unwrap());
    }
    assert_eq!(admitted, 20);
}
