//! The `link` command (a facility links the card on its reader to the card's person, from the
//! card's own signed data) and the `unlink` command (the holder unlinks their card).
//!
//! Linking runs in one card session: both PINs are read first (from the terminal, or with
//! `--pin-stdin` one line each, the user-authentication PIN first; `--same-pin` reads one for
//! both), so the challenge cannot expire
//! while the person types; then the input-assistance application is unlocked and its records
//! read, the server's challenge taken, the application's internal-authentication key and then
//! the JPKI user-authentication key sign it (bound to onshi, purpose `card.link`), and the card
//! is released before the server is asked. The number travels only inside the card's record,
//! to the server; it is never printed.

use std::time::Duration;

use card_reader::binding::{self, Purpose};
use card_reader::server::CardLink;
use card_reader::{JpkiCard, Readers};

use crate::check::facility_client;
use crate::cli::{LinkArgs, UnlinkArgs};
use crate::outcome::Failure;
use crate::signing::{holder_proof, read_pin, read_pin_twice, show_tries, HolderRequest};

/// Runs the link at a facility's reader; prints the server's answer.
pub fn run_link(args: &LinkArgs) -> Result<(), Failure> {
    let client = facility_client(
        &args.server,
        args.token_file.as_deref(),
        args.server_timeout,
    )?;
    let origin = client.origin()?;

    let readers = Readers::establish()?;
    eprintln!("Place the My Number card on the reader...");
    let name = readers.wait_for_card(args.reader.as_deref(), Duration::from_secs(args.timeout))?;
    let mut card = JpkiCard::open(&readers, &name)?;
    let certificate = card.read_auth_certificate()?;
    let auth_state = card.pin_status()?;
    card.select_surface()?;
    let surface_state = card.surface_pin_status()?;
    let auth_needed = show_tries(auth_state, "PIN");
    let surface_needed = show_tries(surface_state, "Input-assistance PIN (券面事項入力補助用)");
    let (auth_pin, surface_pin) = if args.same_pin {
        read_pin_twice(
            args.pin_stdin,
            "PIN, the same for both (4 digits, not shown): ",
        )?
    } else {
        (
            read_pin(args.pin_stdin, "PIN (4 digits, not shown): ")?,
            read_pin(
                args.pin_stdin,
                "Input-assistance PIN (4 digits, not shown): ",
            )?,
        )
    };
    if surface_needed {
        card.verify_surface_pin(surface_pin)?;
    }
    let records = card.read_surface_records()?;

    let challenge = client.challenge()?;
    let digest = binding::digest(Purpose::Link, &origin, &challenge.nonce, None);
    let internal = card.internal_authenticate(&digest)?;
    card.select_jpki()?;
    if auth_needed {
        card.verify_pin(auth_pin)?;
    }
    let signature = card.sign_sha256(&digest)?;
    // Resetting the card now clears both verified PINs.
    drop(card);

    let link = CardLink::new(&certificate, &challenge, &signature, &records, &internal);
    drop(records);
    let answer = client.link_card(&link)?;
    if args.json {
        println!("{answer:#}");
    } else {
        println!(
            "The card is linked to its holder's health insurance (certificate valid until {}).",
            answer["certificate_not_after"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

/// The holder unlinks their card (card and PIN, no token).
pub fn run_unlink(args: &UnlinkArgs) -> Result<(), Failure> {
    let (client, proof) = holder_proof(&holder(args), Purpose::Unlink)?;
    let answer = client.unlink_card(&proof)?;
    if args.json {
        println!("{answer:#}");
    } else {
        println!("The card is no longer linked to health insurance.");
    }
    Ok(())
}

/// The holder withdraws the consents they gave at readers (card and PIN, no token).
pub fn run_withdraw_consents(args: &UnlinkArgs) -> Result<(), Failure> {
    let (client, proof) = holder_proof(&holder(args), Purpose::WithdrawConsents)?;
    let answer = client.withdraw_consents(&proof)?;
    if args.json {
        println!("{answer:#}");
    } else {
        println!(
            "Consents withdrawn: {}.",
            answer["withdrawn"].as_u64().unwrap_or_default()
        );
    }
    Ok(())
}

fn holder(args: &UnlinkArgs) -> HolderRequest<'_> {
    HolderRequest {
        server: &args.server,
        server_timeout: args.server_timeout,
        reader: args.reader.as_deref(),
        timeout: args.timeout,
        pin_stdin: args.pin_stdin,
    }
}
