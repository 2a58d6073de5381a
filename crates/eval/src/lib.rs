//! OpenPalm evaluation after ISO/IEC 19795-1: reading labelled image sets ([`dataset`]),
//! extracting and scoring every pair ([`run`]), verification and identification metrics
//! ([`metrics`], pure), and the output files ([`report`], [`det`]).
//!
//! ```no_run
//! use openpalm_eval::{dataset::Dataset, report, run};
//! use openpalm_engine::{Engine, InputKind};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dataset = Dataset::load("../shared/data/tongji-roi-dev".as_ref(), None)?;
//! let result = run::run(&Engine::default(), &dataset, &run::RunConfig::new(InputKind::Roi));
//! let options = report::ReportOptions::engine_defaults();
//! let (report, files) = report::write_all("out/tongji".as_ref(), &result, &options)?;
//! println!("EER {:.2}% -> {}", report.eer * 100.0, files.report.display());
//! # Ok(())
//! # }
//! ```

pub mod attempt;
pub mod dataset;
pub mod det;
pub mod metrics;
pub mod report;
pub mod run;
pub mod tail;

#[cfg(test)]
mod tests;
