//! The pages the service serves (`/`, `/portal`, `/console`, `/assets/...`): each with its
//! type and the pages' security headers (scripts and styles from the same origin only, no
//! framing), byte for byte the files of `openpalm-ui`; an unknown file is a problem, not a
//! page; and none of them is in the API's OpenAPI document.

mod common;

use common::*;

#[tokio::test]
async fn pages_are_served_with_their_type_and_security_headers() {
    let env = Env::start().await;
    let http = reqwest::Client::new();
    for page in openpalm_ui::SERVICE_PAGES {
        let res = http
            .get(format!("{}{}", env.base, page.path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", page.path);
        let h = res.headers().clone();
        assert_eq!(h["content-type"], "text/html; charset=utf-8", "{}", page.path);
        assert_eq!(h["content-security-policy"], openpalm_ui::CONTENT_SECURITY_POLICY);
        assert_eq!(h["x-content-type-options"], "nosniff");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        let body = res.bytes().await.unwrap();
        assert_eq!(
            &body[..],
            openpalm_ui::asset(page.file).unwrap().body,
            "{}",
            page.path
        );
    }
    for asset in openpalm_ui::ASSETS {
        let res = http
            .get(format!("{}/assets/{}", env.base, asset.name))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", asset.name);
        assert_eq!(
            res.headers()["content-type"],
            asset.content_type,
            "{}",
            asset.name
        );
    }
    let missing = http
        .get(format!("{}/assets/secrets.txt", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");
    let traversal = http
        .get(format!("{}/assets/..%2Fservice-keys", env.base))
        .send()
        .await
        .unwrap();
    assert_eq!(traversal.status(), 404, "only the compiled-in files are served");

    let doc = env.anonymous().get("/openapi.json").await.unwrap().body;
    for p in ["/", "/portal", "/console", "/assets/{name}"] {
        assert!(doc["paths"].get(p).is_none(), "{p} is a page, not an API route");
    }
    env.stop().await;
}
