//! Subcommands: one module each, each with `Args` (clap) and `run(args)`. Adding one is a
//! new module, a variant here and an arm in [`run`].

use clap::Subcommand;

pub mod eval;
pub mod matching;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Evaluate the engine on a labelled image set (scores.csv, failures.csv, report.json,
    /// det.svg).
    Eval(eval::Args),
    /// Compare two captures and decide at the default threshold.
    Match(matching::Args),
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Eval(args) => eval::run(args),
        Command::Match(args) => matching::run(args),
    }
}
