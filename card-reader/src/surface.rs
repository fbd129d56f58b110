//! The 券面事項入力補助AP (card-surface input assistance) on a connected card: its PIN, its
//! records and its internal authentication, in the same session as the JPKI application
//! (layout and sources: `surface.md` beside this file).

use anyhow::anyhow;

use crate::apdu::{self, StatusWord};
use crate::error::{Error, Result};
use crate::jpki::{JpkiCard, PinStatus};
use crate::pin::Pin;

/// The records of the application as read from the card, each one TLV.
#[derive(Clone)]
pub struct SurfaceRecords {
    /// EF 0001. Holds the My Number: sent to the server only, never printed.
    pub my_number: Vec<u8>,
    /// EF 0002.
    pub basic_facts: Vec<u8>,
    /// EF 0003.
    pub signature: Vec<u8>,
    /// EF 0004.
    pub issuer_certificate: Vec<u8>,
    /// EF 0006.
    pub auth_key: Vec<u8>,
}

impl std::fmt::Debug for SurfaceRecords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The records hold the number and the person's basic facts: never in debug output.
        f.write_str("SurfaceRecords(****)")
    }
}

impl JpkiCard {
    /// Selects the input-assistance application.
    ///
    /// # Errors
    /// [`Error::NotMyNumberCard`] when the card has none; [`Error::CardRemoved`]; [`Error::Card`].
    pub fn select_surface(&mut self) -> Result<()> {
        let step = "select the input-assistance application";
        match self.transmit(step, &apdu::select_app(&apdu::SURFACE_AID))? {
            (_, StatusWord::OK) => Ok(()),
            (_, StatusWord::NOT_FOUND) => Err(Error::NotMyNumberCard),
            (_, sw) => Err(Error::Card { step, sw }),
        }
    }

    /// The input-assistance PIN's state (the application must be selected).
    ///
    /// # Errors
    /// As [`JpkiCard::pin_status`].
    pub fn surface_pin_status(&mut self) -> Result<PinStatus> {
        self.pin_status_of(apdu::EF_SURFACE_PIN)
    }

    /// Verifies the input-assistance PIN (the application must be selected).
    ///
    /// # Errors
    /// As [`JpkiCard::verify_pin`].
    pub fn verify_surface_pin(&mut self, pin: Pin) -> Result<()> {
        self.verify_pin_of(apdu::EF_SURFACE_PIN, pin)
    }

    /// Reads the five records (the PIN must be verified).
    ///
    /// # Errors
    /// [`Error::PinNotVerified`] (`69 82`); [`Error::CardRemoved`]; [`Error::Card`];
    /// [`Error::Unexpected`] for a record that is not one TLV.
    pub fn read_surface_records(&mut self) -> Result<SurfaceRecords> {
        Ok(SurfaceRecords {
            my_number: self.read_tlv(apdu::EF_SURFACE_MY_NUMBER)?,
            basic_facts: self.read_tlv(apdu::EF_SURFACE_BASIC_FACTS)?,
            signature: self.read_tlv(apdu::EF_SURFACE_SIGNATURE)?,
            issuer_certificate: self.read_tlv(apdu::EF_SURFACE_ISSUER_CERT)?,
            auth_key: self.read_tlv(apdu::EF_SURFACE_AUTH_PUBLIC)?,
        })
    }

    /// INTERNAL AUTHENTICATE: the application's key signs a SHA-256 (as a DigestInfo).
    ///
    /// # Errors
    /// [`Error::PinNotVerified`]; [`Error::CardRemoved`]; [`Error::Card`].
    pub fn internal_authenticate(&mut self, hash: &[u8; 32]) -> Result<Vec<u8>> {
        self.select_ef(
            apdu::EF_SURFACE_AUTH_KEY,
            "select the internal-authentication key",
        )?;
        let step = "internal authentication";
        match self.transmit(step, &apdu::internal_authenticate(hash))? {
            (sig, StatusWord::OK) if sig.len() == apdu::SIGNATURE_LEN => Ok(sig),
            (sig, StatusWord::OK) => {
                Err(anyhow!("the card returned a {}-byte signature", sig.len()).into())
            }
            (_, StatusWord::SECURITY_NOT_SATISFIED) => Err(Error::PinNotVerified),
            (_, sw) => Err(Error::Card { step, sw }),
        }
    }

    /// Reads one record: its TLV header first, then exactly the length it gives.
    fn read_tlv(&mut self, ef: [u8; 2]) -> Result<Vec<u8>> {
        self.select_ef(ef, "select an input-assistance record")?;
        const HEADER: usize = 6;
        let mut bytes = match self.read(0, HEADER) {
            Err(Error::Card {
                sw: StatusWord::SECURITY_NOT_SATISFIED,
                ..
            }) => return Err(Error::PinNotVerified),
            other => other?,
        };
        let total = apdu::tlv_total_len(&bytes)
            .filter(|&t| (HEADER..0x8000).contains(&t))
            .ok_or_else(|| anyhow!("an input-assistance record is not one TLV"))?;
        while bytes.len() < total {
            let chunk = (total - bytes.len()).min(apdu::MAX_READ);
            let part = self.read(bytes.len(), chunk)?;
            bytes.extend_from_slice(&part);
        }
        Ok(bytes)
    }
}
