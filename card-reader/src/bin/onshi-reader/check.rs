//! The `check` command: the whole card eligibility flow at the desk.

use std::io::BufRead as _;
use std::time::Duration;

use card_reader::server::{CardCheck, Consents, ServerClient, Token};
use card_reader::{JpkiCard, Pin, PinStatus, Readers};
use zeroize::Zeroizing;

use crate::cli::{CheckArgs, Consent};
use crate::outcome::Failure;

/// Runs the flow; prints the answer on stdout and progress on stderr.
pub fn run(args: &CheckArgs) -> Result<(), Failure> {
    // The token is checked first: no point asking for a PIN we cannot use.
    let token = read_token(args)?;
    let client = ServerClient::new(
        &args.server,
        &token,
        Duration::from_secs(args.server_timeout),
    );
    drop(token);

    let readers = Readers::establish()?;
    eprintln!("Place the My Number card on the reader...");
    let name = readers.wait_for_card(args.reader.as_deref(), Duration::from_secs(args.timeout))?;
    let mut card = JpkiCard::open(&readers, &name)?;
    let certificate = card.read_auth_certificate()?;

    match card.pin_status()? {
        PinStatus::Verified => {}
        PinStatus::TriesLeft(n) => {
            eprintln!("PIN: {n} {} left.", if n == 1 { "try" } else { "tries" });
            let pin = read_pin(args.pin_stdin)?;
            card.verify_pin(pin)?;
        }
    }

    let challenge = client.challenge()?;
    let signature = card.sign_message(&challenge.nonce)?;
    // The card is no longer needed: resetting it now clears the verified PIN.
    drop(card);

    let check = CardCheck::new(
        &certificate,
        &challenge,
        &signature,
        args.date_of_care.clone(),
        consents(&args.consent),
    );
    let answer = client.check_card(&check)?;
    if args.json {
        println!("{:#}", answer.raw());
    } else {
        println!("Eligibility answer:");
        print!("{}", answer.desk_text());
    }
    Ok(())
}

fn consents(list: &[Consent]) -> Consents {
    Consents {
        medication: list.contains(&Consent::Medication),
        checkups: list.contains(&Consent::Checkups),
        diagnosis: list.contains(&Consent::Diagnosis),
        surgery: list.contains(&Consent::Surgery),
    }
}

fn read_token(args: &CheckArgs) -> Result<Token, Failure> {
    let raw = match &args.token_file {
        Some(path) => Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Failure::Input(format!(
                "cannot read the token file {}: {e}",
                path.display()
            ))
        })?),
        None => Zeroizing::new(std::env::var("ONSHI_TOKEN").map_err(|_| {
            Failure::Input("no facility token: give --token-file or set ONSHI_TOKEN".to_owned())
        })?),
    };
    Token::new(&raw)
        .map_err(|_| Failure::Input("the facility token is empty or malformed".to_owned()))
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
