//! Prometheus metrics, one registry per service (tests start many services in one process):
//! requests and their latency by route, decisions by kind, rate-limited requests by limit,
//! and, read when scraped, the gallery's size and the webhook backlog. Served at
//! `GET /metrics` in the text exposition format, outside the versioned API.

use crate::problem::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

/// Request latency buckets, in seconds (1 ms to 10 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route label of a request that matched no route (so unknown paths cannot grow the
/// label set).
pub const UNMATCHED: &str = "unmatched";

/// The service's metrics and the registry they are kept in.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    decisions: IntCounterVec,
    rate_limited: IntCounterVec,
    gallery_templates: IntGauge,
    gallery_people: IntGauge,
    webhook_backlog: IntGauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter");
    registry.register(Box::new(c.clone())).expect("registered once");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid gauge");
    registry.register(Box::new(g.clone())).expect("registered once");
    g
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = counter(
            &registry,
            "openpalm_http_requests_total",
            "HTTP requests answered, by route template, method and status",
            &["route", "method", "status"],
        );
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "openpalm_http_request_duration_seconds",
                "Time to answer an HTTP request, by route template and method",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method"],
        )
        .expect("valid histogram");
        registry
            .register(Box::new(duration.clone()))
            .expect("registered once");
        let decisions = counter(
            &registry,
            "openpalm_decisions_total",
            "Decisions on a palm: kind identification (match, no_match, ambiguous), \
             lane (admit, exit, deny), checkout (the checkout's outcome)",
            &["kind", "decision"],
        );
        let rate_limited = counter(
            &registry,
            "openpalm_rate_limited_total",
            "Requests refused with 429, by the limit that refused them",
            &["limit"],
        );
        let gallery_templates = gauge(
            &registry,
            "openpalm_gallery_templates",
            "Templates in the in-memory gallery",
        );
        let gallery_people = gauge(
            &registry,
            "openpalm_gallery_people",
            "People in the in-memory gallery",
        );
        let webhook_backlog = gauge(
            &registry,
            "openpalm_webhook_backlog",
            "Webhook deliveries still pending (due or waiting for a retry)",
        );
        Metrics {
            registry,
            requests,
            duration,
            decisions,
            rate_limited,
            gallery_templates,
            gallery_people,
            webhook_backlog,
        }
    }

    /// One answered request.
    pub fn request(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.duration.with_label_values(&[route, method]).observe(seconds);
    }

    /// One decision: `kind` is `identification`, `lane` or `checkout`.
    pub fn decision(&self, kind: &str, decision: &str) {
        self.decisions.with_label_values(&[kind, decision]).inc();
    }

    /// One request refused by a rate or attempt limit.
    pub fn rate_limited(&self, limit: &str) {
        self.rate_limited.with_label_values(&[limit]).inc();
    }

    /// Everything, in the text exposition format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut out = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        String::from_utf8(out).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

/// Read the gauges that are kept elsewhere: the gallery's size and the webhook backlog.
pub async fn refresh(state: &AppState) -> Result<(), ApiError> {
    let templates = state
        .matcher
        .read()
        .map(|m| m.len())
        .map_err(|_| ApiError::internal("matcher", "lock poisoned"))?;
    let people = state
        .directory
        .read()
        .map(|d| d.person_ids.len())
        .map_err(|_| ApiError::internal("directory", "lock poisoned"))?;
    let backlog = state.store.pending_webhook_deliveries().await?;
    let m = &state.metrics;
    m.gallery_templates
        .set(i64::try_from(templates).unwrap_or(i64::MAX));
    m.gallery_people.set(i64::try_from(people).unwrap_or(i64::MAX));
    m.webhook_backlog.set(i64::try_from(backlog).unwrap_or(i64::MAX));
    Ok(())
}

/// `GET /metrics`
async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    refresh(&state).await?;
    let body = state
        .metrics
        .render()
        .map_err(|e| ApiError::internal("metrics", e))?;
    let mut r = body.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(r)
}

/// `/metrics`, merged into the service's router beside the API table (not part of the
/// versioned API, so not in `/openapi.json`).
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_registries_do_not_share_counts() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.request("/v1/health", "GET", 200, 0.002);
        a.decision("identification", "match");
        let text = a.render().unwrap();
        assert!(
            text.contains(r#"openpalm_http_requests_total{method="GET",route="/v1/health",status="200"} 1"#)
        );
        assert!(text.contains(r#"openpalm_decisions_total{decision="match",kind="identification"} 1"#));
        assert!(text.contains("openpalm_http_request_duration_seconds_bucket"));
        assert!(!b.render().unwrap().contains("openpalm_http_requests_total{"));
    }
}
