//! `onshi-reader`: the reception-desk tool for the My Number card. Lists readers, prints
//! the card's certificate, runs the card eligibility check against an onshi server, and shows
//! the card holder their own access log, links a card from its signed data and lets the holder
//! unlink it. This file only wires: the flows are in `check`, `link` and `access_log` (their
//! common reader side in `signing`), the desk messages and exit codes in
//! `outcome`; `serve` answers the reception page's card checks on 127.0.0.1.
#![forbid(unsafe_code)]

mod access_log;
mod check;
mod cli;
mod link;
mod outcome;
mod serve;
mod signing;

use std::process::ExitCode;
use std::time::Duration;

use card_reader::{pem, JpkiCard, Readers};
use clap::Parser;

use crate::cli::{Cli, Command};
use crate::outcome::Failure;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Readers => list_readers(),
        Command::Cert(args) => print_cert(args.reader.as_deref(), args.timeout),
        Command::Check(args) => check::run(&args),
        Command::Link(args) => link::run_link(&args),
        Command::Unlink(args) => link::run_unlink(&args),
        Command::WithdrawConsents(args) => link::run_withdraw_consents(&args),
        Command::AccessLog(args) => access_log::run(&args),
        Command::Serve(args) => serve::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

fn list_readers() -> Result<(), Failure> {
    let readers = Readers::establish()?;
    let names = readers.list()?;
    if names.is_empty() {
        return Err(card_reader::Error::NoReader { wanted: None }.into());
    }
    for name in names {
        println!("{name}");
    }
    Ok(())
}

fn print_cert(reader: Option<&str>, timeout_secs: u64) -> Result<(), Failure> {
    let readers = Readers::establish()?;
    let name = readers.wait_for_card(reader, Duration::from_secs(timeout_secs))?;
    let mut card = JpkiCard::open(&readers, &name)?;
    let der = card.read_auth_certificate()?;
    print!("{}", pem::encode("CERTIFICATE", &der));
    Ok(())
}
