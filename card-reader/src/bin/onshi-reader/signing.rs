//! The part of every card flow that happens at the reader: wait for the card, read its
//! certificate, verify the PIN, take a challenge from the server and have the card sign it,
//! bound to onshi (`card_reader::binding`: the use, the server origin, the nonce, the consents).

use std::io::BufRead as _;
use std::time::Duration;

use card_reader::binding::{self, Origin, Purpose};
use card_reader::server::{Challenge, Consents};
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
/// What the signature is for: the use, the server's origin and (for a check) the consents.
pub struct Binding<'a> {
    pub purpose: Purpose,
    pub origin: &'a Origin,
    pub consents: Option<&'a Consents>,
}

pub fn sign_challenge(
    reader: Option<&str>,
    timeout_secs: u64,
    pin_stdin: bool,
    bound: &Binding<'_>,
    challenge: impl FnOnce() -> card_reader::Result<Challenge>,
) -> Result<Signed, Failure> {
    let readers = Readers::establish()?;
    eprintln!("Place the My Number card on the reader...");
    let name = readers.wait_for_card(reader, Duration::from_secs(timeout_secs))?;
    let mut card = JpkiCard::open(&readers, &name)?;
    let certificate = card.read_auth_certificate()?;

    if let Some(pin) = ask_pin(card.pin_status()?, "PIN", pin_stdin)? {
        card.verify_pin(pin)?;
    }

    let challenge = challenge()?;
    let digest = binding::digest(
        bound.purpose,
        bound.origin,
        &challenge.nonce,
        bound.consents,
    );
    let signature = card.sign_sha256(&digest)?;
    // The card is no longer needed: resetting it now clears the verified PIN.
    drop(card);
    Ok(Signed {
        certificate,
        challenge,
        signature,
    })
}

/// Shows the tries left of the PIN called `what` and reads it; `None` when it is verified
/// already.
pub fn ask_pin(status: PinStatus, what: &str, from_stdin: bool) -> Result<Option<Pin>, Failure> {
    if !show_tries(status, what) {
        return Ok(None);
    }
    read_pin(from_stdin, "PIN (4 digits, not shown): ").map(Some)
}

/// Prints the tries left of the PIN called `what`; `false` when it is verified already.
pub fn show_tries(status: PinStatus, what: &str) -> bool {
    match status {
        PinStatus::Verified => false,
        PinStatus::TriesLeft(n) => {
            eprintln!("{what}: {n} {} left.", if n == 1 { "try" } else { "tries" });
            true
        }
    }
}

/// Reads one PIN and returns it twice: for a holder who set both PINs to the same digits.
pub fn read_pin_twice(from_stdin: bool, prompt: &str) -> Result<(Pin, Pin), Failure> {
    let pin = read_pin(from_stdin, prompt)?;
    // Pin has no Clone (a secret is not copied by accident): parse its digits again.
    let digits = Zeroizing::new(String::from_utf8_lossy(pin.reveal()).into_owned());
    let again = Pin::parse(&digits)
        .map_err(|_| Failure::Input("the PIN must be exactly 4 digits".to_owned()))?;
    Ok((pin, again))
}

/// Reads the PIN without echo, asking again (up to 3 times) when it is not 4 digits, so
/// a typo never costs a card try. With `from_stdin`, one line of standard input.
pub fn read_pin(from_stdin: bool, prompt: &str) -> Result<Pin, Failure> {
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
            rpassword::prompt_password(prompt)
                .map_err(|e| Failure::Input(format!("cannot read the PIN: {e}")))?,
        );
        match Pin::parse(typed.trim()) {
            Ok(pin) => return Ok(pin),
            Err(e) => eprintln!("{e}."),
        }
    }
    Err(invalid())
}

/// Where a card holder's own request goes and how the card is read for it.
pub struct HolderRequest<'a> {
    pub server: &'a str,
    pub server_timeout: u64,
    pub reader: Option<&'a str>,
    pub timeout: u64,
    pub pin_stdin: bool,
}

/// The card holder's proof for `purpose` over a self challenge (no token), with the client to
/// send it with.
pub fn holder_proof(
    request: &HolderRequest<'_>,
    purpose: Purpose,
) -> Result<
    (
        card_reader::server::ServerClient,
        card_reader::server::SelfProof,
    ),
    Failure,
> {
    let client = card_reader::server::ServerClient::for_card_holder(
        request.server,
        Duration::from_secs(request.server_timeout),
    );
    let origin = client.origin()?;
    let bound = Binding {
        purpose,
        origin: &origin,
        consents: None,
    };
    let signed = sign_challenge(
        request.reader,
        request.timeout,
        request.pin_stdin,
        &bound,
        || client.self_challenge(),
    )?;
    let proof = card_reader::server::SelfProof::new(
        &signed.certificate,
        &signed.challenge,
        &signed.signature,
    );
    Ok((client, proof))
}
