//! Writing a synthetic data set in the layout of the real ones: images plus `labels.csv`
//! (`path,identity,session`), so `openpalm eval` runs on it unchanged.
//!
//! Layout with one band: `images/<id>_<k>.png`, `labels.csv`. With several bands (like PolyU
//! multispectral): `<band>/<id>_<k>.png`, one `labels_<band>.csv` per band, and a combined
//! `labels.csv` listing every band (do not match one band against another unless that is the
//! test: the same file name in two bands is one capture). `MANIFEST.md` records how the set
//! was made.

use crate::error::SynthError;
use crate::generator::{Generator, Kind};
use crate::render::Band;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What to generate.
#[derive(Clone, Debug)]
pub struct DatasetSpec {
    pub generator: Generator,
    pub identities: usize,
    pub samples: usize,
    pub bands: Vec<Band>,
}

/// What was written.
#[derive(Clone, Debug)]
pub struct DatasetSummary {
    pub images: usize,
    pub elapsed: Duration,
    /// Labels files written (the combined `labels.csv` first).
    pub labels: Vec<PathBuf>,
}

impl DatasetSummary {
    pub fn images_per_second(&self) -> f64 {
        self.images as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

impl DatasetSpec {
    /// Check the arguments: at least one identity, one sample and one band, no band twice.
    pub fn validate(&self) -> Result<(), SynthError> {
        if self.identities == 0 {
            return Err(SynthError::ZeroIdentities);
        }
        if self.samples == 0 {
            return Err(SynthError::ZeroSamples);
        }
        if self.bands.is_empty() {
            return Err(SynthError::NoBands);
        }
        for (i, b) in self.bands.iter().enumerate() {
            if self.bands[..i].contains(b) {
                return Err(SynthError::DuplicateBand(b.name()));
            }
        }
        let s = self.generator.sessions;
        if s == 0 || s as usize > self.samples {
            return Err(SynthError::BadSessions {
                sessions: s,
                samples: self.samples,
            });
        }
        self.generator
            .difficulty
            .validate()
            .map_err(SynthError::Difficulty)
    }

    fn id_width(&self) -> usize {
        self.identities.to_string().len().max(4)
    }

    fn k_width(&self) -> usize {
        self.samples.to_string().len().max(2)
    }

    /// Identity label of identity `i` (0-based).
    pub fn identity_label(&self, i: usize) -> String {
        format!("synth{:0w$}", i + 1, w = self.id_width())
    }

    /// Relative path of capture `k` of identity `i` in `band`.
    pub fn image_path(&self, i: usize, k: usize, band: Band) -> String {
        let dir = if self.bands.len() == 1 {
            "images"
        } else {
            band.name()
        };
        format!(
            "{dir}/{:0w$}_{:0kw$}.png",
            i + 1,
            k + 1,
            w = self.id_width(),
            kw = self.k_width()
        )
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> SynthError + '_ {
    move |source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Generate the data set into `out` (created if missing), in parallel, with a progress bar on
/// stderr when `progress` is true. Output is byte-identical for the same spec whatever the
/// thread count.
pub fn write_dataset(spec: &DatasetSpec, out: &Path, progress: bool) -> Result<DatasetSummary, SynthError> {
    spec.validate()?;
    let start = Instant::now();
    let dirs: Vec<&str> = if spec.bands.len() == 1 {
        vec!["images"]
    } else {
        spec.bands.iter().map(|b| b.name()).collect()
    };
    for d in &dirs {
        let p = out.join(d);
        std::fs::create_dir_all(&p).map_err(io_err(&p))?;
    }
    let total = spec.identities * spec.samples * spec.bands.len();
    let pb = if progress {
        ProgressBar::new(total as u64)
    } else {
        ProgressBar::hidden()
    };
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} synth [{elapsed_precise}] {wide_bar} {pos}/{len} images ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let g = &spec.generator;
    (0..spec.identities)
        .into_par_iter()
        .try_for_each(|i| -> Result<(), SynthError> {
            let prepared = g.identity_for(i as u64, &spec.bands);
            for k in 0..spec.samples {
                let sample = g.sample(i as u64, k, spec.samples);
                for &band in &spec.bands {
                    let img = g.render(&prepared, &sample, band);
                    let path = out.join(spec.image_path(i, k, band));
                    let bytes = img.encode_png().map_err(|e| SynthError::Encode {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
                    std::fs::write(&path, bytes).map_err(io_err(&path))?;
                    pb.inc(1);
                }
            }
            Ok(())
        })?;
    pb.finish_and_clear();

    let mut labels = Vec::new();
    let combined = out.join("labels.csv");
    write_labels(spec, &combined, &spec.bands)?;
    labels.push(combined);
    if spec.bands.len() > 1 {
        for &b in &spec.bands {
            let p = out.join(format!("labels_{}.csv", b.name()));
            write_labels(spec, &p, &[b])?;
            labels.push(p);
        }
    }
    let manifest = out.join("MANIFEST.md");
    std::fs::write(&manifest, manifest_text(spec)).map_err(io_err(&manifest))?;
    Ok(DatasetSummary {
        images: total,
        elapsed: start.elapsed(),
        labels,
    })
}

fn write_labels(spec: &DatasetSpec, path: &Path, bands: &[Band]) -> Result<(), SynthError> {
    let csv_err = |source| SynthError::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut w = csv::Writer::from_path(path).map_err(csv_err)?;
    w.write_record(["path", "identity", "session"]).map_err(csv_err)?;
    for &b in bands {
        for i in 0..spec.identities {
            let label = spec.identity_label(i);
            for k in 0..spec.samples {
                let session = spec.generator.session_of(k, spec.samples).to_string();
                w.write_record([
                    spec.image_path(i, k, b).as_str(),
                    label.as_str(),
                    session.as_str(),
                ])
                .map_err(csv_err)?;
            }
        }
    }
    w.flush().map_err(io_err(path))?;
    Ok(())
}

fn manifest_text(spec: &DatasetSpec) -> String {
    let g = &spec.generator;
    let kind = match g.kind {
        Kind::Roi => "palm-centre ROI crops, 150x150 PNG (Tongji-like)",
        Kind::Hand => "whole open hands, 800x600 PNG (COEP-like)",
    };
    let bands: Vec<&str> = spec.bands.iter().map(|b| b.name()).collect();
    format!(
        "# Synthetic palm data (openpalm-synth {ver})\n\n\
         SYNTHETIC: made by a program, not captured from people. Figures measured on it test \
         the machinery; they are never accuracy claims.\n\n\
         - kind: {kind}\n- identities: {ids}\n- samples per identity: {k}\n- sessions: {s}\n\
         - bands: {bands}\n- seed: {seed}\n\n## Difficulty\n\n```\n{d:#?}\n```\n\n## Population\n\n```\n{p:#?}\n```\n",
        ver = env!("CARGO_PKG_VERSION"),
        ids = spec.identities,
        k = spec.samples,
        s = g.sessions,
        bands = bands.join(","),
        seed = g.seed,
        d = g.difficulty,
        p = g.population,
    )
}
