//! Subcommands: one module each, each with `Args` (clap) and `run(args)`. Adding one is a
//! new module, a variant here and an arm in [`run`].

use clap::Subcommand;

pub mod audit;
pub mod bench;
pub mod checkout_bench;
pub mod demo;
pub mod device;
pub mod eval;
pub mod extract;
pub mod inspect;
pub mod lane_bench;
pub mod matching;
pub mod reader;
pub mod receipt;
pub mod serve;
pub mod synth;

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Evaluate the engine on a labelled image set (scores.csv, failures.csv, report.json,
    /// det.svg).
    Eval(eval::Args),
    /// Compare two captures and decide at the default threshold.
    Match(matching::Args),
    /// Extract a template from a capture and write it in the binary template format.
    Extract(extract::Args),
    /// Write every intermediate product of an extraction as pictures (hand mask, valleys,
    /// ROI, filter responses, code and mask) to see why palms do or do not match.
    Inspect(inspect::Args),
    /// Synthetic palms and hands (and template streams) for tests, demos and scale.
    Synth(Box<synth::Args>),
    /// Benchmarks (`bench identify`: 1:N search on a synthetic gallery; `bench lane`: a venue's
    /// palm lane over HTTP).
    Bench(bench::Args),
    /// The whole product in a minute: the service, demo businesses, synthetic people and the
    /// reader screens, on the embedded default; prints every page's URL.
    Demo(demo::Args),
    /// Run the HTTP service: enrollment, identification and linking for businesses.
    Serve(serve::Args),
    /// The screens of a kiosk, gate or checkout, served on the reader: captures sealed and
    /// signed there before they go to the service.
    Reader(reader::Args),
    /// Simulate a kiosk, gate or checkout against a running service.
    Device(device::Args),
    /// The audit log: `audit verify --data DIR` checks its hash chain.
    Audit(audit::Args),
    /// Deletion receipts: `receipt verify FILE --service-key KEY` checks one offline.
    Receipt(receipt::Args),
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Eval(args) => eval::run(args),
        Command::Match(args) => matching::run(args),
        Command::Extract(args) => extract::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Synth(args) => synth::run(*args),
        Command::Bench(args) => bench::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Device(args) => device::run(args),
        Command::Reader(args) => reader::run(args),
        Command::Receipt(args) => receipt::run(args),
        Command::Audit(args) => audit::run(args),
    }
}
