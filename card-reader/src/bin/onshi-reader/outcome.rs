//! What the person at the desk reads when something fails, and the exit code scripts
//! see: one code per class of failure.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done (for `check`: an answer was printed, whatever its validity) |
//! | 1 | unexpected failure |
//! | 2 | bad command line or input (clap uses 2 too) |
//! | 3 | the smart-card service (pcscd) is not running |
//! | 4 | no card reader |
//! | 5 | no card on the reader (timeout) |
//! | 6 | not a My Number card |
//! | 7 | wrong PIN |
//! | 8 | PIN blocked |
//! | 9 | PIN not verified |
//! | 10 | card removed during the operation |
//! | 11 | other card error |
//! | 12 | server unreachable |
//! | 13 | server refused |

use std::process::ExitCode;

use card_reader::Error;

/// A failed command: a card-reader error or bad input.
pub enum Failure {
    Card(Error),
    Input(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::Card(e)
    }
}

impl Failure {
    /// Prints the message for the desk to stderr and returns the exit code.
    pub fn report(self) -> ExitCode {
        let (code, message) = match self {
            Failure::Input(msg) => (2, msg),
            Failure::Card(e) => (exit_code(&e), desk_message(&e)),
        };
        eprintln!("onshi-reader: {message}");
        ExitCode::from(code)
    }
}

pub fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Unexpected(_) => 1,
        Error::ServiceUnavailable(_) => 3,
        Error::NoReader { .. } => 4,
        Error::NoCard { .. } => 5,
        Error::NotMyNumberCard => 6,
        Error::WrongPin { .. } => 7,
        Error::PinBlocked => 8,
        Error::PinNotVerified => 9,
        Error::CardRemoved => 10,
        Error::Card { .. } => 11,
        Error::ServerUnreachable { .. } => 12,
        Error::ServerRefused { .. } => 13,
    }
}

pub fn desk_message(e: &Error) -> String {
    match e {
        Error::ServiceUnavailable(_) => format!(
            "{e}. The card reader service is not running: ask IT to start pcscd \
             (on a test machine: ops/card-stack)."
        ),
        Error::NoReader { .. } => {
            format!("{e}. Check that the card reader is plugged in (and the --reader name).")
        }
        Error::NoCard { .. } => {
            format!("{e}. Place the My Number card on the reader and start again.")
        }
        Error::NotMyNumberCard => format!(
            "{e}. Ask for the My Number card, or confirm eligibility with the health \
             insurance card or eligibility certificate."
        ),
        Error::WrongPin { tries_left } => format!(
            "{e}. Ask the person to enter the PIN again carefully; after {tries_left} more \
             wrong tries the card locks. Face recognition or a staff visual check also work."
        ),
        Error::PinBlocked => format!(
            "{e}. The person must have it reset at their municipal office. Today, confirm \
             eligibility with face recognition, a staff visual check or the insurance card."
        ),
        Error::PinNotVerified => format!("{e}. Start the check again."),
        Error::CardRemoved => {
            format!("{e}. Place the card back on the reader, leave it there, and start again.")
        }
        Error::Card { .. } => format!(
            "{e}. Start again; if it repeats the card may be damaged: confirm eligibility \
             another way."
        ),
        Error::ServerUnreachable { .. } => format!(
            "{e}. Check the network connection; meanwhile confirm eligibility with the \
             insurance card or eligibility certificate."
        ),
        Error::ServerRefused { status, field, .. } => {
            let at = field
                .as_deref()
                .map(|f| format!(" (field: {f})"))
                .unwrap_or_default();
            let advice = match status {
                401 | 403 => "The facility token is not accepted: ask IT to check it.",
                408..=410 => "Start the check again.",
                429 | 500..=599 => {
                    "Try again in a moment; if it repeats, confirm eligibility another way."
                }
                _ => "Check the input and start again.",
            };
            // The server's message usually ends its own sentence.
            let text = format!("{e}{at}");
            let stop = if text.ends_with('.') { "" } else { "." };
            format!("{text}{stop} {advice}")
        }
        Error::Unexpected(err) => {
            format!("unexpected failure: {err:#}. Start again; if it repeats, tell IT.")
        }
    }
}
