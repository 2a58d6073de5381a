//! `openpalm inspect IMAGE --out DIR`: every intermediate product of one extraction as a PNG,
//! plus `summary.json` with the outcome, the quality components and the hand geometry (with
//! which colour models made the hand mask).

use anyhow::Context;
use openpalm_engine::{decode, Engine, InputKind};
use serde_json::json;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The capture (PNG, JPEG or BMP).
    pub image: PathBuf,
    /// What the capture shows: `roi` (palm-centre crop) or `hand` (whole open hand).
    #[arg(long, default_value = "hand")]
    pub input: InputKind,
    /// Folder to write the pictures into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let bytes =
        std::fs::read(&args.image).with_context(|| format!("cannot read {}", args.image.display()))?;
    let capture = decode(&bytes).with_context(|| format!("cannot decode {}", args.image.display()))?;
    let engine = Engine::default();
    let inspection = engine.inspect(&capture, args.input);
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    for p in &inspection.pictures {
        let path = args.out.join(format!("{}.png", p.name));
        p.image
            .save(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let quality = inspection.trace.quality.map(|q| {
        json!({
            "score": q.score, "brightness": q.brightness, "saturated": q.saturated,
            "coverage": q.coverage, "sharpness": q.sharpness, "texture": q.texture,
        })
    });
    let mask_source = inspection.trace.segmentation.as_ref().map(|s| s.source.name());
    let hand = inspection.trace.hand.as_ref().map(|h| {
        json!({
            "mask_source": mask_source,
            "handedness": format!("{:?}", h.handedness).to_lowercase(),
            "palm_centre": [h.palm_centre.x, h.palm_centre.y],
            "palm_radius": h.palm_radius,
            "valleys": h.valleys.iter().map(|v| [v.x, v.y]).collect::<Vec<_>>(),
            "roi_corners": h.roi_corners.iter().map(|v| [v.x, v.y]).collect::<Vec<_>>(),
        })
    });
    let outcome = match &inspection.outcome {
        Ok(_) => json!({"acquired": true}),
        Err(e) => json!({"acquired": false, "reason": e.code(), "message": e.to_string()}),
    };
    let summary = json!({ "image": args.image, "outcome": outcome, "quality": quality, "hand": hand });
    let path = args.out.join("summary.json");
    std::fs::write(&path, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    match &inspection.outcome {
        Ok(x) => println!(
            "acquired (quality {:.2}); {} pictures in {}",
            x.quality.score,
            inspection.pictures.len(),
            args.out.display()
        ),
        Err(e) => println!(
            "not acquired: {} ({e}); {} pictures in {}",
            e.code(),
            inspection.pictures.len(),
            args.out.display()
        ),
    }
    Ok(())
}
