//! The limiter conformance suite on every backend: in memory, and Redis when the environment
//! names one (`BRINE_TEST_REDIS_URL`; CI requires it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use brine_limits::testing::{RedisForTests, conformance, redis_for_tests};
use brine_limits::{Key, Limiter, MemoryLimiter, Rate, RedisLimiter, Rule};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn memory() {
    conformance(Arc::new(MemoryLimiter::default())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis() {
    let RedisForTests::Available(url) = redis_for_tests().unwrap() else {
        eprintln!("skipped: set BRINE_TEST_REDIS_URL to run the Redis limiter tests");
        return;
    };
    let limiter = RedisLimiter::new(&url).unwrap();
    limiter.ping().await.unwrap();
    conformance(Arc::new(limiter)).await;
}

#[tokio::test]
async fn an_unreachable_redis_is_reported_not_waited_for() {
    // Port 9 (discard) on loopback: nothing listens there in the test environment.
    let limiter = RedisLimiter::new("redis://127.0.0.1:9").unwrap();
    let rules = [Rule {
        key: Key::Record(uuid::Uuid::new_v4()),
        rate: Rate::parse("1/min").unwrap(),
    }];
    for _ in 0..3 {
        assert!(limiter.acquire(&rules).await.is_err());
    }
    assert!(limiter.ping().await.is_err());
}
