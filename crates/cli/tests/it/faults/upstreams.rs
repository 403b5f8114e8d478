//! Upstreams that fail after they began to answer: a reset (RST) mid-body, an early close with a
//! Content-Length that promised more, a stall past the bridge's total timeout. Both the
//! streaming path (no `select`) and the buffered `select` path.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::common::*;

const STORED_KEY: &str = "sk-canary-faults-UPSTREAM-7731";

/// How the upstream breaks off after its head and the first part of its body.
#[derive(Clone, Copy, Debug)]
enum Break {
    /// SO_LINGER 0 then close: the peer gets a TCP reset.
    Reset,
    /// A clean FIN before the promised Content-Length was sent.
    ShortClose,
    /// A chunked body whose connection closes before the last chunk.
    ChunkedClose,
    /// A chunked head, then the connection closes before any chunk.
    HeadOnlyClose,
    /// Holds the connection open, sending nothing more.
    Stall,
}

/// A raw loopback upstream that answers every connection with `brk`.
async fn broken_upstream(brk: Break) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream, brk));
        }
    });
    format!("http://{addr}/data")
}

async fn answer(mut stream: TcpStream, brk: Break) {
    // Reads the request head (bodies are not sent on these GETs).
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    // The first part echoes the stored key, as a careless upstream might: it must be scrubbed.
    let part = format!("{{\"key\":\"{STORED_KEY}\",\"items\":[1,2,3");
    let head = match brk {
        Break::ChunkedClose | Break::HeadOnlyClose => "HTTP/1.1 200 OK\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_owned(),
        _ => "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
            .to_owned(),
    };
    let body = match brk {
        Break::ChunkedClose => format!("{:x}\r\n{part}\r\n", part.len()),
        Break::HeadOnlyClose => String::new(),
        _ => part,
    };
    if stream.write_all(head.as_bytes()).await.is_err()
        || stream.write_all(body.as_bytes()).await.is_err()
        || stream.flush().await.is_err()
    {
        return;
    }
    match brk {
        Break::Reset => {
            // Let the first part reach the bridge before the reset throws it away.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = stream.set_zero_linger();
            drop(stream);
        }
        Break::ShortClose | Break::ChunkedClose | Break::HeadOnlyClose => {
            let _ = stream.shutdown().await;
        }
        Break::Stall => {
            // Long past any bridge timeout in these tests; the bridge gives up first.
            tokio::time::sleep(Duration::from_secs(120)).await;
        }
    }
}

async fn events(s: &TestServer, token: &str, uuid: &str) -> Vec<Value> {
    let res = s
        .get(&format!("/api/v1/records/{uuid}/events"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    body(res).await["events"].as_array().unwrap().clone()
}

/// Waits until the call's event is settled to something other than `ok`/`attempt`... or to
/// `want` exactly (the audit writer commits in groups, the final settle comes after the body).
async fn settled(s: &TestServer, token: &str, uuid: &str, want: &str) -> Value {
    let mut last = Vec::new();
    for _ in 0..200 {
        last = events(s, token, uuid).await;
        if let Some(e) = last
            .iter()
            .find(|e| e["channel"] != "owner" && e["outcome"] == want)
        {
            return e.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no {want} event for {uuid}: {last:?}");
}

/// A client whose own timeout is the bound for "no hang".
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn bridge_to(s: &TestServer, token: &str, url: &str) -> String {
    let created = s
        .create(
            token,
            json!({"name": "Flaky API", "type": "bridge", "access": "public", "bridge": {
                "url": url,
                "headers": {"Authorization": format!("Bearer {STORED_KEY}")},
                "timeout_ms": 2000,
                "total_timeout_ms": 2000,
            }}),
        )
        .await;
    uuid_of(&created)
}

/// The server still answers an ordinary read after the fault.
async fn still_serving(s: &TestServer, token: &str) {
    let plain = s
        .create(
            token,
            json!({"name": "plain", "data": "fine", "access": "public"}),
        )
        .await;
    let res = s.read(&uuid_of(&plain), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(body(res).await["data"], "fine");
}

async fn streamed_break(brk: Break, outcome: &str) {
    let s = TestServer::start_with(|c| c.allow_private_upstreams = true).await;
    let token = s.signup("ana@example.com").await;
    let uuid = bridge_to(&s, &token, &broken_upstream(brk).await).await;
    // Either the head was relayed before the upstream broke off (the status is the upstream's,
    // and the body must then fail rather than end as if complete), or the break reached brine
    // first and the caller's request fails with no answer at all (which of the two depends on
    // how the upstream's last bytes and its close arrive together).
    let mut got = Vec::new();
    match client().get(s.url(&format!("/r/{uuid}"))).send().await {
        Err(e) => assert!(
            !e.is_connect() && !e.is_timeout(),
            "{brk:?}: not a broken answer: {e}"
        ),
        Ok(res) => {
            assert_eq!(res.status(), StatusCode::OK, "{brk:?}");
            let mut stream = res.bytes_stream();
            let mut failed = false;
            while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
                match chunk {
                    Ok(bytes) => got.extend_from_slice(&bytes),
                    Err(_) => {
                        failed = true;
                        break;
                    }
                }
            }
            assert!(
                failed,
                "{brk:?}: the client saw a complete-looking body: {got:?}"
            );
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        !text.contains(STORED_KEY),
        "{brk:?}: the stored key reached the caller"
    );
    let event = settled(&s, &token, &uuid, outcome).await;
    assert_eq!(event["channel"], "bridge", "{event}");
    still_serving(&s, &token).await;
}

async fn selected_break(brk: Break, status: StatusCode, outcome: &str) {
    let s = TestServer::start_with(|c| c.allow_private_upstreams = true).await;
    let token = s.signup("ana@example.com").await;
    let uuid = bridge_to(&s, &token, &broken_upstream(brk).await).await;
    let res = client()
        .get(s.url(&format!("/r/{uuid}?select=items")))
        .send()
        .await
        .unwrap();
    // Nothing was sent yet on the select path: a clean error envelope.
    let err = expect_error(res, status).await;
    assert!(!err.to_string().contains(STORED_KEY));
    settled(&s, &token, &uuid, outcome).await;
    still_serving(&s, &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_reset_mid_body_breaks_the_callers_body_and_is_audited() {
    streamed_break(Break::Reset, "unreachable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_closed_short_of_its_length_breaks_the_callers_body() {
    streamed_break(Break::ShortClose, "unreachable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_chunked_stream_closed_early_breaks_the_callers_body() {
    streamed_break(Break::ChunkedClose, "unreachable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_closed_right_after_its_head_fails_the_callers_request() {
    streamed_break(Break::HeadOnlyClose, "unreachable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_stalled_mid_body_ends_at_the_total_timeout() {
    streamed_break(Break::Stall, "timeout").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_select_over_a_reset_answer_is_a_502_envelope() {
    selected_break(Break::Reset, StatusCode::BAD_GATEWAY, "unreachable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_select_over_a_short_answer_is_a_502_envelope() {
    selected_break(Break::ShortClose, StatusCode::BAD_GATEWAY, "unreachable").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_select_over_a_stalled_answer_is_a_504_envelope() {
    selected_break(Break::Stall, StatusCode::GATEWAY_TIMEOUT, "timeout").await;
}
