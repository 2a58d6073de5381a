//! Shared set-up for the service tests: a real server on 127.0.0.1 (ephemeral port), SQLite in
//! a tempdir, real keys; businesses, devices and readers made through the API; synthetic
//! palm ROIs from `openpalm_synth`.

#![allow(dead_code)]

pub mod venue;

use openpalm_device::{Answer, Client, Reader};
use openpalm_domain::ids::{DeviceKind, HandSide, Purpose};
use openpalm_server::{Config, Running};
use openpalm_synth::{Band, Difficulty, Generator, Kind};
use serde_json::{json, Value};

pub const ADMIN: &str = "test-admin-token-0123456789abcdef0123456789";

pub struct Env {
    pub dir: tempfile::TempDir,
    pub running: Option<Running>,
    pub base: String,
    /// The database in use: SQLite in the tempdir, or a fresh PostgreSQL database when
    /// `OPENPALM_TEST_POSTGRES_URL` is set (the same suite runs on both).
    pub database_url: String,
}

/// Whether the suite runs on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("OPENPALM_TEST_POSTGRES_URL").is_ok()
}

/// The test's database URL, made once per tempdir (kept in `DIR/database-url` so that a
/// restart finds the same database).
async fn database_url(dir: &std::path::Path) -> Option<String> {
    let admin = std::env::var("OPENPALM_TEST_POSTGRES_URL").ok()?;
    let file = dir.join("database-url");
    if let Ok(url) = std::fs::read_to_string(&file) {
        return Some(url);
    }
    let name = openpalm_domain::ids::new_id("openpalm_test");
    let url = openpalm_store::SqlStore::create_postgres_database(&admin, &name)
        .await
        .unwrap();
    std::fs::write(&file, &url).unwrap();
    Some(url)
}

pub fn config(dir: &std::path::Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("data"),
        admin_token: Some(ADMIN.into()),
        // The suites enroll and identify in bulk through one kiosk and one gate; the limits
        // themselves are tested with their defaults in tests/limits.rs.
        limits: openpalm_server::limits::LimitSettings::unlimited(),
        ..Config::default()
    }
}

impl Env {
    pub async fn start() -> Env {
        let dir = tempfile::tempdir().unwrap();
        Env::start_in(dir, |_| {}).await
    }

    pub async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> Env {
        let mut c = config(dir.path());
        c.database_url = database_url(dir.path()).await;
        tweak(&mut c);
        let database_url = c.effective_database_url();
        let running = openpalm_server::start(c).await.unwrap();
        let base = format!("http://{}", running.addr);
        Env {
            dir,
            running: Some(running),
            base,
            database_url,
        }
    }

    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(r) = self.running.take() {
            r.stop().await.unwrap();
        }
        self.dir
    }

    pub fn anonymous(&self) -> Client {
        Client::new(&self.base, None)
    }

    pub fn admin(&self) -> Client {
        Client::new(&self.base, Some(ADMIN.into()))
    }

    pub async fn business(&self, name: &str) -> Biz {
        let a = self
            .admin()
            .post("/v1/businesses", &json!({"name": name}), None)
            .await
            .unwrap();
        assert_eq!(a.status, 201, "{:?}", a.body);
        let key = a.body["api_key"]["secret"].as_str().unwrap().to_string();
        Biz {
            id: a.body["business"]["id"].as_str().unwrap().to_string(),
            key_id: a.body["api_key"]["id"].as_str().unwrap().to_string(),
            client: Client::new(&self.base, Some(key.clone())),
            key,
        }
    }

    /// Row counts of every table, to prove that a refused request wrote nothing.
    pub async fn counts(&self) -> Vec<(&'static str, i64)> {
        let store = openpalm_store::SqlStore::connect(&self.database_url)
            .await
            .unwrap();
        let c = store.table_counts().await.unwrap();
        store.close().await;
        c
    }
}

pub struct Biz {
    pub id: String,
    pub key_id: String,
    pub key: String,
    pub client: Client,
}

impl Biz {
    /// Register a device of `kind` through the API and return its reader.
    pub async fn reader(&self, kind: DeviceKind, site: &str) -> Reader {
        let service_key = self.client.service_key().await.unwrap();
        let d = self.client.register_device(kind, site).await.unwrap();
        Reader::new(d.device_id, d.key, service_key)
    }

    pub async fn enroll(&self, kiosk: &Reader, images: &[Vec<u8>], idem: &str) -> Answer {
        let captures = images
            .iter()
            .map(|i| kiosk.seal(Purpose::Enroll, i).unwrap())
            .collect();
        self.client
            .enroll(idem, 1, "roi", &[(HandSide::Left, captures)], &[])
            .await
            .unwrap()
    }

    pub async fn identify(&self, gate: &Reader, image: &[u8]) -> Answer {
        let c = gate.seal(Purpose::Identify, image).unwrap();
        self.client.identify("roi", &c).await.unwrap()
    }
}

/// PNG captures `first..first+n` of synthetic palm `identity` (clean ROIs).
pub fn palm(identity: u64, first: usize, n: usize) -> Vec<Vec<u8>> {
    let g = Generator::new(Kind::Roi, 5, Difficulty::easy()).unwrap();
    let p = g.identity_for(identity, &[Band::Visible]);
    (first..first + n)
        .map(|k| {
            let s = g.sample(identity, k, 8);
            g.render(&p, &s, Band::Visible).encode_png().unwrap()
        })
        .collect()
}

/// A capture that decodes but shows no palm: flat grey.
pub fn flat_grey_png() -> Vec<u8> {
    let img = image::GrayImage::from_pixel(150, 150, image::Luma([128u8]));
    let mut out = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

pub fn code(a: &Answer) -> &str {
    a.code().unwrap_or("")
}

pub fn body(a: &Answer) -> &Value {
    &a.body
}
