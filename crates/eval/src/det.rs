//! DET curve (FNMR against FMR, both on log10 axes) as a self-contained SVG.

use crate::metrics::{Eer, OperatingPoint};
use std::fmt::Write;

const LEFT: f64 = 84.0;
const TOP: f64 = 56.0;
const SIDE: f64 = 480.0;
const RIGHT: f64 = 28.0;
const BOTTOM: f64 = 64.0;
/// Lowest decade ever drawn: rates below 1e-6 are not measurable on any set we have.
const MIN_EXP: i32 = -6;

/// Escape text for SVG content and attribute values.
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Tick label for 10^exp as a percentage: 1 -> "100%", 1e-3 -> "0.1%".
fn percent_label(exp: i32) -> String {
    let decimals = (-(exp + 2)).max(0) as usize;
    format!("{:.*}%", decimals, 10f64.powi(exp + 2))
}

/// The lowest decade shown: that of the smallest non-zero rate, within [1e-6, 1e-1].
fn lowest_decade(points: &[OperatingPoint]) -> i32 {
    let smallest = points
        .iter()
        .flat_map(|p| [p.fmr, p.fnmr])
        .filter(|&v| v > 0.0)
        .fold(1.0f64, f64::min);
    (smallest.log10().floor() as i32).clamp(MIN_EXP, -1)
}

struct Axes {
    lo: i32,
}

impl Axes {
    /// Position along an axis in [0, 1] for a rate; rates at or below 10^lo (zero included)
    /// sit on the axis.
    fn frac(&self, v: f64) -> f64 {
        if v <= 0.0 {
            return 0.0;
        }
        ((v.log10() - self.lo as f64) / -(self.lo as f64)).clamp(0.0, 1.0)
    }
    fn x(&self, fmr: f64) -> f64 {
        LEFT + self.frac(fmr) * SIDE
    }
    fn y(&self, fnmr: f64) -> f64 {
        TOP + SIDE - self.frac(fnmr) * SIDE
    }
}

/// Render the DET curve of `points` (in increasing threshold order, as
/// [`crate::metrics::ErrorRates::operating_points`] gives them) with the EER marked.
pub fn det_svg(points: &[OperatingPoint], eer: &Eer, title: &str) -> String {
    let axes = Axes {
        lo: lowest_decade(points),
    };
    let width = LEFT + SIDE + RIGHT;
    let height = TOP + SIDE + BOTTOM;
    let mut s = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{width}" height="{height}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="30" text-anchor="middle" font-size="16">{}</text>"#,
        LEFT + SIDE / 2.0,
        xml_escape(title)
    );

    // Grid: decades (labelled) and 2..9 minor lines.
    for exp in axes.lo..=0 {
        let v = 10f64.powi(exp);
        let (x, y) = (axes.x(v), axes.y(v));
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{}" stroke="#bbb"/>"##,
            TOP + SIDE
        );
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#bbb"/>"##,
            LEFT + SIDE
        );
        let label = percent_label(exp);
        let _ = writeln!(
            s,
            r#"<text class="xtick" x="{x:.1}" y="{}" text-anchor="middle">{label}</text>"#,
            TOP + SIDE + 18.0
        );
        let _ = writeln!(
            s,
            r#"<text class="ytick" x="{}" y="{:.1}" text-anchor="end">{label}</text>"#,
            LEFT - 6.0,
            y + 4.0
        );
        if exp < 0 {
            for m in 2..=9 {
                let v = m as f64 * 10f64.powi(exp);
                let (x, y) = (axes.x(v), axes.y(v));
                let _ = writeln!(
                    s,
                    r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{}" stroke="#eee"/>"##,
                    TOP + SIDE
                );
                let _ = writeln!(
                    s,
                    r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#eee"/>"##,
                    LEFT + SIDE
                );
            }
        }
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{SIDE}" height="{SIDE}" fill="none" stroke="black"/>"#
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">False match rate (FMR)</text>"#,
        LEFT + SIDE / 2.0,
        TOP + SIDE + 44.0
    );
    let _ = writeln!(
        s,
        r#"<text x="22" y="{0}" text-anchor="middle" transform="rotate(-90 22 {0})">False non-match rate (FNMR)</text>"#,
        TOP + SIDE / 2.0
    );

    // FMR = FNMR diagonal.
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{}" x2="{}" y2="{TOP}" stroke="#999" stroke-dasharray="4 4"/>"##,
        TOP + SIDE,
        LEFT + SIDE
    );

    // The curve, dropping points that land within a quarter pixel of the previous one.
    let mut path = String::new();
    let mut last: Option<(f64, f64)> = None;
    for (i, p) in points.iter().enumerate() {
        let (x, y) = (axes.x(p.fmr), axes.y(p.fnmr));
        let is_last = i + 1 == points.len();
        if let Some((lx, ly)) = last {
            if (x - lx).abs() < 0.25 && (y - ly).abs() < 0.25 && !is_last {
                continue;
            }
        }
        let _ = write!(path, "{}{x:.2},{y:.2}", if last.is_none() { "M" } else { " L" });
        last = Some((x, y));
    }
    let _ = writeln!(
        s,
        r##"<path class="det" d="{path}" fill="none" stroke="#1f5fbf" stroke-width="2"/>"##
    );

    // EER.
    let (ex, ey) = (axes.x(eer.eer), axes.y(eer.eer));
    let _ = writeln!(
        s,
        r##"<circle class="eer" cx="{ex:.2}" cy="{ey:.2}" r="5" fill="#d62728"/>"##
    );
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" fill="#d62728">EER {:.2}% (t = {:.4})</text>"##,
        ex + 9.0,
        ey - 8.0,
        eer.eer * 100.0,
        eer.threshold
    );
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ErrorRates;

    #[test]
    fn labels_and_decades() {
        assert_eq!(percent_label(0), "100%");
        assert_eq!(percent_label(-2), "1%");
        assert_eq!(percent_label(-4), "0.01%");
        let p = |fmr, fnmr| OperatingPoint {
            threshold: 0.0,
            fmr,
            fnmr,
        };
        assert_eq!(lowest_decade(&[p(1.0, 0.0), p(0.0023, 0.5)]), -3);
        assert_eq!(lowest_decade(&[p(1e-9, 0.0)]), MIN_EXP);
        assert_eq!(lowest_decade(&[p(1.0, 0.0), p(0.0, 1.0)]), -1);
    }

    #[test]
    fn svg_has_axes_curve_eer_and_escaped_title() {
        let r = ErrorRates::new(&[0.5, 0.9, 0.95], &[0.2, 0.6, 0.7, 0.8]).unwrap();
        let svg = det_svg(&r.operating_points(), &r.eer(), "DET: a&b <roi>");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("DET: a&amp;b &lt;roi&gt;"));
        assert!(svg.contains("False match rate (FMR)"));
        assert!(svg.contains("False non-match rate (FNMR)"));
        assert!(svg.contains(r#"class="eer""#));
        assert!(svg.contains("EER 33.33%"));
        // Smallest non-zero rate is 1/4, so decades 10% and 100% are ticked on both axes.
        assert_eq!(svg.matches(r#"class="xtick""#).count(), 2);
        assert_eq!(svg.matches(r#"class="ytick""#).count(), 2);
        let d = svg.split(r#"d=""#).nth(1).unwrap();
        assert!(d.starts_with('M'));
        assert!(d.contains(" L"));
    }
}
