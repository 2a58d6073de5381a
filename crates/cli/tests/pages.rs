//! The pages end to end, in headless Chromium (Debian's `chromium` and `chromium-driver`,
//! installed by `.ci/run`), against `openpalm demo` as a user starts it: the kiosk, the
//! gate and the checkout (served by the demo's reader agent), the person portal and the
//! business console (served by the service). Each flow checks what a person sees, and keeps
//! screenshots under `target/tmp/ui-screenshots/`.
//!
//! Without Chromium, the test installs it with `crates/cli/scripts/install-chromium.sh`
//! (Debian's packages); when that cannot be done it skips with a message, and fails when
//! `CI=true`.

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Chromium and its driver, installed by the project's script when missing; or why not:
/// skip outside CI, fail in it.
fn browser_or_skip() -> bool {
    let present = || [CHROMIUM, CHROMEDRIVER].iter().all(|p| Path::new(p).exists());
    if !present() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-chromium.sh");
        eprintln!("installing Chromium with {}", script.display());
        let _ = Command::new(&script).status();
    }
    if present() {
        return true;
    }
    let msg = format!(
        "{CHROMIUM} or {CHROMEDRIVER} not found, and crates/cli/scripts/install-chromium.sh \
         could not install Debian's chromium and chromium-driver"
    );
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{msg}");
    }
    eprintln!("skipping: {msg}");
    false
}

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `openpalm demo` started as the README says, on free ports, in a fresh folder.
struct Demo {
    _child: Killed,
    data: PathBuf,
    /// Every URL it printed, by path (`/kiosk`, `/portal`, ...).
    urls: Vec<String>,
    /// Every line it printed.
    lines: Vec<String>,
}

impl Demo {
    fn start(data: &Path) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_openpalm"))
            .args(["demo", "--listen", "127.0.0.1:0", "--people", "60", "--data"])
            .arg(data)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start openpalm demo");
        let stdout = child.stdout.take().unwrap();
        let child = Killed(child);
        let mut lines = Vec::new();
        let mut out = BufReader::new(stdout).lines();
        for line in out.by_ref() {
            let line = line.expect("demo output");
            let done = line.starts_with("Ctrl-C stops the demo");
            lines.push(line);
            if done {
                break;
            }
        }
        // What it prints after (the sandbox SMS lines) is read and dropped.
        std::thread::spawn(move || out.for_each(drop));
        assert!(
            lines.iter().any(|l| l.starts_with("Ctrl-C stops the demo")),
            "the demo ended before it was ready: {lines:#?}"
        );
        let urls = lines
            .iter()
            .filter(|l| l.starts_with("http://"))
            .cloned()
            .collect();
        Demo {
            _child: child,
            data: data.to_path_buf(),
            urls,
            lines,
        }
    }

    /// The URL printed on a line of its own that ends with `path`.
    fn url(&self, path: &str) -> String {
        self.urls
            .iter()
            .find(|u| u.ends_with(path))
            .unwrap_or_else(|| panic!("the demo printed no URL for {path}: {:#?}", self.urls))
            .clone()
    }

    fn image(&self, name: &str) -> String {
        let p = self.data.join("demo-images").join(name);
        assert!(p.exists(), "the demo wrote no {}", p.display());
        p.display().to_string()
    }

    /// The API key printed after `label`.
    fn api_key(&self, label: &str) -> String {
        self.lines
            .iter()
            .find(|l| l.contains(label))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("no API key for {label}"))
            .to_string()
    }

    /// The last sign-in code the service sent to `phone`.
    fn code_for(&self, phone: &str) -> String {
        let path = self.data.join("sign-in-codes.jsonl");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if let Some(c) = text
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .rfind(|v| v["phone"] == phone)
            {
                return c["code"].as_str().unwrap().to_string();
            }
            assert!(Instant::now() < deadline, "no code was sent to {phone}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn browser() -> (Killed, Client) {
    let port = free_port();
    let driver = Killed(
        Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            // Chromium's fake camera (a moving test pattern) stands in for a webcam.
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1200,1100", "--use-fake-device-for-media-stream",
                     "--use-fake-ui-for-media-stream"],
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => break c,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("chromedriver did not start: {e}"),
        }
    };
    (driver, client)
}

/// Where screenshots are kept (test artefacts).
fn shots() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Keep a screenshot, and check that the screen shows no programming leftovers.
async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(shots().join(format!("{name}.png")), png).unwrap();
    let body = c
        .execute("return document.body.innerText;", vec![])
        .await
        .unwrap();
    let body = body.as_str().unwrap_or_default();
    let leftover = body
        .split(|ch: char| !ch.is_alphanumeric())
        .find(|w| ["null", "undefined", "NaN"].contains(w));
    assert!(leftover.is_none(), "{name} shows {leftover:?}: {body}");
    assert!(
        !body.contains("[object Object]"),
        "{name} shows an object: {body}"
    );
}

async fn el(c: &Client, css: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
}

async fn click(c: &Client, css: &str) {
    el(c, css)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

async fn type_into(c: &Client, css: &str, text: &str) {
    let e = el(c, css).await;
    e.clear().await.unwrap();
    e.send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

async fn text(c: &Client, css: &str) -> String {
    el(c, css).await.text().await.unwrap()
}

/// Wait until `attr` of `css` is none of `transient`; its value.
async fn settled(c: &Client, css: &str, attr: &str, transient: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = el(c, css).await.attr(attr).await.unwrap().unwrap_or_default();
        if !transient.contains(&v.as_str()) {
            return v;
        }
        assert!(Instant::now() < deadline, "{css} stayed {attr}={v:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Wait until `css` is shown.
async fn shown(c: &Client, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await {
            if e.is_displayed().await.unwrap_or(false) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{css} never shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A palm at the gate: the decision and what the lane shows under it.
async fn at_gate(c: &Client, url: &str, image: &str, input: &str) -> (String, String, String) {
    c.goto(url).await.unwrap();
    el(c, "#event-name").await;
    settled(c, "#input-kind", "id", &[]).await;
    c.execute(
        "document.querySelector('#input-kind').value = arguments[0];",
        vec![json!(input)],
    )
    .await
    .unwrap();
    el(c, "[data-testid=capture-file]")
        .await
        .send_keys(image)
        .await
        .unwrap();
    let decision = settled(c, "#result", "data-decision", &["waiting", "checking"]).await;
    (decision, text(c, "#why").await, text(c, "#took").await)
}

/// A payment at the checkout: the outcome and the line under it.
async fn at_checkout(c: &Client, url: &str, amount: &str, image: &str, input: &str) -> (String, String) {
    c.goto(url).await.unwrap();
    el(c, "#store-name").await;
    type_into(c, "#amount", amount).await;
    c.execute(
        "document.querySelector('#input-kind').value = arguments[0];",
        vec![json!(input)],
    )
    .await
    .unwrap();
    el(c, "[data-testid=capture-file]")
        .await
        .send_keys(image)
        .await
        .unwrap();
    let outcome = settled(c, "#result", "data-outcome", &["waiting", "checking"]).await;
    (outcome, text(c, "#why").await)
}

/// The kiosk from consent to the finish: three captures of one hand (and of the other hand,
/// when given), links; the pseudonymous ID it shows.
async fn at_kiosk(
    c: &Client,
    url: &str,
    images: &[String],
    other_hand: Option<&[String]>,
    input: &str,
    member: &str,
    phone: &str,
) -> String {
    c.goto(url).await.unwrap();
    el(c, "#consent-text").await;
    let start = el(c, "#start").await;
    assert!(
        start.attr("disabled").await.unwrap().is_some(),
        "capturing starts only after agreeing"
    );
    click(c, "#agree").await;
    click(c, "#join-partner").await;
    shot(c, "kiosk-1-consent").await;
    click(c, "#start").await;
    c.execute(
        "document.querySelector('#input-kind').value = arguments[0];",
        vec![json!(input)],
    )
    .await
    .unwrap();
    if other_hand.is_some() {
        click(c, "#both-hands").await;
    }
    el(c, "[data-testid=capture-file]")
        .await
        .send_keys(&images.join("\n"))
        .await
        .unwrap();
    if let Some(right) = other_hand {
        // The first hand's three are done; the page asks for the other hand.
        let deadline = Instant::now() + Duration::from_secs(30);
        while text(c, "#hands-done").await.is_empty() {
            assert!(
                Instant::now() < deadline,
                "the kiosk never asked for the other hand"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        shot(c, "kiosk-2-other-hand").await;
        assert_eq!(
            el(c, "#hand").await.prop("value").await.unwrap().as_deref(),
            Some("right")
        );
        el(c, "[data-testid=capture-file]")
            .await
            .send_keys(&right.join("\n"))
            .await
            .unwrap();
    }
    shown(c, "#links").await;
    type_into(c, "#member-id", member).await;
    type_into(c, "#phone", phone).await;
    shot(c, "kiosk-3-links").await;
    click(c, "#enroll").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if c.find(Locator::Css("#done"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
        {
            break;
        }
        if let Ok(e) = c.find(Locator::Css("#kiosk-error .notice")).await {
            panic!("the kiosk refused: {}", e.text().await.unwrap());
        }
        assert!(Instant::now() < deadline, "the kiosk never finished");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    text(c, "[data-testid=pseudonym]").await
}

/// A real whole-hand identity of `coep-hands-dev` with four usable photos (the set has at
/// most four per hand), if the set is there; the engine checks them as the kiosk would.
fn real_hand() -> Option<Vec<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/coep-hands-dev");
    if !dir.exists() {
        let msg = format!("{} not found: the real-image kiosk flow needs it", dir.display());
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{msg}");
        }
        eprintln!("skipping the real-image flow: {msg}");
        return None;
    }
    // Chromium takes only canonical paths for file inputs.
    let dir = dir.canonicalize().unwrap();
    let mut by_id: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let mut r = csv::Reader::from_path(dir.join("labels.csv")).expect("labels.csv");
    for rec in r.records() {
        let rec = rec.unwrap();
        by_id
            .entry(rec[1].to_string())
            .or_default()
            .push(dir.join(&rec[0]).display().to_string());
    }
    let engine = openpalm_engine::Engine::default();
    let found = by_id.into_values().find_map(|mut paths| {
        paths.sort();
        let ok = paths.len() >= 4
            && paths[..4].iter().all(|p| {
                engine
                    .extract(&std::fs::read(p).unwrap(), openpalm_engine::InputKind::Hand)
                    .is_ok()
            });
        ok.then(|| paths[..4].to_vec())
    });
    Some(found.expect("coep-hands-dev has a hand with four usable photos"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_walks_its_main_flow_in_chromium() {
    if !browser_or_skip() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let demo = Demo::start(&tmp.path().join("demo"));
    let (_driver, c) = browser().await;
    let (gate, checkout, kiosk) = (demo.url("/gate"), demo.url("/checkout"), demo.url("/kiosk"));

    // The gate: a holder is admitted, a member without a ticket and a stranger are not.
    let (d, why, took) = at_gate(&c, &gate, &demo.image("ada-gate.png"), "hand").await;
    shot(&c, "gate-admit").await;
    assert_eq!(d, "admit", "Ada holds a ticket: {why}");
    assert!(took.contains(" ms at the service"), "the time it took: {took:?}");
    assert_eq!(text(&c, "#verdict").await, "ADMIT");
    assert!(why.starts_with("Welcome in"), "{why}");
    let (d, why, _) = at_gate(&c, &gate, &demo.image("ben-gate.png"), "hand").await;
    shot(&c, "gate-deny-no-ticket").await;
    assert_eq!(
        (d.as_str(), why.as_str()),
        ("deny", "No ticket for this event on this palm")
    );
    let (d, why, _) = at_gate(&c, &gate, &demo.image("stranger.png"), "hand").await;
    shot(&c, "gate-deny-stranger").await;
    assert_eq!(d, "deny");
    assert!(why.starts_with("Palm not recognised"), "{why}");

    // The checkout: approved with the amount and card, declined with the reason.
    let (o, why) = at_checkout(&c, &checkout, "12.50", &demo.image("ada-checkout.png"), "hand").await;
    shot(&c, "checkout-approved").await;
    assert_eq!(o, "approved", "{why}");
    assert!(why.contains("12.50") && why.contains("4242"), "{why}");
    let (o, why) = at_checkout(&c, &checkout, "8", &demo.image("ben-checkout.png"), "hand").await;
    shot(&c, "checkout-declined").await;
    assert_eq!(o, "declined");
    assert!(why.contains("Insufficient funds"), "{why}");

    // The kiosk's live guidance: a photo with no hand is refused with the engine's reason.
    c.goto(&kiosk).await.unwrap();
    click(&c, "#agree").await;
    click(&c, "#start").await;
    let blank = tmp.path().join("blank.png");
    image::RgbImage::from_pixel(640, 480, image::Rgb([128, 128, 128]))
        .save(&blank)
        .unwrap();
    el(&c, "[data-testid=capture-file]")
        .await
        .send_keys(&blank.display().to_string())
        .await
        .unwrap();
    let code = settled(&c, "#guidance", "data-code", &[""]).await;
    shot(&c, "kiosk-2-guidance").await;
    assert_eq!(code, "no_hand", "a blank photo is not a palm");
    assert_eq!(text(&c, "#guidance").await, "Hold your open hand over the reader");
    assert_eq!(
        text(&c, "#shot-1").await,
        "Capture 1",
        "a refused capture does not count"
    );
    // The camera: frames are checked as they come, and a test pattern is no palm.
    c.execute("document.querySelector('#guidance').dataset.code = '';", vec![])
        .await
        .unwrap();
    click(&c, "[data-testid=camera]").await;
    let code = settled(&c, "#guidance", "data-code", &[""]).await;
    shot(&c, "kiosk-2-camera").await;
    assert_ne!(code, "ok", "Chromium's test pattern is not a palm");
    assert_eq!(text(&c, "#shot-1").await, "Capture 1");
    click(&c, "[data-testid=camera]").await;

    // A synthetic newcomer enrolls, then is recognised at the gate (no ticket yet) and pays.
    let newcomer: Vec<String> = (1..=3)
        .map(|k| demo.image(&format!("newcomer-{k}.png")))
        .collect();
    let right: Vec<String> = (1..=3)
        .map(|k| demo.image(&format!("newcomer-right-{k}.png")))
        .collect();
    let pp = at_kiosk(
        &c,
        &kiosk,
        &newcomer,
        Some(&right),
        "hand",
        "TIX-NEW01",
        "+447700900099",
    )
    .await;
    shot(&c, "kiosk-4-done").await;
    assert!(text(&c, "#done-detail").await.contains("Both your palms"));
    assert!(pp.starts_with("pp_"), "{pp}");
    let (d, why, _) = at_gate(&c, &gate, &demo.image("newcomer-gate.png"), "hand").await;
    assert_eq!(
        (d.as_str(), why.as_str()),
        ("deny", "No ticket for this event on this palm")
    );
    let (o, why) = at_checkout(
        &c,
        &checkout,
        "3.20",
        &demo.image("newcomer-checkout.png"),
        "hand",
    )
    .await;
    assert_eq!(o, "approved", "the newcomer linked a sandbox Visa: {why}");

    // A real hand (COEP) through the same kiosk, then the gate and the checkout with its
    // fourth photo (each sealed afresh).
    if let Some(real) = real_hand() {
        let pp = at_kiosk(&c, &kiosk, &real[..3], None, "hand", "TIX-REAL1", "+447700900098").await;
        shot(&c, "kiosk-real-done").await;
        assert!(pp.starts_with("pp_"));
        let (d, why, _) = at_gate(&c, &gate, &real[3], "hand").await;
        shot(&c, "gate-real").await;
        assert_eq!(
            (d.as_str(), why.as_str()),
            ("deny", "No ticket for this event on this palm"),
            "a real palm enrolled at the kiosk is recognised at the gate"
        );
        let (o, why) = at_checkout(&c, &checkout, "4.80", &real[3], "hand").await;
        shot(&c, "checkout-real").await;
        assert_eq!(o, "approved", "{why}");
    }

    portal(&c, &demo).await;
    portal_leave(&c, &demo).await;
    console(&c, &demo).await;

    // Phone-sized screens fit without scrolling sideways.
    c.set_window_size(390, 844).await.unwrap();
    for (url, name) in [
        (gate.clone(), "phone-gate"),
        (checkout.clone(), "phone-checkout"),
        (kiosk.clone(), "phone-kiosk"),
        (demo.url("/console"), "phone-console"),
        (demo.url("/portal"), "phone-portal"),
    ] {
        c.goto(&url).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let wide = c
            .execute(
                "return document.documentElement.scrollWidth > window.innerWidth + 1;",
                vec![],
            )
            .await
            .unwrap();
        shot(&c, name).await;
        assert_eq!(wide, json!(false), "{name} scrolls sideways at 390 px");
    }
    c.close().await.unwrap();
}

async fn sign_in(c: &Client, demo: &Demo, phone: &str) {
    c.goto(&demo.url("/portal")).await.unwrap();
    type_into(c, "#phone", phone).await;
    click(c, "#send-code").await;
    let code = demo.code_for(phone);
    type_into(c, "#code", &code).await;
    click(c, "#sign-in").await;
    shown(c, "#me").await;
    el(c, "[data-testid=businesses] [data-business]").await;
}

/// Ben leaves Demo Store from his portal (after a first "Cancel" that changes nothing): the
/// store's till no longer knows his palm, while the venue still does.
async fn portal_leave(c: &Client, demo: &Demo) {
    sign_in(c, demo, "+447700900002").await;
    let mut store = None;
    for b in c
        .find_all(Locator::Css("[data-testid=businesses] [data-business]"))
        .await
        .unwrap()
    {
        if b.text().await.unwrap().contains("Demo Store") {
            store = b.attr("data-business").await.unwrap();
        }
    }
    let store = store.expect("Ben's portal lists Demo Store");
    let card = format!("[data-business='{store}']");
    click(c, &format!("[data-testid=leave-{store}]")).await;
    click(c, "[data-testid=confirm-no]").await;
    assert!(
        c.find(Locator::Css(&card)).await.is_ok(),
        "cancelling leaves nothing"
    );
    click(c, &format!("[data-testid=leave-{store}]")).await;
    shot(c, "portal-leave-confirm").await;
    click(c, "[data-testid=confirm-yes]").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while c.find(Locator::Css(&card)).await.is_ok() {
        assert!(Instant::now() < deadline, "Demo Store still listed after leaving");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shot(c, "portal-left-store").await;
    assert!(text(c, "#me").await.contains("Demo Tickets"));
    let (o, why) = at_checkout(
        c,
        &demo.url("/checkout"),
        "2.00",
        &demo.image("ben-checkout.png"),
        "hand",
    )
    .await;
    assert_eq!(o, "not_recognised", "Ben left the store: {why}");
    let (d, why, _) = at_gate(c, &demo.url("/gate"), &demo.image("ben-gate.png"), "hand").await;
    assert_eq!(
        (d.as_str(), why.as_str()),
        ("deny", "No ticket for this event on this palm")
    );
}

/// The person portal: Ada signs in with her phone's code, sees her businesses, purchases and
/// entries and nobody else's, exports, and deletes herself; her palm no longer opens the gate.
async fn portal(c: &Client, demo: &Demo) {
    sign_in(c, demo, "+447700900001").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    shot(c, "portal-signed-in").await;
    let page = text(c, "#me").await;
    for want in ["Demo Tickets", "Demo Store", "TIX-ADA"] {
        assert!(page.contains(want), "the portal shows {want}: {page}");
    }
    let purchases = text(c, "[data-testid=purchases]").await;
    assert!(
        purchases.contains("12.00"),
        "Ada's programme (12.00): {purchases}"
    );
    assert!(
        purchases.contains("12.50"),
        "Ada's purchase at the till (12.50): {purchases}"
    );
    let entries = text(c, "[data-testid=entries]").await;
    assert!(!entries.trim().is_empty(), "Ada's entry at the gate");
    let log = text(c, "[data-testid=match-log]").await;
    assert!(!log.trim().is_empty(), "every match is in the person's log");
    for other in ["TIX-BEN", "TIX-NEW01", "TIX-10000", "+447700900002"] {
        assert!(!page.contains(other), "Ada's portal shows {other}");
    }

    click(c, "[data-testid=delete-me]").await;
    click(c, "[data-testid=confirm-yes]").await;
    shown(c, "[data-testid=deleted]").await;
    shot(c, "portal-deleted").await;
    let done = text(c, "[data-testid=deleted]").await;
    assert!(done.contains("rcpt_") || done.contains("receipt"), "{done}");
    let (d, why, _) = at_gate(c, &demo.url("/gate"), &demo.image("ada-again.png"), "hand").await;
    assert_eq!(d, "deny", "a deleted palm opens nothing: {why}");
    assert!(why.starts_with("Palm not recognised"), "{why}");
}

/// The business console: each business signs in with its key and sees its own devices,
/// events and figures, never the other's; a new API key's secret is shown once.
async fn console(c: &Client, demo: &Demo) {
    console_sign_in(c, demo, "Demo Store's API key").await;
    shot(c, "console-today").await;
    let today = text(c, "[data-testid=today]").await;
    assert!(today.contains("Demo Store"), "{today}");
    click(c, "[data-testid=tab-devices]").await;
    el(c, "[data-testid=devices] [data-device]").await;
    shot(c, "console-devices").await;
    let devices = text(c, "[data-testid=devices]").await;
    assert!(devices.contains("Arena shop"), "the store's checkout: {devices}");
    assert!(
        !devices.contains("Arena north gate"),
        "the venue's gate is not the store's: {devices}"
    );
    click(c, "[data-testid=tab-events]").await;
    el(c, "[data-testid=events]").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = text(c, "[data-testid=events]").await;
    assert!(
        !events.contains("Demo Night"),
        "the venue's event is not the store's: {events}"
    );
    click(c, "[data-testid=tab-keys]").await;
    el(c, "[data-testid=keys] [data-key]").await;
    click(c, "[data-testid=create-key]").await;
    let refused = text(c, "#console-error").await;
    assert!(refused.contains("scope"), "a key needs a scope: {refused:?}");
    click(c, "[data-testid=key-scope-identify]").await;
    click(c, "[data-testid=create-key]").await;
    let secret = text(c, "[data-testid=secret]").await;
    shot(c, "console-keys").await;
    assert!(secret.starts_with("op_test_"), "{secret}");
    click(c, "[data-testid=tab-payments]").await;
    el(c, "[data-testid=payments] [data-payment]").await;
    shot(c, "console-payments").await;

    c.execute("sessionStorage.clear();", vec![]).await.unwrap();
    console_sign_in(c, demo, "Demo Tickets' API key").await;
    let today = text(c, "[data-testid=today]").await;
    assert!(today.contains("Demo Night"), "the venue's event figures: {today}");
    click(c, "[data-testid=tab-devices]").await;
    el(c, "[data-testid=devices] [data-device]").await;
    let devices = text(c, "[data-testid=devices]").await;
    assert!(devices.contains("Arena north gate"), "{devices}");
    assert!(
        !devices.contains("Arena shop"),
        "the store's till is not the venue's: {devices}"
    );
    click(c, "[data-testid=tab-events]").await;
    el(c, "[data-testid=events] [data-event]").await;
    shot(c, "console-events").await;
    click(c, "[data-testid=tab-payments]").await;
    el(c, "[data-testid=payments]").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        c.find(Locator::Css("[data-testid=payments] [data-payment]"))
            .await
            .is_err(),
        "the store's payments are not the venue's"
    );
}

async fn console_sign_in(c: &Client, demo: &Demo, key_label: &str) {
    c.goto(&demo.url("/console")).await.unwrap();
    type_into(c, "#api-key", &demo.api_key(key_label)).await;
    click(c, "#sign-in").await;
    el(c, "[data-testid=today] [data-testid=key-info]").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
}
