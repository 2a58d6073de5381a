//! The pages `openpalm serve` serves (the person portal, the business console and the home
//! page listing them; `openpalm-ui`): static files compiled into the binary, each with the
//! security headers of `openpalm_ui::SECURITY_HEADERS`. They are not part of the API and
//! not in `/openapi.json`; they call the `/v1` API of the same origin like any client.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

async fn asset(Path(name): Path<String>) -> Response {
    match openpalm_ui::asset(&name) {
        Some(a) => openpalm_ui::response(a),
        None => crate::problem::ApiError::new(StatusCode::NOT_FOUND, "no_such_route", "no such file")
            .into_response(),
    }
}

/// The pages and `/assets/{name}`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut r = Router::new().route("/assets/{name}", get(asset));
    for page in openpalm_ui::SERVICE_PAGES {
        let a = openpalm_ui::asset(page.file).expect("every page has its file (openpalm-ui's own test)");
        r = r.route(page.path, get(move || async move { openpalm_ui::response(a) }));
    }
    r
}
