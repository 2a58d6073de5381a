//! Realism check: the engine's genuine and impostor score distributions on synthetic data
//! against a real set, from the `scores.csv` files that `openpalm eval` writes (or from
//! scores computed in memory), with one histogram plot of all four distributions.
//!
//! The bar: impostor mean and standard deviation within 10% of the real set's, and
//! genuine distributions that overlap. Synthetic figures are never accuracy claims.

use crate::error::SynthError;
use std::path::Path;

/// Genuine and impostor similarity scores of one set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScoreSet {
    pub genuine: Vec<f32>,
    pub impostor: Vec<f32>,
}

/// Count, mean and population standard deviation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub count: usize,
    pub mean: f64,
    pub sd: f64,
    pub min: f32,
    pub max: f32,
}

impl Stats {
    pub fn of(v: &[f32]) -> Stats {
        let n = v.len().max(1) as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        Stats {
            count: v.len(),
            mean,
            sd: var.sqrt(),
            min: v.iter().copied().fold(f32::INFINITY, f32::min),
            max: v.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        }
    }
}

/// Histogram bins over [0, 1].
pub const BINS: usize = 50;

/// Normalised histogram (fractions summing to 1) over [0, 1] in [`BINS`] bins.
pub fn histogram(v: &[f32]) -> Vec<f64> {
    let mut h = vec![0.0; BINS];
    for &x in v {
        h[((x.clamp(0.0, 1.0) * BINS as f32) as usize).min(BINS - 1)] += 1.0;
    }
    let n = v.len().max(1) as f64;
    h.iter().map(|c| c / n).collect()
}

/// Overlap of two distributions: the sum of bin-wise minima of their normalised histograms
/// (1 = identical, 0 = disjoint).
pub fn overlap(a: &[f32], b: &[f32]) -> f64 {
    histogram(a)
        .iter()
        .zip(&histogram(b))
        .map(|(x, y)| x.min(*y))
        .sum()
}

/// Read an `openpalm eval` `scores.csv` (`a,b,genuine,score`).
pub fn read_eval_scores(path: &Path) -> Result<ScoreSet, SynthError> {
    let bad = |line: u64, message: String| SynthError::Scores {
        path: path.to_path_buf(),
        line,
        message,
    };
    let mut rdr = csv::Reader::from_path(path).map_err(|source| SynthError::Csv {
        path: path.to_path_buf(),
        source,
    })?;
    let headers = rdr
        .headers()
        .map_err(|e| bad(1, e.to_string()))?
        .iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| bad(1, format!("no {name:?} column (expected a,b,genuine,score)")))
    };
    let (gi, si) = (col("genuine")?, col("score")?);
    let mut out = ScoreSet::default();
    for (k, rec) in rdr.records().enumerate() {
        let line = k as u64 + 2;
        let rec = rec.map_err(|e| bad(line, e.to_string()))?;
        let score: f32 = rec
            .get(si)
            .and_then(|s| s.trim().parse().ok())
            .filter(|s: &f32| s.is_finite())
            .ok_or_else(|| bad(line, format!("score {:?} is not a number", rec.get(si))))?;
        match rec.get(gi).map(str::trim) {
            Some("1") => out.genuine.push(score),
            Some("0") => out.impostor.push(score),
            other => return Err(bad(line, format!("genuine must be 0 or 1, got {other:?}"))),
        }
    }
    if out.genuine.is_empty() || out.impostor.is_empty() {
        return Err(bad(
            0,
            format!(
                "need genuine and impostor pairs, got {} and {}",
                out.genuine.len(),
                out.impostor.len()
            ),
        ));
    }
    Ok(out)
}

/// The realism figures of a synthetic set against a real one.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    pub real_genuine: Stats,
    pub real_impostor: Stats,
    pub synth_genuine: Stats,
    pub synth_impostor: Stats,
    /// Relative difference of the synthetic impostor mean from the real one (0.05 = +5%).
    pub impostor_mean_rel: f64,
    pub impostor_sd_rel: f64,
    /// Histogram overlap of the two genuine distributions.
    pub genuine_overlap: f64,
    /// Histogram overlap of the two impostor distributions: a check on their shape, which
    /// equal means and sds do not make (two modes can average to one).
    pub impostor_overlap: f64,
    /// Synthetic genuine pairs scoring at or below the highest synthetic impostor.
    pub synth_genuine_below_max_impostor: usize,
}

/// Relative tolerance of the bar on impostor mean and sd.
pub const TOLERANCE: f64 = 0.10;

impl Comparison {
    pub fn new(real: &ScoreSet, synth: &ScoreSet) -> Comparison {
        let (ri, si) = (Stats::of(&real.impostor), Stats::of(&synth.impostor));
        let rel = |s: f64, r: f64| (s - r) / r;
        Comparison {
            real_genuine: Stats::of(&real.genuine),
            real_impostor: ri,
            synth_genuine: Stats::of(&synth.genuine),
            synth_impostor: si,
            impostor_mean_rel: rel(si.mean, ri.mean),
            impostor_sd_rel: rel(si.sd, ri.sd),
            genuine_overlap: overlap(&real.genuine, &synth.genuine),
            impostor_overlap: overlap(&real.impostor, &synth.impostor),
            synth_genuine_below_max_impostor: synth.genuine.iter().filter(|&&g| g <= si.max).count(),
        }
    }

    /// Whether the impostor mean and sd are within [`TOLERANCE`] and the genuine distributions
    /// overlap at all.
    pub fn meets_bar(&self) -> bool {
        self.impostor_mean_rel.abs() <= TOLERANCE
            && self.impostor_sd_rel.abs() <= TOLERANCE
            && self.genuine_overlap > 0.0
    }

    /// A plain-text table of the figures.
    pub fn table(&self) -> String {
        let row = |name: &str, g: &Stats, i: &Stats| {
            format!(
                "{name:<10} {:>8} {:>10}   {:.4}  {:.4}   {:.4}  {:.4}  {:.3}\n",
                g.count, i.count, g.mean, g.sd, i.mean, i.sd, i.max
            )
        };
        let mut s =
            String::from("set           genuine   impostor   gen mean  sd      imp mean  sd      imp max\n");
        s += &row("real", &self.real_genuine, &self.real_impostor);
        s += &row("synthetic", &self.synth_genuine, &self.synth_impostor);
        s += &format!(
            "impostor mean {:+.1}%, sd {:+.1}% (bar: within {:.0}%): {}\n",
            100.0 * self.impostor_mean_rel,
            100.0 * self.impostor_sd_rel,
            100.0 * TOLERANCE,
            if self.meets_bar() { "met" } else { "NOT met" }
        );
        s += &format!(
            "genuine histogram overlap (sum of bin minima, 1 = identical): {:.2}\n",
            self.genuine_overlap
        );
        s += &format!(
            "impostor histogram overlap (the shape, not a bar): {:.2}\n",
            self.impostor_overlap
        );
        s += &format!(
            "synthetic genuine pairs at or below the highest synthetic impostor ({:.3}): {} of {}\n",
            self.synth_impostor.max, self.synth_genuine_below_max_impostor, self.synth_genuine.count
        );
        s
    }
}

/// One histogram plot of real and synthetic genuine and impostor scores (SVG text).
pub fn histogram_svg(title: &str, real: &ScoreSet, synth: &ScoreSet) -> String {
    let series: [(&str, &str, bool, Vec<f64>); 4] = [
        ("real genuine", "#1f77b4", false, histogram(&real.genuine)),
        ("real impostor", "#1f77b4", true, histogram(&real.impostor)),
        ("synthetic genuine", "#d62728", false, histogram(&synth.genuine)),
        ("synthetic impostor", "#d62728", true, histogram(&synth.impostor)),
    ];
    let (w, h, ml, mb, mt, mr) = (760.0, 420.0, 60.0, 50.0, 30.0, 20.0);
    let pw = w - ml - mr;
    let ph = h - mt - mb;
    let ymax = series
        .iter()
        .flat_map(|s| s.3.iter().copied())
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.05;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    s += &format!("<text x=\"{ml}\" y=\"18\">{}</text>\n", xml_escape(title));
    s += &format!(
        "<line x1=\"{ml}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"black\"/><line x1=\"{ml}\" y1=\"{mt}\" x2=\"{ml}\" y2=\"{y}\" stroke=\"black\"/>\n",
        y = mt + ph,
        x2 = ml + pw
    );
    for i in 0..=10 {
        let x = ml + pw * i as f64 / 10.0;
        s += &format!(
            "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{:.1}</text>\n",
            mt + ph + 16.0,
            i as f64 / 10.0
        );
    }
    s += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">score</text>\n",
        ml + pw / 2.0,
        h - 10.0
    );
    s += &format!(
        "<text x=\"14\" y=\"{0}\" transform=\"rotate(-90 14 {0})\" text-anchor=\"middle\">fraction of pairs per bin (bin {1})</text>\n",
        mt + ph / 2.0,
        1.0 / BINS as f64
    );
    for (k, (name, colour, dashed, hist)) in series.iter().enumerate() {
        let mut d = String::new();
        for (i, v) in hist.iter().enumerate() {
            let x0 = ml + pw * i as f64 / BINS as f64;
            let x1 = ml + pw * (i + 1) as f64 / BINS as f64;
            let y = mt + ph - ph * v / ymax;
            d += &format!(
                "{}{x0:.1},{y:.1} L{x1:.1},{y:.1} ",
                if i == 0 { "M" } else { "L" }
            );
        }
        let dash = if *dashed { " stroke-dasharray=\"5,3\"" } else { "" };
        s += &format!("<path d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.6\"{dash}/>\n");
        let ly = mt + 14.0 + 16.0 * k as f64;
        let lx = ml + pw - 170.0;
        s += &format!(
            "<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{colour}\" stroke-width=\"1.6\"{dash}/><text x=\"{}\" y=\"{}\">{name}</text>\n",
            lx + 24.0,
            lx + 30.0,
            ly + 4.0
        );
    }
    s += "</svg>\n";
    s
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_and_overlap_by_hand() {
        let s = Stats::of(&[0.1, 0.3]);
        assert!((s.mean - 0.2).abs() < 1e-6 && (s.sd - 0.1).abs() < 1e-6);
        assert_eq!((s.min, s.max), (0.1, 0.3));
        // Same bins: overlap 1; disjoint bins: 0; half the mass shared: 0.5.
        assert!((overlap(&[0.11, 0.51], &[0.51, 0.11]) - 1.0).abs() < 1e-9);
        assert_eq!(overlap(&[0.11], &[0.91]), 0.0);
        assert!((overlap(&[0.11, 0.51], &[0.11, 0.91]) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn comparison_applies_the_ten_percent_bar() {
        let real = ScoreSet {
            genuine: vec![0.6, 0.7],
            impostor: vec![0.1, 0.3],
        };
        let near = ScoreSet {
            genuine: vec![0.61, 0.9],
            impostor: vec![0.11, 0.31],
        };
        let c = Comparison::new(&real, &near);
        assert!(
            (c.impostor_mean_rel - 0.05).abs() < 1e-6,
            "{}",
            c.impostor_mean_rel
        );
        assert!(c.impostor_sd_rel.abs() < 1e-6);
        assert!(c.meets_bar());
        let far = ScoreSet {
            genuine: vec![0.6],
            impostor: vec![0.2, 0.2],
        };
        assert!(!Comparison::new(&real, &far).meets_bar(), "sd 0 vs 0.1");
    }

    #[test]
    fn impostor_overlap_sees_two_modes_that_equal_mean_and_sd_do_not() {
        // One mode against two with the same mean (0.151) and sd (0.0354).
        let genuine = vec![0.7];
        let real = ScoreSet {
            genuine: genuine.clone(),
            impostor: vec![0.101, 0.151, 0.151, 0.201],
        };
        let two_modes = ScoreSet {
            genuine,
            impostor: vec![0.1156, 0.1156, 0.1864, 0.1864],
        };
        let c = Comparison::new(&real, &two_modes);
        assert!(
            c.meets_bar(),
            "mean {} sd {}",
            c.impostor_mean_rel,
            c.impostor_sd_rel
        );
        // Only the lower mode's bin [0.10, 0.12) is shared: a quarter of the real mass.
        assert!((c.impostor_overlap - 0.25).abs() < 1e-9, "{}", c.impostor_overlap);
        assert!((Comparison::new(&real, &real).impostor_overlap - 1.0).abs() < 1e-9);
    }

    #[test]
    fn reads_eval_scores_and_rejects_bad_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("scores.csv");
        std::fs::write(&p, "a,b,genuine,score\nx,y,1,0.5\nx,z,0,0.25\n").unwrap();
        let s = read_eval_scores(&p).unwrap();
        assert_eq!(s.genuine, vec![0.5]);
        assert_eq!(s.impostor, vec![0.25]);
        std::fs::write(&p, "a,b,genuine,score\nx,y,2,0.5\n").unwrap();
        assert!(matches!(
            read_eval_scores(&p),
            Err(SynthError::Scores { line: 2, .. })
        ));
        std::fs::write(&p, "a,b,genuine,score\nx,y,1,nan\n").unwrap();
        assert!(read_eval_scores(&p).is_err());
        std::fs::write(&p, "a,b,score\nx,y,0.5\n").unwrap();
        assert!(read_eval_scores(&p).is_err());
        assert!(read_eval_scores(&dir.path().join("missing.csv")).is_err());
    }

    #[test]
    fn svg_has_all_four_series() {
        let s = ScoreSet {
            genuine: vec![0.6],
            impostor: vec![0.2],
        };
        let svg = histogram_svg("a < b", &s, &s);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<path").count(), 4);
        assert!(svg.contains("a &lt; b"));
    }
}
