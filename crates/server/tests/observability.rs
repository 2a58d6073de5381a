//! Observability: Prometheus `/metrics`, readiness apart from liveness, JSON logs with the
//! request ID on every line.

mod common;

use common::*;
use openpalm_domain::ids::DeviceKind;
use serde_json::Value;
use std::sync::{Arc, Mutex};

async fn scrape(env: &Env) -> String {
    let r = reqwest::get(format!("{}/metrics", env.base)).await.unwrap();
    assert_eq!(r.status(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.unwrap()
}

/// The value of the sample `line_start` (name and labels, as exposed), if present.
fn sample(text: &str, line_start: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(line_start)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_decisions_and_the_gallery() {
    let env = Env::start().await;
    let venue = env.business("Venue").await;
    let kiosk = venue.reader(DeviceKind::Kiosk, "hall A").await;
    let gate = venue.reader(DeviceKind::Gate, "north gate").await;

    for _ in 0..3 {
        assert_eq!(env.anonymous().get("/v1/health").await.unwrap().status, 200);
    }
    let missing = env.anonymous().get("/v1/devices/dev_nope").await.unwrap();
    assert_eq!(missing.status, 401);
    let unknown = env.anonymous().get("/no/such/route").await.unwrap();
    assert_eq!(unknown.status, 404);

    let alice = palm(1, 0, 4);
    let bob = palm(2, 0, 4);
    assert_eq!(
        venue.enroll(&kiosk, &alice[..3], "enroll-alice").await.status,
        201
    );
    assert_eq!(venue.enroll(&kiosk, &bob[..3], "enroll-bob").await.status, 201);
    let id = venue.identify(&gate, &alice[3]).await;
    assert_eq!(id.body["decision"], "match", "{:?}", id.body);

    let text = scrape(&env).await;
    assert_eq!(
        sample(
            &text,
            r#"openpalm_http_requests_total{method="GET",route="/v1/health",status="200"}"#
        ),
        Some(3.0),
        "{text}"
    );
    // By route template, not by path.
    assert_eq!(
        sample(
            &text,
            r#"openpalm_http_requests_total{method="GET",route="/v1/devices/{id}",status="401"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"openpalm_http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains("/no/such/route"));
    assert_eq!(
        sample(
            &text,
            r#"openpalm_http_requests_total{method="POST",route="/v1/enrollments",status="201"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"openpalm_http_request_duration_seconds_count{method="GET",route="/v1/health"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"openpalm_http_request_duration_seconds_bucket{method="GET",route="/v1/health",le="+Inf"}"#
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"openpalm_decisions_total{decision="match",kind="identification"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "openpalm_gallery_templates"), Some(6.0), "{text}");
    assert_eq!(sample(&text, "openpalm_gallery_people"), Some(2.0), "{text}");
    assert_eq!(sample(&text, "openpalm_webhook_backlog"), Some(0.0), "{text}");

    // A stranger is no match.
    let stranger = palm(99, 0, 1);
    let id = venue.identify(&gate, &stranger[0]).await;
    assert_ne!(id.body["decision"], "match", "{:?}", id.body);
    let text = scrape(&env).await;
    let d = id.body["decision"].as_str().unwrap();
    assert_eq!(
        sample(
            &text,
            &format!(r#"openpalm_decisions_total{{decision="{d}",kind="identification"}}"#)
        ),
        Some(1.0),
        "{text}"
    );
    // The scrape itself is counted (the first one, by the time of the second).
    assert_eq!(
        sample(
            &text,
            r#"openpalm_http_requests_total{method="GET",route="/metrics",status="200"}"#
        ),
        Some(1.0),
        "{text}"
    );
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_apart_from_liveness_and_metrics_not_in_the_api_document() {
    let env = Env::start().await;
    let live = env.anonymous().get("/v1/health").await.unwrap();
    assert_eq!(live.status, 200);
    assert_eq!(live.body["status"], "ok");
    let ready = env.anonymous().get("/v1/ready").await.unwrap();
    assert_eq!(ready.status, 200, "{:?}", ready.body);
    assert_eq!(ready.body["status"], "ready");
    assert_eq!(ready.body["templates"], 0);
    assert_eq!(ready.body["people"], 0);

    let doc = env.anonymous().get("/openapi.json").await.unwrap();
    let paths = doc.body["paths"].as_object().unwrap();
    assert!(paths.contains_key("/v1/ready"));
    assert!(paths.contains_key("/v1/health"));
    assert!(!paths.contains_key("/metrics"));
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_requests_are_counted_by_limit() {
    let env = Env::start_in(tempfile::tempdir().unwrap(), |c| {
        c.limits = openpalm_server::limits::LimitSettings::default();
    })
    .await;
    let bad = openpalm_device::Client::new(&env.base, Some("opk_nope".into()));
    let mut limited = None;
    for _ in 0..100 {
        let a = bad.get("/v1/api-keys").await.unwrap();
        if a.status == 429 {
            limited = a.body["limit"].as_str().map(str::to_string);
            break;
        }
    }
    let limit = limited.expect("failed authentications are limited");
    let text = scrape(&env).await;
    assert!(
        sample(
            &text,
            &format!(r#"openpalm_rate_limited_total{{limit="{limit}"}}"#)
        )
        .is_some_and(|n| n >= 1.0),
        "{text}"
    );
    env.stop().await;
}

/// Log lines into a buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;
    fn make_writer(&'a self) -> Buffer {
        self.clone()
    }
}

/// Current-thread runtime: the subscriber set for this thread sees the whole request.
#[tokio::test]
async fn json_logs_are_one_object_per_line_with_the_request_id() {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    let dir = tempfile::tempdir().unwrap();
    let state = openpalm_server::state::open(config(dir.path())).await.unwrap();
    let buf = Buffer::default();
    let subscriber = openpalm_server::telemetry::subscriber(
        openpalm_server::config::LogFormat::Json,
        tracing_subscriber::EnvFilter::new("info"),
        buf.clone(),
    );
    let _guard = tracing::subscriber::set_default(subscriber);
    let app = openpalm_server::api::router(state.clone());
    for (path, id) in [
        ("/v1/health", "req-test-0001"),
        ("/v1/devices/x", "req-test-0002"),
    ] {
        let res = app
            .clone()
            .oneshot(
                Request::get(path)
                    .header("x-request-id", id)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(res.headers()["x-request-id"], id);
    }
    drop(_guard);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not one JSON object: {l}: {e}")))
        .collect();
    assert!(lines.len() >= 2, "{text}");
    for l in &lines {
        assert!(l.is_object());
        assert!(
            l["span"]["request_id"]
                .as_str()
                .is_some_and(|r| r.starts_with("req-test-")),
            "every line names its request: {l}"
        );
    }
    let finished: Vec<&Value> = lines
        .iter()
        .filter(|l| l["message"] == "request finished")
        .collect();
    assert_eq!(finished.len(), 2, "{text}");
    assert_eq!(finished[0]["span"]["request_id"], "req-test-0001");
    assert_eq!(finished[0]["span"]["route"], "/v1/health");
    assert_eq!(finished[0]["span"]["method"], "GET");
    assert_eq!(finished[0]["status"], 200);
    assert!(finished[0]["latency_ms"].as_f64().is_some());
    assert_eq!(finished[1]["span"]["request_id"], "req-test-0002");
    assert_eq!(finished[1]["span"]["route"], "/v1/devices/{id}");
    assert_eq!(finished[1]["status"], 401);
}
