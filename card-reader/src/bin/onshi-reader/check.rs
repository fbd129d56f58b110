//! The `check` command: the whole card eligibility flow at the desk.

use std::time::Duration;

use card_reader::answer::Answer;
use card_reader::server::{CardCheck, Consents, ServerClient, Token};
use zeroize::Zeroizing;

use crate::cli::{CheckArgs, Consent, FaceArgs};
use crate::outcome::Failure;
use crate::signing::{sign_challenge, Binding};
use card_reader::binding::Purpose;

/// Runs the flow; prints the answer on stdout and progress on stderr.
pub fn run(args: &CheckArgs) -> Result<(), Failure> {
    // The token is checked first: no point asking for a PIN we cannot use.
    let client = facility_client(
        &args.server,
        args.token_file.as_deref(),
        args.server_timeout,
    )?;

    let at = AtReader {
        reader: args.reader.as_deref(),
        timeout: args.timeout,
        pin_stdin: args.pin_stdin,
    };
    let answer = check_card(
        &client,
        &at,
        args.date_of_care.clone(),
        consents(&args.consent),
    )?;
    if args.json {
        println!("{:#}", answer.raw());
    } else {
        println!("Eligibility answer:");
        print!("{}", answer.desk_text());
    }
    // The answer is shown already: a face file that cannot be written is reported, and the
    // desk still has the answer on screen.
    write_face(&args.face, &answer)?;
    Ok(())
}

/// Writes the answer as the real system's face file, when a face folder is set.
pub fn write_face(face: &FaceArgs, answer: &Answer) -> Result<(), Failure> {
    let Some(dir) = &face.dir else {
        return Ok(());
    };
    let path = onshi_oqs_xml::face::write(dir, answer.raw(), face.encoding).map_err(|e| {
        card_reader::Error::Unexpected(anyhow::Error::new(e).context("writing the face file"))
    })?;
    eprintln!("onshi-reader: face file {}", path.display());
    Ok(())
}

/// Where the card is read and how its PIN is asked.
pub struct AtReader<'a> {
    pub reader: Option<&'a str>,
    pub timeout: u64,
    pub pin_stdin: bool,
}

/// One card check against `client`'s server: card, PIN, a challenge signed with the consents,
/// the server's answer. `check` and `serve` both run it.
pub fn check_card(
    client: &ServerClient,
    at: &AtReader<'_>,
    date_of_care: Option<String>,
    consents: Consents,
) -> Result<Answer, Failure> {
    let origin = client.origin()?;
    let bound = Binding {
        purpose: Purpose::Check,
        origin: &origin,
        consents: Some(&consents),
    };
    let signed = sign_challenge(at.reader, at.timeout, at.pin_stdin, &bound, || {
        client.challenge()
    })?;
    let check = CardCheck::new(
        &signed.certificate,
        &signed.challenge,
        &signed.signature,
        date_of_care,
        consents,
    );
    Ok(client.check_card(&check)?)
}

fn consents(list: &[Consent]) -> Consents {
    Consents {
        medication: list.contains(&Consent::Medication),
        checkups: list.contains(&Consent::Checkups),
        diagnosis: list.contains(&Consent::Diagnosis),
        surgery: list.contains(&Consent::Surgery),
        limit_certificate: list.contains(&Consent::LimitCertificate),
        specific_diseases: list.contains(&Consent::SpecificDiseases),
    }
}

/// The client of a facility's requests: its token from `token_file`, else `ONSHI_TOKEN`
/// (read, handed to the client and dropped).
pub fn facility_client(
    server: &str,
    token_file: Option<&std::path::Path>,
    timeout_secs: u64,
) -> Result<ServerClient, Failure> {
    let token = token_from(token_file)?;
    Ok(ServerClient::new(
        server,
        &token,
        Duration::from_secs(timeout_secs),
    ))
}

/// The facility token from `file`, else from `ONSHI_TOKEN`.
fn token_from(file: Option<&std::path::Path>) -> Result<Token, Failure> {
    let raw = match file {
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
