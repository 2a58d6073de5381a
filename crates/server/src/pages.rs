//! The pages `openpalm serve` serves (the person portal, the business console and the home
//! page listing them; `openpalm-ui`): static files compiled into the binary, each with the
//! security headers of `openpalm_ui::SECURITY_HEADERS`. They are not part of the API and
//! not in `/openapi.json`; they call the `/v1` API of the same origin like any client.

use axum::extract::Path;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// A file as a response with its type and the pages' security headers.
pub fn file_response(asset: &openpalm_ui::Asset) -> Response {
    let mut res = (StatusCode::OK, asset.body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    for (k, v) in openpalm_ui::SECURITY_HEADERS {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    res
}

async fn asset(Path(name): Path<String>) -> Response {
    match openpalm_ui::asset(&name) {
        Some(a) => file_response(a),
        None => crate::problem::ApiError::new(StatusCode::NOT_FOUND, "no_such_route", "no such file")
            .into_response(),
    }
}

/// The pages and `/assets/{name}`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut r = Router::new().route("/assets/{name}", get(asset));
    for page in openpalm_ui::SERVICE_PAGES {
        let a = openpalm_ui::asset(page.file).expect("every page has its file (openpalm-ui's own test)");
        r = r.route(page.path, get(move || async move { file_response(a) }));
    }
    r
}
