//! Developer tool: quick EER on a labelled set, for tuning (the product's yardstick is
//! `openpalm eval`).
use openpalm_engine::{Engine, InputKind};
use std::path::Path;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(&args[1]);
    let labels = args.get(2).map(String::as_str).unwrap_or("labels.csv");
    let input: InputKind = args.get(3).map(|s| s.parse().unwrap()).unwrap_or(InputKind::Roi);
    let text = std::fs::read_to_string(dir.join(labels)).unwrap();
    let rows: Vec<(String, String)> = text
        .lines()
        .skip(1)
        .map(|l| {
            let mut it = l.split(',');
            (it.next().unwrap().to_string(), it.next().unwrap().to_string())
        })
        .collect();
    let mut cfg = openpalm_engine::EngineConfig::default();
    let env = |k: &str| std::env::var(k).ok().map(|v| v.parse::<f32>().unwrap());
    if let Some(v) = env("WORK") {
        cfg.code.work_side = v as usize;
    }
    if let Some(v) = env("GRID") {
        cfg.code.grid = v as usize;
    }
    if let Some(v) = env("ORI") {
        cfg.code.orientations = v as usize;
    }
    if let Some(v) = env("FRAG") {
        cfg.code.fragile_fraction = v;
    }
    if let Some(v) = env("SHIFT") {
        cfg.matching.max_shift = v as usize;
    }
    if let Some(v) = env("REF") {
        cfg.matching.reference_bits = v as u32;
    }
    if let Ok(s) = std::env::var("ROT") {
        cfg.rotations_deg = s.split(',').map(|x| x.parse().unwrap()).collect();
    }
    if let Ok(s) = std::env::var("SCALES") {
        // wl:sa:sl:r,wl:sa:sl:r
        cfg.code.scales = s
            .split(',')
            .map(|t| {
                let f: Vec<f32> = t.split(':').map(|x| x.parse().unwrap()).collect();
                openpalm_engine::code::ScaleSpec {
                    wavelength: f[0],
                    sigma_across: f[1],
                    sigma_along: f[2],
                    radius: f[3] as usize,
                }
            })
            .collect();
    }
    let engine = Engine::new(cfg);
    let t0 = std::time::Instant::now();
    let mut tpls = Vec::new();
    let exclude = std::env::var("EXCLUDE").unwrap_or_default();
    for (p, id) in &rows {
        if !exclude.is_empty() && p.contains(&exclude) {
            continue;
        }
        let bytes = std::fs::read(dir.join(p)).unwrap();
        match engine.extract(&bytes, input) {
            Ok(e) => {
                if std::env::var("QSTATS").is_ok() {
                    let q = e.quality;
                    println!(
                        "Q {p} score {:.3} bright {:.3} sat {:.3} cov {:.3} sharp {:.3} tex {:.3}",
                        q.score, q.brightness, q.saturated, q.coverage, q.sharpness, q.texture
                    );
                }
                tpls.push((p.clone(), id.clone(), e.template))
            }
            Err(e) => eprintln!("FTA {p}: {e}"),
        }
    }
    eprintln!(
        "extract {:.3} ms/img",
        t0.elapsed().as_secs_f64() * 1e3 / rows.len() as f64
    );
    let t0 = std::time::Instant::now();
    let mut gen = Vec::new();
    let mut imp = Vec::new();
    let mut worst = Vec::new();
    for i in 0..tpls.len() {
        for j in i + 1..tpls.len() {
            let s = engine.score(&tpls[i].2, &tpls[j].2);
            if tpls[i].1 == tpls[j].1 {
                gen.push(s);
                worst.push((s, tpls[i].0.clone(), tpls[j].0.clone()));
            } else {
                imp.push(s);
            }
        }
    }
    let n = gen.len() + imp.len();
    eprintln!("match {:.3} us/pair", t0.elapsed().as_secs_f64() * 1e6 / n as f64);
    gen.sort_by(|a, b| a.total_cmp(b));
    imp.sort_by(|a, b| b.total_cmp(a));
    // EER by sweeping thresholds.
    let mut eer = 1.0f64;
    let mut best = (0.0, 0.0);
    for &t in gen.iter().chain(imp.iter()) {
        let fnmr = gen.iter().filter(|&&g| g < t).count() as f64 / gen.len() as f64;
        let fmr = imp.iter().filter(|&&i| i >= t).count() as f64 / imp.len() as f64;
        let e = (fnmr + fmr) / 2.0;
        if (fnmr - fmr).abs() < 0.02 && e < eer || (fnmr.max(fmr)) < eer {
            eer = fnmr.max(fmr);
            best = (fnmr, fmr);
        }
    }
    let fnmr_at = |fmr: f64| {
        let k = (fmr * imp.len() as f64).floor() as usize;
        let t = imp[k.min(imp.len() - 1)];
        gen.iter().filter(|&&g| g <= t).count() as f64 / gen.len() as f64
    };
    let gm = gen.iter().sum::<f32>() / gen.len() as f32;
    let im = imp.iter().sum::<f32>() / imp.len() as f32;
    let isd = (imp.iter().map(|v| (v - im).powi(2)).sum::<f32>() / imp.len() as f32).sqrt();
    println!(
        "EER~{:.3}% ({:.3}/{:.3}) FNMR@1e-2 {:.3}% @1e-3 {:.3}% @1e-4 {:.3}%  gen mean {:.3} imp mean {:.3} sd {:.3} (gen {} imp {})",
        eer * 100.0, best.0 * 100.0, best.1 * 100.0,
        fnmr_at(1e-2) * 100.0, fnmr_at(1e-3) * 100.0, fnmr_at(1e-4) * 100.0,
        gm, im, isd, gen.len(), imp.len()
    );
    worst.sort_by(|a, b| a.0.total_cmp(&b.0));
    let k = (1e-4 * imp.len() as f64).floor() as usize;
    let t4 = imp[k.min(imp.len() - 1)];
    println!(
        "  thr@1e-4 {t4:.3}; genuine below: {}",
        worst.iter().filter(|w| w.0 <= t4).count()
    );
    for w in worst.iter().take(12) {
        println!("  low genuine {:.3} {} {}", w.0, w.1, w.2);
    }
    println!("  top impostor {:?}", &imp[..5]);
}
