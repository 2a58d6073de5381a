//! `openpalm receipt verify FILE --service-key KEY`: check a deletion receipt offline against
//! the service's published receipt key (`receipt_public_key` at `GET /v1/service-key`).

use anyhow::{bail, Context, Result};
use openpalm_domain::person::{verify_receipt, SignedReceipt};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// Verify a deletion receipt's signature; a non-zero exit if it was changed or forged.
    Verify {
        /// The receipt as `POST /v1/me/delete` answered it (JSON).
        file: PathBuf,
        /// The service's receipt public key, base64.
        #[arg(long)]
        service_key: String,
    },
}

pub fn run(args: Args) -> Result<()> {
    match args.what {
        What::Verify { file, service_key } => {
            let text =
                std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let r: SignedReceipt = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a deletion receipt", file.display()))?;
            if let Err(e) = verify_receipt(&r, &service_key) {
                bail!("receipt {} does NOT verify: {e}", r.receipt.receipt_id);
            }
            let d = &r.receipt.destroyed;
            println!(
                "receipt {} verifies: deleted at {} (Unix s); data key destroyed: {}; {} templates, {} gallery entries, {} memberships, {} links, {} match log lines; {} businesses notified",
                r.receipt.receipt_id,
                r.receipt.deleted_at,
                d.data_key,
                d.templates,
                d.gallery_entries,
                d.memberships,
                d.links,
                d.match_log_lines,
                d.businesses_notified
            );
            Ok(())
        }
    }
}
