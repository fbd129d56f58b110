//! The one error type of the card reader: a variant for each outcome the person at the
//! desk (or the calling program) must treat differently.

use std::time::Duration;

use crate::apdu::StatusWord;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between the reader, the card and the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The PC/SC service (pcscd) is not running or not reachable.
    #[error("the smart-card service (pcscd) is not available: {0}")]
    ServiceUnavailable(pcsc::Error),
    /// No reader is connected, or none has the name asked for.
    #[error("{}", match .wanted {
        Some(name) => format!("no card reader named \"{name}\""),
        None => "no card reader found".to_owned(),
    })]
    NoReader {
        /// The reader name asked for, if any.
        wanted: Option<String>,
    },
    /// No card was put on the reader in time.
    #[error("no card on the reader after {} s", .waited.as_secs())]
    NoCard {
        /// How long we waited.
        waited: Duration,
    },
    /// The card has no JPKI application (`6A 82` on its selection).
    #[error("the card is not a My Number card")]
    NotMyNumberCard,
    /// The PIN was wrong; the card still allows `tries_left` attempts.
    #[error("wrong PIN, {tries_left} tries left")]
    WrongPin {
        /// Attempts left before the PIN blocks.
        tries_left: u8,
    },
    /// The PIN is blocked (`69 84`, or no tries left).
    #[error("the card's PIN is blocked")]
    PinBlocked,
    /// The card refused to sign because the PIN was not verified (`69 82`).
    #[error("the card refused to sign: the PIN was not verified")]
    PinNotVerified,
    /// The card was taken off the reader (or reset) in the middle of an operation.
    #[error("the card was removed during the operation")]
    CardRemoved,
    /// The card answered a status word the flow does not expect.
    #[error("the card answered {sw} to {step}")]
    Card {
        /// What we asked the card to do.
        step: &'static str,
        /// The status word it answered.
        sw: StatusWord,
    },
    /// The onshi server could not be reached (DNS, TCP, TLS, timeout).
    #[error("the onshi server at {url} cannot be reached: {reason}")]
    ServerUnreachable {
        /// The URL that was tried.
        url: String,
        /// What the transport reported.
        reason: String,
    },
    /// The onshi server answered with an error.
    #[error("the onshi server refused the request (HTTP {status}, {code}): {message}")]
    ServerRefused {
        /// HTTP status.
        status: u16,
        /// The server's stable error code (`error.code`).
        code: String,
        /// The server's message (`error.message`).
        message: String,
        /// The request field at fault (`error.field`), if any.
        field: Option<String>,
        /// What the desk's staff should do, in Japanese (`error.remedy`), if the server said.
        remedy: Option<String>,
    },
    /// Anything else: malformed data, unexpected PC/SC failures, local I/O.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl Error {
    /// Maps a PC/SC error by meaning; `step` says what was being done, for the log.
    pub(crate) fn from_pcsc(step: &'static str, err: pcsc::Error) -> Self {
        use pcsc::Error as P;
        match err {
            P::RemovedCard | P::ResetCard | P::NoSmartcard | P::UnpoweredCard => Error::CardRemoved,
            P::NoService | P::ServiceStopped => Error::ServiceUnavailable(err),
            P::NoReadersAvailable | P::UnknownReader | P::ReaderUnavailable => {
                Error::NoReader { wanted: None }
            }
            other => Error::Unexpected(anyhow::Error::new(other).context(step)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcsc_errors_map_by_meaning() {
        for e in [
            pcsc::Error::RemovedCard,
            pcsc::Error::ResetCard,
            pcsc::Error::NoSmartcard,
        ] {
            assert!(
                matches!(Error::from_pcsc("t", e), Error::CardRemoved),
                "{e:?}"
            );
        }
        assert!(matches!(
            Error::from_pcsc("t", pcsc::Error::NoService),
            Error::ServiceUnavailable(_)
        ));
        assert!(matches!(
            Error::from_pcsc("t", pcsc::Error::NoReadersAvailable),
            Error::NoReader { wanted: None }
        ));
        assert!(matches!(
            Error::from_pcsc("t", pcsc::Error::InvalidParameter),
            Error::Unexpected(_)
        ));
    }
}
