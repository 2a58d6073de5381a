//! End-to-end tests of the `openpalm` binary on a tiny dataset drawn here: procedural
//! "palms" (dark curved creases on a skin-coloured background), different per identity,
//! slightly shifted and noisy per sample.

use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SIDE: u32 = 128;

fn palm(identity: u64, sample: u64) -> RgbImage {
    let mut id_rng = ChaCha8Rng::seed_from_u64(1000 + identity);
    let mut rng = ChaCha8Rng::seed_from_u64(identity * 7919 + sample + 1);
    let (dx, dy): (f32, f32) = (rng.gen_range(-2.0..2.0), rng.gen_range(-2.0..2.0));
    let mut img = RgbImage::from_fn(SIDE, SIDE, |x, y| {
        // Skin tone with a gentle illumination gradient and sensor noise.
        let shade = 1.0 - 0.15 * ((x + y) as f32 / (2 * SIDE) as f32);
        let n: f32 = rng.gen_range(-6.0..6.0);
        let c = |v: f32| (v * shade + n).clamp(0.0, 255.0) as u8;
        Rgb([c(210.0), c(165.0), c(140.0)])
    });
    // Principal lines (long, thick) and wrinkles (short, thin).
    let curves = 5 + id_rng.gen_range(0..3);
    let wrinkles = 25 + id_rng.gen_range(0..10);
    for k in 0..curves + wrinkles {
        let long = k < curves;
        let span = if long { 110.0 } else { 30.0 };
        let p0: (f32, f32) = (id_rng.gen_range(8.0..120.0), id_rng.gen_range(8.0..120.0));
        let angle: f32 = id_rng.gen_range(0.0..std::f32::consts::PI);
        let len = span * id_rng.gen_range(0.5..1.0);
        let p2 = (p0.0 + len * angle.cos(), p0.1 + len * angle.sin());
        let bend: f32 = id_rng.gen_range(-0.4..0.4) * len;
        let p1 = (
            (p0.0 + p2.0) / 2.0 - bend * angle.sin(),
            (p0.1 + p2.1) / 2.0 + bend * angle.cos(),
        );
        let radius: f32 = if long {
            id_rng.gen_range(1.5..2.8)
        } else {
            id_rng.gen_range(0.6..1.2)
        };
        let depth: f32 = if long { 0.55 } else { 0.75 };
        for step in 0..=400 {
            let t = step as f32 / 400.0;
            let u = 1.0 - t;
            let x = u * u * p0.0 + 2.0 * u * t * p1.0 + t * t * p2.0 + dx;
            let y = u * u * p0.1 + 2.0 * u * t * p1.1 + t * t * p2.1 + dy;
            let r = radius.ceil() as i32 + 1;
            for oy in -r..=r {
                for ox in -r..=r {
                    let (px, py) = (x as i32 + ox, y as i32 + oy);
                    if px < 0 || py < 0 || px >= SIDE as i32 || py >= SIDE as i32 {
                        continue;
                    }
                    let d = ((px as f32 - x).powi(2) + (py as f32 - y).powi(2)).sqrt();
                    if d <= radius {
                        let f = depth + (1.0 - depth) * (d / radius).powi(2);
                        let p = img.get_pixel_mut(px as u32, py as u32);
                        for c in p.0.iter_mut() {
                            *c = (*c as f32 * f).min(*c as f32) as u8;
                        }
                    }
                }
            }
        }
    }
    img
}

/// A dataset of `identities` x `samples` palms, plus optional extra rows.
struct Tiny {
    _dir: tempfile::TempDir,
    root: PathBuf,
    rows: Vec<(String, String)>,
}

fn tiny_dataset(identities: u64, samples: u64) -> Tiny {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tiny-set");
    std::fs::create_dir_all(root.join("img")).unwrap();
    let mut rows = Vec::new();
    for id in 0..identities {
        for s in 0..samples {
            let rel = format!("img/p{id}_{s}.png");
            palm(id, s).save(root.join(&rel)).unwrap();
            rows.push((rel, format!("person{id}")));
        }
    }
    Tiny {
        _dir: dir,
        root,
        rows,
    }
}

fn write_labels(path: &Path, rows: &[(String, String)]) {
    let mut text = String::from("path,identity,session\n");
    for (p, id) in rows {
        text.push_str(&format!("{p},{id},1\n"));
    }
    std::fs::write(path, text).unwrap();
}

fn openpalm(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_openpalm"))
        .args(args)
        .output()
        .expect("run openpalm")
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Parse `score S  threshold T  decision: D`.
fn parse_match(stdout: &str) -> (f32, f32, String) {
    let line = stdout.lines().next().expect("one line of output");
    let parts: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(parts[0], "score", "{line}");
    assert_eq!(parts[2], "threshold", "{line}");
    assert_eq!(parts[4], "decision:", "{line}");
    (
        parts[1].parse().unwrap(),
        parts[3].parse().unwrap(),
        parts[5..].join(" "),
    )
}

#[test]
fn match_prints_score_threshold_and_a_consistent_decision() {
    let set = tiny_dataset(2, 2);
    let p = |i: usize| set.root.join(&set.rows[i].0);
    for (a, b) in [(0, 1), (0, 2), (1, 3)] {
        let out = openpalm(&[os("match"), p(a).as_os_str(), p(b).as_os_str()]);
        assert!(out.status.success(), "stderr: {}", text(&out.stderr));
        let (score, threshold, decision) = parse_match(&text(&out.stdout));
        assert!((0.0..=1.0).contains(&score));
        assert!((0.0..=1.0).contains(&threshold));
        let expected = if score >= threshold { "match" } else { "no match" };
        assert_eq!(decision, expected);
    }
    // The same image against itself, with an explicit --input.
    let out = openpalm(&[
        os("match"),
        p(0).as_os_str(),
        p(0).as_os_str(),
        os("--input"),
        os("roi"),
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let (score, _, _) = parse_match(&text(&out.stdout));
    assert!((0.0..=1.0).contains(&score));
}

#[test]
fn match_reports_typed_errors_on_bad_files() {
    let set = tiny_dataset(1, 1);
    let good = set.root.join(&set.rows[0].0);
    let not_image = set.root.join("notes.png");
    std::fs::write(&not_image, b"this is not an image").unwrap();
    let truncated = set.root.join("truncated.png");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let empty = set.root.join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let missing = set.root.join("missing.png");

    for (bad, reason) in [
        (&not_image, "unsupported_format"),
        (&truncated, "corrupt_image"),
        (&empty, "empty"),
        (&missing, "cannot read"),
    ] {
        let out = openpalm(&[os("match"), good.as_os_str(), bad.as_os_str()]);
        assert!(!out.status.success(), "{} should fail", bad.display());
        assert!(out.stdout.is_empty());
        let err = text(&out.stderr);
        assert!(err.contains(reason), "{reason:?} not in {err:?}");
        assert!(err.contains(&*bad.to_string_lossy()), "path not in {err:?}");
    }
    let out = openpalm(&[
        os("match"),
        good.as_os_str(),
        good.as_os_str(),
        os("--input"),
        os("foot"),
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("foot"));
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut rdr = csv::Reader::from_path(path).unwrap();
    let header = rdr.headers().unwrap().iter().map(String::from).collect();
    let rows = rdr
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

#[test]
fn eval_writes_the_contract_files() {
    let mut set = tiny_dataset(4, 4);
    std::fs::write(set.root.join("img/broken.png"), b"\x89PNG\r\n\x1a\nbroken").unwrap();
    set.rows.push(("img/broken.png".into(), "person0".into()));
    set.rows.push(("img/gone.png".into(), "person1".into()));
    write_labels(&set.root.join("labels.csv"), &set.rows);
    let out_dir = set.root.parent().unwrap().join("out");

    let out = openpalm(&[
        os("eval"),
        os("--dataset"),
        set.root.as_os_str(),
        os("--input"),
        os("roi"),
        os("--out"),
        out_dir.as_os_str(),
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    for word in ["EER", "FNMR@1e-4", "FTA", "rank-1", "report.json"] {
        assert!(stdout.contains(word), "{word} not in summary:\n{stdout}");
    }

    let (header, failures) = read_csv(&out_dir.join("failures.csv"));
    assert_eq!(header, ["path", "reason"]);
    let reason = |p: &str| failures.iter().find(|r| r[0] == p).map(|r| r[1].clone());
    assert_eq!(reason("img/broken.png").as_deref(), Some("corrupt_image"));
    assert_eq!(reason("img/gone.png").as_deref(), Some("unreadable_file"));

    let (header, scores) = read_csv(&out_dir.join("scores.csv"));
    assert_eq!(header, ["a", "b", "genuine", "score"]);
    let n = set.rows.len();
    let acquired = n - failures.len();
    assert_eq!(scores.len(), acquired * (acquired - 1) / 2);
    let identity = |p: &str| set.rows.iter().find(|r| r.0 == p).map(|r| r.1.clone()).unwrap();
    for row in &scores {
        let same = identity(&row[0]) == identity(&row[1]);
        assert_eq!(row[2], if same { "1" } else { "0" });
        let s: f32 = row[3].parse().unwrap();
        assert!((0.0..=1.0).contains(&s));
    }

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["dataset"], "tiny-set");
    assert_eq!(report["images"], n);
    assert_eq!(report["failures"], failures.len());
    let genuine = report["genuine_pairs"].as_u64().unwrap() as usize;
    let impostor = report["impostor_pairs"].as_u64().unwrap() as usize;
    assert_eq!(genuine + impostor, scores.len());
    assert_eq!(genuine, scores.iter().filter(|r| r[2] == "1").count());
    let fta = report["fta_rate"].as_f64().unwrap();
    assert!((fta - failures.len() as f64 / n as f64).abs() < 1e-12);
    for key in ["eer", "rank1", "fmr_at_threshold", "fnmr_at_threshold"] {
        let v = report[key].as_f64().unwrap_or_else(|| panic!("{key}"));
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    for key in ["1e-2", "1e-3", "1e-4"] {
        let v = report["fnmr_at_fmr"][key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    assert!(report["extract_ms_median"].as_f64().unwrap() > 0.0);
    assert!(report["match_us_median"].as_f64().unwrap() > 0.0);
    let svg = std::fs::read_to_string(out_dir.join("det.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("tiny-set"));
}

#[test]
fn eval_labels_option_and_missing_labels() {
    let set = tiny_dataset(2, 3);
    // Not in the working directory, so it is looked for inside the dataset.
    write_labels(&set.root.join("labels_subset.csv"), &set.rows[..5]);
    let out_dir = set.root.parent().unwrap().join("out-subset");
    let out = openpalm(&[
        os("eval"),
        os("--dataset"),
        set.root.as_os_str(),
        os("--input"),
        os("roi"),
        os("--labels"),
        os("labels_subset.csv"),
        os("--out"),
        out_dir.as_os_str(),
    ]);
    assert!(out.status.success(), "stderr: {}", text(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["images"], 5);

    // No labels.csv in the folder: a clear error, nonzero exit, nothing written.
    let out_dir = set.root.parent().unwrap().join("out-none");
    let out = openpalm(&[
        os("eval"),
        os("--dataset"),
        set.root.as_os_str(),
        os("--input"),
        os("roi"),
        os("--out"),
        out_dir.as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("labels file not found"));
    assert!(!out_dir.exists());
}

/// `openpalm receipt verify` accepts a receipt the service signed and refuses a changed one
/// or one checked against another key.
#[test]
fn receipt_verify_detects_changes_and_other_keys() {
    use openpalm_domain::person::{sign_receipt, DeletionReceipt, Destroyed};
    let keys = openpalm_domain::keys::ServiceKeys::generate();
    let signed = sign_receipt(
        &keys.receipt_signing_key(),
        DeletionReceipt {
            receipt_id: "drc_test".into(),
            subject: "00".into(),
            deleted_at: 1_800_000_000,
            reason: "person_request".into(),
            destroyed: Destroyed {
                data_key: true,
                templates: 3,
                gallery_entries: 3,
                memberships: 1,
                links: 2,
                match_log_lines: 4,
                businesses_notified: 1,
            },
            kept: vec![],
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("receipt.json");
    std::fs::write(&file, serde_json::to_string(&signed).unwrap()).unwrap();
    let key = keys.receipt_public_key_base64();
    let ok = openpalm(&[
        os("receipt"),
        os("verify"),
        file.as_os_str(),
        os("--service-key"),
        os(&key),
    ]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("verifies"));
    let mut changed = serde_json::to_value(&signed).unwrap();
    changed["receipt"]["destroyed"]["templates"] = serde_json::json!(0);
    std::fs::write(&file, changed.to_string()).unwrap();
    let bad = openpalm(&[
        os("receipt"),
        os("verify"),
        file.as_os_str(),
        os("--service-key"),
        os(&key),
    ]);
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("does NOT verify"),
        "{}",
        text(&bad.stderr)
    );
    std::fs::write(&file, serde_json::to_string(&signed).unwrap()).unwrap();
    let other = openpalm_domain::keys::ServiceKeys::generate().receipt_public_key_base64();
    let wrong = openpalm(&[
        os("receipt"),
        os("verify"),
        file.as_os_str(),
        os("--service-key"),
        os(&other),
    ]);
    assert!(!wrong.status.success());
}

/// `openpalm audit verify --data DIR` passes on an intact log and fails, naming the record,
/// on each kind of tampering: an edited record, a removed one, two swapped.
#[test]
fn audit_verify_detects_every_kind_of_tampering() {
    use openpalm_domain::audit::{chain, AuditEntry, AuditRecord};
    use openpalm_store::{AuditStore, SqlStore};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fresh = |name: &str| {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("openpalm.db");
        rt.block_on(async {
            let s = SqlStore::connect(&SqlStore::sqlite_url(&db)).await.unwrap();
            let mut log: Vec<AuditRecord> = Vec::new();
            for i in 0..6 {
                let head = log.last().map(|r| (r.seq, r.hash.as_str()));
                let r = chain(
                    head,
                    AuditEntry {
                        at: 1_800_000_000 + i,
                        actor: "admin".into(),
                        action: format!("POST /v1/things/{i}"),
                        subject: None,
                        request_id: format!("req_{name}_{i}"),
                        status: 201,
                    },
                );
                log.push(r);
            }
            s.append_audit(&log).await.unwrap();
            s.close().await;
        });
        dir
    };
    let verify = |dir: &tempfile::TempDir| {
        openpalm(&[os("audit"), os("verify"), os("--data"), dir.path().as_os_str()])
    };
    let tamper = |dir: &tempfile::TempDir, sql: &str| {
        rt.block_on(async {
            let s = SqlStore::connect(&SqlStore::sqlite_url(&dir.path().join("openpalm.db")))
                .await
                .unwrap();
            for stmt in sql.split(';') {
                assert!(s.execute_raw(stmt).await.unwrap() > 0, "{stmt}");
            }
            s.close().await;
        })
    };
    let ok = fresh("ok");
    let out = verify(&ok);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("6 records"));
    for (name, sql, says) in [
        ("edited", "UPDATE audit_log SET actor = 'business:x' WHERE seq = 3", "record 3"),
        ("removed", "DELETE FROM audit_log WHERE seq = 2", "record 3"),
        ("swapped", "UPDATE audit_log SET seq = 100 WHERE seq = 4; UPDATE audit_log SET seq = 4 WHERE seq = 5; UPDATE audit_log SET seq = 5 WHERE seq = 100", "record 4"),
    ] {
        let d = fresh(name);
        tamper(&d, sql);
        let out = verify(&d);
        assert!(!out.status.success(), "{name} went unnoticed");
        assert!(text(&out.stderr).contains(says), "{name}: {}", text(&out.stderr));
    }
}
