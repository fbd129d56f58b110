//! `onshi-demo-data --persons N [--seed S] > file.csv`: a synthetic enrolment change file on
//! standard output, a one-line summary on standard error. The server does not link this code.

use anyhow::Context;
use clap::Parser;

/// Writes a deterministic synthetic enrolment file (invented people only) to standard output.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// How many persons the file holds.
    #[arg(long)]
    persons: u64,
    /// The same seed always gives the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stdout = std::io::stdout().lock();
    let summary = onshi_demo_data::write_enrolment_csv(
        std::io::BufWriter::new(stdout),
        args.persons,
        args.seed,
    )
    .context("writing demo data")?;
    eprintln!(
        "{} persons, {} rows, {} insurers",
        summary.persons, summary.rows, summary.insurers
    );
    Ok(())
}
