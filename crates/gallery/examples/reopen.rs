//! Time reopening a durable gallery (snapshot load plus log tail replay).
//!
//! `cargo run --release -p openpalm-gallery --example reopen -- LOG [GRID PLANES]`
//!
//! `LOG` is a store's log path (`openpalm bench identify --save DIR` writes
//! `DIR/gallery.log`); the layout defaults to the engine's. Prints the wall-clock time, the
//! process's CPU time over the reopen (a figure less bent by other load on the machine) and
//! what the reopen found.

use openpalm_engine::MatchConfig;
use openpalm_gallery::{Layout, Store};
use std::time::Instant;

/// User plus system CPU seconds this process has used (Linux; `None` elsewhere).
fn cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses): utime and stime are the
    // 12th and 13th, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(log) = args.first() else {
        eprintln!("usage: reopen LOG [GRID PLANES]");
        std::process::exit(2);
    };
    let layout = match (args.get(1), args.get(2)) {
        (Some(g), Some(p)) => Layout {
            grid: g.parse().expect("grid"),
            planes: p.parse().expect("planes"),
        },
        _ => Layout::ENGINE_DEFAULT,
    };
    let cpu0 = cpu_s();
    let t = Instant::now();
    let (store, report) = match Store::open(log, layout, MatchConfig::default()) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{log}: {e}");
            std::process::exit(1);
        }
    };
    let wall_ms = t.elapsed().as_secs_f64() * 1e3;
    let cpu_ms = cpu_s().zip(cpu0).map(|(b, a)| (b - a) * 1e3);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "reopened {} templates in {wall_ms:.0} ms wall, {} CPU ({} threads); {report:?}; load {}",
        store.gallery().len(),
        cpu_ms.map_or("?".into(), |c| format!("{c:.0} ms")),
        rayon::current_num_threads(),
        load.trim()
    );
}
