//! `openpalm audit verify --data DIR | --database-url URL`: check the service's audit log
//! chain; a non-zero exit names the first record that was edited, removed, inserted or moved.

use anyhow::{bail, Context, Result};
use openpalm_store::{AuditStore, SqlStore};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// Verify the hash chain of the audit log.
    Verify {
        /// The service's data folder (its SQLite database).
        #[arg(long, conflicts_with = "database_url")]
        data: Option<PathBuf>,
        /// Or the database URL (`postgres://...`).
        #[arg(long)]
        database_url: Option<String>,
    },
}

pub fn run(args: Args) -> Result<()> {
    let What::Verify { data, database_url } = args.what;
    let url = match (data, database_url) {
        (_, Some(u)) => u,
        (Some(d), None) => {
            let db = d.join("openpalm.db");
            anyhow::ensure!(db.is_file(), "no database at {}", db.display());
            SqlStore::sqlite_url(&db)
        }
        (None, None) => bail!("give --data DIR or --database-url URL"),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let store = SqlStore::connect(&url).await.context("cannot open the database")?;
        let mut all = Vec::new();
        let mut after = 0i64;
        loop {
            let page = store.audit_records(after, 10_000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            all.extend(page);
        }
        store.close().await;
        match openpalm_domain::audit::verify(&all) {
            Ok(head) => {
                println!(
                    "audit log verifies: {} records, head {} (compare it with a copy kept elsewhere to detect records cut off at the end)",
                    head.records, head.hash
                );
                Ok(())
            }
            Err(e) => bail!("audit log does NOT verify: {e}"),
        }
    })
}
