//! `openpalm extract IMAGE --out FILE`: write the template in the versioned binary format.

use crate::cmd::matching::template;
use anyhow::Context;
use openpalm_engine::{Engine, InputKind};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The capture (PNG, JPEG or BMP).
    pub image: PathBuf,
    /// What the capture shows: `roi` (palm-centre crop) or `hand` (whole open hand).
    #[arg(long, default_value = "roi")]
    pub input: InputKind,
    /// Where to write the template.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let engine = Engine::default();
    let t = template(&engine, &args.image, args.input)?;
    let bytes = t.to_bytes();
    std::fs::write(&args.out, &bytes).with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "template: {} bytes, quality {:.2}, written to {}",
        bytes.len(),
        t.quality,
        args.out.display()
    );
    Ok(())
}
