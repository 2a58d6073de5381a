//! `openpalm bench identify` on a small gallery: the JSON keys the bars read, a
//! saved gallery reopened (and refused when it is not the one asked for), and the code export
//! `bench/faiss_flat.py` reads.

use std::path::Path;
use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_openpalm"))
        .args(["bench", "identify", "--queries", "4", "--scope", "300", "--json"])
        .args(args)
        .output()
        .expect("run openpalm")
}

fn last_json(out: &Output) -> serde_json::Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().expect("a JSON line")).expect("JSON")
}

fn codes_file(p: &Path, records: u64) {
    let b = std::fs::read(p).unwrap();
    assert_eq!(&b[..8], b"OPCODES1");
    assert_eq!(u64::from_le_bytes(b[8..16].try_into().unwrap()), records);
    let code_bytes = u32::from_le_bytes(b[16..20].try_into().unwrap()) as u64;
    assert_eq!(code_bytes, 1536);
    assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 768);
    assert_eq!(b.len() as u64, 32 + records * (8 + code_bytes));
}

#[test]
fn save_load_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("g");
    let codes = dir.path().join("codes");
    let j = last_json(&bench(&[
        "--gallery",
        "3000",
        "--save",
        saved.to_str().unwrap(),
        "--export-codes",
        codes.to_str().unwrap(),
    ]));
    for key in ["threads_1", "threads_2"] {
        for field in ["p50_ms", "p99_ms", "qps"] {
            assert!(j[key][field].as_f64().unwrap() > 0.0, "{key}.{field}");
        }
    }
    assert!(j["scoped_300"]["p50_ms"].as_f64().unwrap() > 0.0);
    assert!(j["reopen_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(j["reopen"]["snapshot_templates"], 3000);
    assert_eq!(j["reopen"]["log_records"], 0);
    assert_eq!(j["gallery"], 3000);
    assert_eq!(j["top1_correct"]["threads_2"], 4);
    assert_eq!(
        j["matcher_path"].as_str().unwrap(),
        openpalm_engine::matcher::kernel_name()
    );
    codes_file(&codes.join("gallery.codes"), 3000);
    codes_file(&codes.join("probes.codes"), 4);

    // Reopened, not rebuilt: the same gallery answers the same probes.
    let l = last_json(&bench(&["--gallery", "3000", "--load", saved.to_str().unwrap()]));
    assert!(l["reopen_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(l["reopen"]["snapshot_templates"], 3000);
    assert_eq!(l["top1_correct"], j["top1_correct"]);

    // Another size than was saved, or saving over a saved gallery: refused.
    let other = bench(&["--gallery", "2000", "--load", saved.to_str().unwrap()]);
    assert!(!other.status.success());
    assert!(String::from_utf8_lossy(&other.stderr).contains("was saved with"));
    let again = bench(&["--gallery", "3000", "--save", saved.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds a gallery"));
}
