//! `openpalm match A B`: one 1:1 comparison and its decision at the default threshold.

use anyhow::{anyhow, Context};
use openpalm_engine::DEFAULT_THRESHOLD;
use openpalm_engine::{Engine, InputKind, Template};
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// First capture (PNG, JPEG or BMP).
    pub a: PathBuf,
    /// Second capture.
    pub b: PathBuf,
    /// What the captures show: `roi` (palm-centre crop) or `hand` (whole open hand).
    #[arg(long, default_value = "roi")]
    pub input: InputKind,
}

/// Read and extract one capture; errors carry the path and the engine's reason code.
pub fn template(engine: &Engine, path: &Path, input: InputKind) -> anyhow::Result<Template> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    engine
        .extract(&bytes, input)
        .map(|x| x.template)
        .map_err(|e| anyhow!("cannot acquire {}: {} ({e})", path.display(), e.code()))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let engine = Engine::default();
    let a = template(&engine, &args.a, args.input)?;
    let b = template(&engine, &args.b, args.input)?;
    let score = engine.score(&a, &b);
    let decision = if score >= DEFAULT_THRESHOLD {
        "match"
    } else {
        "no match"
    };
    println!("score {score:.4}  threshold {DEFAULT_THRESHOLD:.4}  decision: {decision}");
    Ok(())
}
