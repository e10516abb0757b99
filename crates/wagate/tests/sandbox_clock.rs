//! The sandbox clock's edges: the end of its range, advances sent together, and an advance
//! whose backlog outlasts its time budget.

mod common;

use common::receiver::Receiver;
use common::{fresh, Server};
use serde_json::json;

#[tokio::test]
async fn the_clock_refuses_to_pass_its_end_and_keeps_working() {
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::start(
        &backing,
        &["--sandbox", "--clock-start", "8999-06-01T00:00:00Z"],
    )
    .await;
    let (st, b) = s
        .post(
            "/api/v1/sandbox/clock/advance",
            json!({"seconds": 2 * 31_536_000}),
        )
        .await;
    assert_eq!((st, b["param"].as_str()), (409, Some("seconds")), "{b}");
    assert_eq!(b["now"], "8999-06-01T00:00:00Z");
    let (st, b) = s
        .post(
            "/api/v1/sandbox/clock/advance",
            json!({"to": "9001-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!((st, b["param"].as_str()), (409, Some("to")), "{b}");
    let (st, b) = s
        .post(
            "/api/v1/sandbox/clock/advance",
            json!({"to": "9000-12-31T00:00:00Z"}),
        )
        .await;
    assert_eq!(
        (st, &b["now"], &b["complete"]),
        (200, &json!("9000-12-31T00:00:00Z"), &json!(true)),
        "{b}"
    );
    // At the very end, retries and billing still compute: an endpoint that fails, a line.
    let rx = Receiver::start().await;
    rx.respond_with(&[500; 20]);
    let (st, ep) = s
        .post(
            "/api/v1/webhooks/endpoints",
            json!({"url": rx.url, "events": ["*"]}),
        )
        .await;
    assert_eq!(st, 201, "{ep}");
    let ep = ep["id"].as_str().unwrap();
    let (st, _) = s
        .post(&format!("/api/v1/webhooks/endpoints/{ep}/test"), json!({}))
        .await;
    assert_eq!(st, 202);
    let (st, b) = s
        .post("/api/v1/sandbox/clock/advance", json!({"seconds": 0}))
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = s
        .post("/api/v1/sandbox/clock/advance", json!({"seconds": 1}))
        .await;
    assert_eq!(st, 409, "{b}");
    let (st, b) = s.get("/api/v1/sandbox/clock").await;
    assert_eq!((st, &b["now"]), (200, &json!("9000-12-31T00:00:00Z")));

    // A clock start past the end is refused at start, with the reason.
    let (other, _g2) = fresh("sqlite").await;
    let out = tokio::process::Command::new(common::bin())
        .args(["serve", "--sandbox", "--listen", "127.0.0.1:0"])
        .args(["--clock-start", "9999-06-01T00:00:00Z"])
        .args(other.args())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sandbox clock's end"), "{err}");
}

#[tokio::test]
async fn advances_sent_together_add_up() {
    let (backing, _g) = fresh("sqlite").await;
    let s = Server::sandbox(&backing).await;
    let long = s.post("/api/v1/sandbox/clock/advance", json!({"seconds": 400}));
    let short = s.post("/api/v1/sandbox/clock/advance", json!({"seconds": 1}));
    let ((st1, a), (st2, b)) = tokio::join!(long, short);
    assert_eq!((st1, st2), (200, 200), "{a} {b}");
    let (_, c) = s.get("/api/v1/sandbox/clock").await;
    assert_eq!(
        c["now"], "2026-01-01T00:06:41Z",
        "400 s + 1 s, in either order"
    );
}

#[tokio::test]
async fn a_long_replay_answers_incomplete_and_goes_on_when_asked() {
    let (backing, _g) = fresh("sqlite").await;
    // A 1 s request timeout gives the advance a budget of about 0.67 s.
    let s = Server::start(
        &backing,
        &[
            "--sandbox",
            "--clock-start",
            common::CLOCK_START,
            "--request-timeout",
            "1",
        ],
    )
    .await;
    let rx = Receiver::start().await;
    rx.respond_with(&[500; 100_000]);
    rx.set_delay_ms(20);
    let (_, ep) = s
        .post(
            "/api/v1/webhooks/endpoints",
            json!({"url": rx.url, "events": ["*"]}),
        )
        .await;
    let ep = ep["id"].as_str().unwrap().to_owned();
    for _ in 0..60 {
        let (st, _) = s
            .post(&format!("/api/v1/webhooks/endpoints/{ep}/test"), json!({}))
            .await;
        assert_eq!(st, 202);
    }
    // Every attempt fails slowly; each retry falls at its own jittered instant, so a day
    // holds hundreds of attempts one after the other.
    let (st, first) = s
        .post(
            "/api/v1/sandbox/clock/advance",
            json!({"to": "2026-01-02T00:00:00Z"}),
        )
        .await;
    assert_eq!(st, 200, "{first}");
    assert_eq!(first["complete"], false, "{first}");
    assert!(
        first["now"].as_str().unwrap() < "2026-01-02T00:00:00Z",
        "{first}"
    );
    rx.set_delay_ms(0);
    let mut last = first["now"].as_str().unwrap().to_owned();
    for _ in 0..200 {
        let (st, b) = s
            .post(
                "/api/v1/sandbox/clock/advance",
                json!({"to": "2026-01-02T00:00:00Z"}),
            )
            .await;
        assert_eq!(st, 200, "{b}");
        let now = b["now"].as_str().unwrap().to_owned();
        assert!(
            now >= last,
            "the clock only moves forward: {last} then {now}"
        );
        last = now;
        if b["complete"] == true {
            assert_eq!(last, "2026-01-02T00:00:00Z");
            return;
        }
    }
    panic!("the advance never completed; the clock is at {last}");
}
