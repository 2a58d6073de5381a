//! OpenPalm's pages, compiled into the binary.
//!
//! Plain HTML, CSS and JavaScript (no framework, no build step), so that `openpalm serve`
//! and the reader agent serve them as they are. Two audiences, two servers:
//!
//! - the service (`openpalm serve`) serves [`SERVICE_PAGES`]: the person portal and the
//!   business console, which call the versioned `/v1` API of the same origin;
//! - a reader (`openpalm reader`, and `openpalm demo`) serves [`READER_PAGES`]: the kiosk,
//!   the gate and the checkout. A reader page hands the image it captured to the reader
//!   process that served it, which seals it to the service key (HPKE) and signs it with the
//!   device key: a raw capture never travels to the service unsealed.
//!
//! Every page loads its script and style from `/assets/` (no inline script or style), so
//! [`CONTENT_SECURITY_POLICY`] can forbid everything else.

/// One static file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// File name, as served under `/assets/` (pages also at their own path).
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $ct:expr) => {
        Asset {
            name: $name,
            content_type: $ct,
            body: include_bytes!(concat!("../assets/", $name)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Every file, pages and their scripts and styles.
pub const ASSETS: &[Asset] = &[
    asset!("style.css", CSS),
    asset!("app.js", JS),
    asset!("home.html", HTML),
    asset!("portal.html", HTML),
    asset!("portal.js", JS),
    asset!("console.html", HTML),
    asset!("console.js", JS),
    asset!("capture.js", JS),
    asset!("reader.html", HTML),
    asset!("kiosk.html", HTML),
    asset!("kiosk.js", JS),
    asset!("gate.html", HTML),
    asset!("gate.js", JS),
    asset!("checkout.html", HTML),
    asset!("checkout.js", JS),
];

/// A page: the path it is served at and its file.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub path: &'static str,
    pub file: &'static str,
    pub title: &'static str,
}

/// The pages `openpalm serve` serves.
pub const SERVICE_PAGES: &[Page] = &[
    Page {
        path: "/",
        file: "home.html",
        title: "OpenPalm",
    },
    Page {
        path: "/portal",
        file: "portal.html",
        title: "Your palm and your data",
    },
    Page {
        path: "/console",
        file: "console.html",
        title: "Business console",
    },
];

/// The pages a reader serves.
pub const READER_PAGES: &[Page] = &[
    Page {
        path: "/",
        file: "reader.html",
        title: "Reader",
    },
    Page {
        path: "/kiosk",
        file: "kiosk.html",
        title: "Enrollment kiosk",
    },
    Page {
        path: "/gate",
        file: "gate.html",
        title: "Palm lane gate",
    },
    Page {
        path: "/checkout",
        file: "checkout.html",
        title: "Checkout",
    },
];

/// The file named `name`, if there is one.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// The policy every page is served with: scripts, styles, images and calls from the same
/// origin only (images also as `data:`/`blob:` URLs, for the capture preview), no frames.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; form-action 'none'; \
frame-ancestors 'none'; base-uri 'none'";

/// Headers every page and asset is served with, besides its content type.
pub const SECURITY_HEADERS: &[(&str, &str)] = &[
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-cache"),
    (
        "permissions-policy",
        "camera=(self), microphone=(), geolocation=()",
    ),
];

/// `asset` as a response: its type and [`SECURITY_HEADERS`] (for the service and the
/// reader agent, which both serve these files).
#[cfg(feature = "axum")]
pub fn response(asset: &Asset) -> axum::response::Response {
    use axum::http::{header, HeaderName, HeaderValue, StatusCode};
    use axum::response::IntoResponse;
    let mut res = (StatusCode::OK, asset.body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    for (k, v) in SECURITY_HEADERS {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_has_its_file_and_every_file_a_type() {
        for p in SERVICE_PAGES.iter().chain(READER_PAGES) {
            let a = asset(p.file).unwrap_or_else(|| panic!("{} has no file", p.path));
            assert_eq!(a.content_type, HTML);
            let text = std::str::from_utf8(a.body).unwrap();
            assert!(text.contains("<html lang="), "{}: no language", p.file);
            assert!(text.contains(&format!("<title>{}", p.title)), "{}: title", p.file);
        }
        for a in ASSETS {
            assert!([HTML, CSS, JS].contains(&a.content_type), "{}", a.name);
            assert!(!a.body.is_empty(), "{} is empty", a.name);
        }
    }

    #[test]
    fn no_page_carries_inline_script_or_style() {
        for a in ASSETS.iter().filter(|a| a.content_type == HTML) {
            let text = std::str::from_utf8(a.body).unwrap();
            for (i, _) in text.match_indices("<script") {
                let tag = &text[i..i + text[i..].find('>').unwrap()];
                assert!(tag.contains("src=\"/assets/"), "{}: inline script {tag}", a.name);
            }
            assert!(!text.contains("<style"), "{}: inline style", a.name);
            assert!(!text.contains(" style=\""), "{}: style attribute", a.name);
            assert!(!text.contains(" onclick="), "{}: inline handler", a.name);
        }
    }

    #[test]
    fn every_file_a_page_loads_exists() {
        for a in ASSETS.iter().filter(|a| a.content_type == HTML) {
            let text = std::str::from_utf8(a.body).unwrap();
            for (i, _) in text.match_indices("/assets/") {
                let rest = &text[i + 8..];
                let name = &rest[..rest.find('"').unwrap()];
                assert!(asset(name).is_some(), "{} loads missing {name}", a.name);
            }
        }
    }
}
