//! The JPKI application on a connected card: read the user-authentication certificate,
//! ask the PIN state, verify the PIN, sign. Status words are mapped to [`Error`] here. The same
//! card session also reaches the input-assistance application ([`crate::surface`]).

use std::ffi::CStr;

use anyhow::anyhow;
use pcsc::Disposition;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::apdu::{self, StatusWord};
use crate::error::{Error, Result};
use crate::pin::Pin;
use crate::reader::Readers;

/// The PIN state before a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinStatus {
    /// Not verified yet; this many tries left (at least 1).
    TriesLeft(u8),
    /// Already verified in this session.
    Verified,
}

/// A card on which the JPKI application is selected.
///
/// Dropping it resets the card, so a verified PIN does not outlive the session.
pub struct JpkiCard {
    // `Some` until dropped; `Option` only so `Drop` can take it to disconnect.
    card: Option<pcsc::Card>,
}

impl JpkiCard {
    /// Connects to the card on `reader` and selects the JPKI application.
    ///
    /// # Errors
    /// [`Error::NotMyNumberCard`] when the card has no JPKI application;
    /// [`Error::CardRemoved`]; other PC/SC failures.
    pub fn open(readers: &Readers, reader: &CStr) -> Result<JpkiCard> {
        let card = readers.connect(reader)?;
        let mut jpki = JpkiCard { card: Some(card) };
        let (_, sw) = jpki.transmit("select the JPKI application", &apdu::select_jpki_app())?;
        match sw {
            StatusWord::OK => Ok(jpki),
            StatusWord::NOT_FOUND => Err(Error::NotMyNumberCard),
            sw => Err(Error::Card {
                step: "select the JPKI application",
                sw,
            }),
        }
    }

    /// Reads the user-authentication certificate (EF 000A) as DER.
    ///
    /// # Errors
    /// [`Error::CardRemoved`]; [`Error::Card`] for a refused read;
    /// [`Error::Unexpected`] when the file does not start with a DER SEQUENCE.
    pub fn read_auth_certificate(&mut self) -> Result<Vec<u8>> {
        self.select_ef(apdu::EF_AUTH_CERT, "select the certificate")?;
        let mut der = self.read(0, 7)?;
        let total = apdu::der_total_len(&der)
            .filter(|&t| (7..0x8000).contains(&t))
            .ok_or_else(|| anyhow!("the certificate file does not start with a DER SEQUENCE"))?;
        der.truncate(total);
        while der.len() < total {
            let chunk = (total - der.len()).min(apdu::MAX_READ);
            let part = self.read(der.len(), chunk)?;
            der.extend_from_slice(&part);
        }
        Ok(der)
    }

    pub(crate) fn read(&mut self, offset: usize, len: usize) -> Result<Vec<u8>> {
        let (data, sw) = self.transmit("read the certificate", &apdu::read_binary(offset, len))?;
        if sw != StatusWord::OK {
            return Err(Error::Card {
                step: "read the certificate",
                sw,
            });
        }
        if data.len() != len {
            return Err(anyhow!("the card returned {} bytes, {len} asked", data.len()).into());
        }
        Ok(data)
    }

    /// Asks how many PIN tries are left, without spending one.
    ///
    /// # Errors
    /// [`Error::PinBlocked`] when none are left; [`Error::CardRemoved`]; [`Error::Card`].
    pub fn pin_status(&mut self) -> Result<PinStatus> {
        self.pin_status_of(apdu::EF_AUTH_PIN)
    }

    /// The state of the PIN in EF `pin_ef` of the selected application.
    pub(crate) fn pin_status_of(&mut self, pin_ef: [u8; 2]) -> Result<PinStatus> {
        self.select_ef(pin_ef, "select the PIN")?;
        let (_, sw) = self.transmit("ask the PIN state", &apdu::pin_status())?;
        match sw {
            StatusWord::OK => Ok(PinStatus::Verified),
            StatusWord::BLOCKED => Err(Error::PinBlocked),
            sw => match sw.counter() {
                Some(0) => Err(Error::PinBlocked),
                Some(n) => Ok(PinStatus::TriesLeft(n)),
                None => Err(Error::Card {
                    step: "ask the PIN state",
                    sw,
                }),
            },
        }
    }

    /// Verifies the PIN. The PIN is consumed: it is wiped as soon as the command is sent.
    ///
    /// # Errors
    /// [`Error::WrongPin`] with the tries left; [`Error::PinBlocked`];
    /// [`Error::CardRemoved`]; [`Error::Card`].
    pub fn verify_pin(&mut self, pin: Pin) -> Result<()> {
        self.verify_pin_of(apdu::EF_AUTH_PIN, pin)
    }

    /// Verifies `pin` against the PIN in EF `pin_ef` of the selected application.
    pub(crate) fn verify_pin_of(&mut self, pin_ef: [u8; 2], pin: Pin) -> Result<()> {
        self.select_ef(pin_ef, "select the PIN")?;
        let mut command = Zeroizing::new([0u8; 9]);
        apdu::verify_pin(pin.digits(), &mut command);
        drop(pin);
        let (_, sw) = self.transmit("verify the PIN", command.as_slice())?;
        drop(command);
        match sw {
            StatusWord::OK => Ok(()),
            StatusWord::BLOCKED => Err(Error::PinBlocked),
            sw => match sw.counter() {
                Some(0) => Err(Error::PinBlocked),
                Some(n) => Err(Error::WrongPin { tries_left: n }),
                None => Err(Error::Card {
                    step: "verify the PIN",
                    sw,
                }),
            },
        }
    }

    /// Signs SHA-256(`message`) with the user-authentication key; see [`Self::sign_sha256`].
    ///
    /// # Errors
    /// As [`Self::sign_sha256`].
    pub fn sign_message(&mut self, message: &[u8]) -> Result<Vec<u8>> {
        let hash: [u8; 32] = Sha256::digest(message).into();
        self.sign_sha256(&hash)
    }

    /// Signs a SHA-256 hash: the card gets its DigestInfo, pads it (PKCS#1 v1.5) and
    /// returns the 256-byte RSA signature, which verifies as RSASSA-PKCS1-v1_5 SHA-256.
    ///
    /// # Errors
    /// [`Error::PinNotVerified`]; [`Error::CardRemoved`]; [`Error::Card`].
    pub fn sign_sha256(&mut self, hash: &[u8; 32]) -> Result<Vec<u8>> {
        self.select_ef(apdu::EF_AUTH_KEY, "select the key")?;
        let (sig, sw) = self.transmit("sign", &apdu::sign(hash))?;
        match sw {
            StatusWord::OK if sig.len() == apdu::SIGNATURE_LEN => Ok(sig),
            StatusWord::OK => {
                Err(anyhow!("the card returned a {}-byte signature", sig.len()).into())
            }
            StatusWord::SECURITY_NOT_SATISFIED => Err(Error::PinNotVerified),
            sw => Err(Error::Card { step: "sign", sw }),
        }
    }

    /// Selects the JPKI application again (after another application was used).
    ///
    /// # Errors
    /// [`Error::NotMyNumberCard`]; [`Error::CardRemoved`]; [`Error::Card`].
    pub fn select_jpki(&mut self) -> Result<()> {
        match self.transmit("select the JPKI application", &apdu::select_jpki_app())? {
            (_, StatusWord::OK) => Ok(()),
            (_, StatusWord::NOT_FOUND) => Err(Error::NotMyNumberCard),
            (_, sw) => Err(Error::Card {
                step: "select the JPKI application",
                sw,
            }),
        }
    }

    pub(crate) fn select_ef(&mut self, id: [u8; 2], step: &'static str) -> Result<()> {
        match self.transmit(step, &apdu::select_ef(id))? {
            (_, StatusWord::OK) => Ok(()),
            (_, sw) => Err(Error::Card { step, sw }),
        }
    }

    /// Sends one command; follows `61 xx` (GET RESPONSE) and `6C xx` (wrong Le), which
    /// T=0 readers produce for commands with data in both directions.
    pub(crate) fn transmit(
        &mut self,
        step: &'static str,
        command: &[u8],
    ) -> Result<(Vec<u8>, StatusWord)> {
        // Only `Drop` takes the card, so it is there for any `&mut self` call.
        let card = self.card.as_ref().expect("card present until drop");
        let mut buf = [0u8; pcsc::MAX_BUFFER_SIZE];
        let mut data = Vec::new();
        let mut resend;
        let mut command = command;
        loop {
            let resp = card
                .transmit(command, &mut buf)
                .map_err(|e| Error::from_pcsc(step, e))?;
            let (part, sw) = apdu::split_response(resp)
                .ok_or_else(|| anyhow!("the card answered {} bytes to {step}", resp.len()))?;
            data.extend_from_slice(part);
            let [sw1, sw2] = sw.to_bytes();
            match sw1 {
                0x61 => resend = vec![0x00, 0xC0, 0x00, 0x00, sw2],
                0x6C if command.len() >= 5 => {
                    resend = command.to_vec();
                    let last = resend.len() - 1;
                    resend[last] = sw2;
                }
                _ => return Ok((data, sw)),
            }
            command = &resend;
        }
    }
}

impl Drop for JpkiCard {
    fn drop(&mut self) {
        if let Some(card) = self.card.take() {
            // Resetting clears the card's security state (the verified PIN). Failing to
            // (the card is already gone) leaves nothing to clear.
            let _ = card.disconnect(Disposition::ResetCard);
        }
    }
}
