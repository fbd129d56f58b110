//! The part of every card flow that happens at the reader: wait for the card, read its
//! certificate, verify the PIN, take a challenge from the server and have the card sign it.

use std::io::BufRead as _;
use std::time::Duration;

use card_reader::server::Challenge;
use card_reader::{JpkiCard, Pin, PinStatus, Readers};
use zeroize::Zeroizing;

use crate::outcome::Failure;

/// What the card produced for one challenge.
pub struct Signed {
    pub certificate: Vec<u8>,
    pub challenge: Challenge,
    pub signature: Vec<u8>,
}

/// Runs the reader side of a card flow. The challenge is asked for only once the PIN is
/// verified, so it cannot expire while the person types; the card is released (which clears
/// the verified PIN) before this returns.
pub fn sign_challenge(
    reader: Option<&str>,
    timeout_secs: u64,
    pin_stdin: bool,
    challenge: impl FnOnce() -> card_reader::Result<Challenge>,
) -> Result<Signed, Failure> {
    let readers = Readers::establish()?;
    eprintln!("Place the My Number card on the reader...");
    let name = readers.wait_for_card(reader, Duration::from_secs(timeout_secs))?;
    let mut card = JpkiCard::open(&readers, &name)?;
    let certificate = card.read_auth_certificate()?;

    match card.pin_status()? {
        PinStatus::Verified => {}
        PinStatus::TriesLeft(n) => {
            eprintln!("PIN: {n} {} left.", if n == 1 { "try" } else { "tries" });
            let pin = read_pin(pin_stdin)?;
            card.verify_pin(pin)?;
        }
    }

    let challenge = challenge()?;
    let signature = card.sign_message(&challenge.nonce)?;
    // The card is no longer needed: resetting it now clears the verified PIN.
    drop(card);
    Ok(Signed {
        certificate,
        challenge,
        signature,
    })
}

/// Reads the PIN without echo, asking again (up to 3 times) when it is not 4 digits, so
/// a typo never costs a card try. With `from_stdin`, one line of standard input.
fn read_pin(from_stdin: bool) -> Result<Pin, Failure> {
    let invalid = || Failure::Input("the PIN must be exactly 4 digits".to_owned());
    if from_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::Input(format!("cannot read the PIN from stdin: {e}")))?;
        return Pin::parse(line.trim_end_matches(['\r', '\n'])).map_err(|_| invalid());
    }
    for _ in 0..3 {
        let typed = Zeroizing::new(
            rpassword::prompt_password("PIN (4 digits, not shown): ")
                .map_err(|e| Failure::Input(format!("cannot read the PIN: {e}")))?,
        );
        match Pin::parse(typed.trim()) {
            Ok(pin) => return Ok(pin),
            Err(e) => eprintln!("{e}."),
        }
    }
    Err(invalid())
}
