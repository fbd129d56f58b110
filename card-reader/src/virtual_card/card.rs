//! The virtual JPKI card: file system, PIN counters, security state and signing, as one
//! state machine fed with command APDUs (DOMAIN.md §5), and, when its profile has one, the
//! 券面事項入力補助AP ([`super::surface`], `../surface.md`). Selecting one application clears
//! the security state of the other, as on the chip.
//!
//! Deliberate simplifications: SELECT never returns FCI (P2 is ignored); the signature
//! certificate (EF 0001) needs the signature PIN like on a real card, and the signature
//! key (EF 001A) signs with the user-authentication key, because nothing here uses it.

use rsa::{Pkcs1v15Sign, RsaPrivateKey};

use super::surface::{SurfaceProfile, SURFACE_PIN_TRIES};
use crate::apdu::{self, StatusWord};

/// The synthetic signature PIN (EF 001B): 6-16 upper-case letters/digits.
pub const SIGN_PIN: &[u8] = b"ONSHITEST1";
/// Tries of a fresh user-authentication PIN.
pub const AUTH_PIN_TRIES: u8 = 3;
/// Tries of a fresh signature PIN.
pub const SIGN_PIN_TRIES: u8 = 5;

/// What is on the card.
#[derive(Clone)]
pub struct CardProfile {
    /// `false` for a card without the JPKI application (every AID answers `6A 82`).
    pub jpki: bool,
    /// The user-authentication PIN.
    pub pin: [u8; 4],
    /// Tries left at start (0 = blocked).
    pub tries: u8,
    /// EF 000A, DER.
    pub auth_cert: Vec<u8>,
    /// EF 000B, DER.
    pub auth_ca_cert: Vec<u8>,
    /// The key behind EF 0017.
    pub auth_key: RsaPrivateKey,
    /// The input-assistance application; `None` for a card without one (its AID answers
    /// `6A 82`).
    pub surface: Option<SurfaceProfile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum App {
    Jpki,
    Surface,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ef {
    AuthCert,
    AuthCaCert,
    SignCert,
    SignCaCert,
    AuthPin,
    SignPin,
    AuthKey,
    SignKey,
    SurfaceMyNumber,
    SurfaceFacts,
    SurfaceSignature,
    SurfaceIssuerCert,
    SurfaceAuthPublic,
    SurfaceAuthKey,
    SurfacePin,
}

impl Ef {
    fn by_id(app: App, id: [u8; 2]) -> Option<Ef> {
        if app == App::Surface {
            return Some(match id {
                apdu::EF_SURFACE_MY_NUMBER => Ef::SurfaceMyNumber,
                apdu::EF_SURFACE_BASIC_FACTS => Ef::SurfaceFacts,
                apdu::EF_SURFACE_SIGNATURE => Ef::SurfaceSignature,
                apdu::EF_SURFACE_ISSUER_CERT => Ef::SurfaceIssuerCert,
                apdu::EF_SURFACE_AUTH_PUBLIC => Ef::SurfaceAuthPublic,
                apdu::EF_SURFACE_AUTH_KEY => Ef::SurfaceAuthKey,
                apdu::EF_SURFACE_PIN => Ef::SurfacePin,
                _ => return None,
            });
        }
        Some(match id {
            apdu::EF_AUTH_CERT => Ef::AuthCert,
            apdu::EF_AUTH_CA_CERT => Ef::AuthCaCert,
            apdu::EF_SIGN_CERT => Ef::SignCert,
            apdu::EF_SIGN_CA_CERT => Ef::SignCaCert,
            apdu::EF_AUTH_PIN => Ef::AuthPin,
            apdu::EF_SIGN_PIN => Ef::SignPin,
            apdu::EF_AUTH_KEY => Ef::AuthKey,
            apdu::EF_SIGN_KEY => Ef::SignKey,
            _ => return None,
        })
    }
}

/// A parsed short command APDU.
struct Command<'a> {
    cla: u8,
    ins: u8,
    p1: u8,
    p2: u8,
    data: &'a [u8],
    /// Expected length, 1..=256; `None` when the command has no Le.
    le: Option<usize>,
}

impl<'a> Command<'a> {
    /// Splits a short APDU into its parts; `67 00` when the lengths do not add up.
    fn parse(raw: &'a [u8]) -> Result<Command<'a>, StatusWord> {
        let [cla, ins, p1, p2, body @ ..] = raw else {
            return Err(StatusWord::WRONG_LENGTH);
        };
        let le_of = |b: u8| if b == 0 { 256 } else { usize::from(b) };
        let (data, le) = match body {
            [] => (&body[..0], None),
            [le] => (&body[..0], Some(le_of(*le))),
            [lc, rest @ ..] => {
                let lc = usize::from(*lc);
                match rest.len().checked_sub(lc) {
                    Some(0) if lc > 0 => (&rest[..lc], None),
                    Some(1) if lc > 0 => (&rest[..lc], Some(le_of(rest[lc]))),
                    _ => return Err(StatusWord::WRONG_LENGTH),
                }
            }
        };
        Ok(Command {
            cla: *cla,
            ins: *ins,
            p1: *p1,
            p2: *p2,
            data,
            le,
        })
    }
}

/// A PIN's retry counter (persistent) and verified flag (session state).
struct PinSlot {
    tries: u8,
    max: u8,
    verified: bool,
}

impl PinSlot {
    /// VERIFY against this PIN; no data asks for the state without spending a try.
    fn verify(&mut self, expected: &[u8], given: &[u8]) -> Reply {
        if given.is_empty() {
            return match (self.verified, self.tries) {
                (true, _) => ok(Vec::new()),
                (false, 0) => Err(StatusWord::BLOCKED),
                (false, n) => Err(StatusWord::tries_left(n)),
            };
        }
        if self.tries == 0 {
            return Err(StatusWord::BLOCKED);
        }
        if given == expected {
            self.tries = self.max;
            self.verified = true;
            ok(Vec::new())
        } else {
            self.tries -= 1;
            self.verified = false;
            Err(StatusWord::tries_left(self.tries))
        }
    }
}

/// The card's state. Power and reset come from [`crate::virtual_card::vpcd`].
pub struct VirtualCard {
    profile: CardProfile,
    app: Option<App>,
    current: Option<Ef>,
    auth_pin: PinSlot,
    sign_pin: PinSlot,
    surface_pin: PinSlot,
}

/// Data and status word of a response, or a bare error status word.
type Reply = Result<(Vec<u8>, StatusWord), StatusWord>;

fn ok(data: Vec<u8>) -> Reply {
    Ok((data, StatusWord::OK))
}

impl VirtualCard {
    /// A card as described by `profile`, powered off.
    pub fn new(profile: CardProfile) -> VirtualCard {
        let auth_pin = PinSlot {
            tries: profile.tries.min(AUTH_PIN_TRIES),
            max: AUTH_PIN_TRIES,
            verified: false,
        };
        let surface_pin = PinSlot {
            tries: profile
                .surface
                .as_ref()
                .map_or(0, |s| s.tries.min(SURFACE_PIN_TRIES)),
            max: SURFACE_PIN_TRIES,
            verified: false,
        };
        VirtualCard {
            profile,
            app: None,
            current: None,
            auth_pin,
            sign_pin: PinSlot {
                tries: SIGN_PIN_TRIES,
                max: SIGN_PIN_TRIES,
                verified: false,
            },
            surface_pin,
        }
    }

    /// Power off, power on and reset all clear the selection and the security state;
    /// PIN counters are persistent, like on the chip.
    pub fn reset(&mut self) {
        self.app = None;
        self.current = None;
        self.clear_security();
    }

    fn clear_security(&mut self) {
        self.auth_pin.verified = false;
        self.sign_pin.verified = false;
        self.surface_pin.verified = false;
    }

    /// The user-authentication PIN tries left.
    pub fn tries_left(&self) -> u8 {
        self.auth_pin.tries
    }

    /// Answers one command APDU with data + SW1 SW2.
    pub fn process(&mut self, raw: &[u8]) -> Vec<u8> {
        let cmd = match Command::parse(raw) {
            Ok(cmd) => cmd,
            Err(sw) => return sw.to_bytes().to_vec(),
        };
        let result = match (cmd.cla, cmd.ins) {
            (0x00, 0xA4) => self.select(&cmd),
            (0x00, 0xB0) => self.read_binary(&cmd),
            (0x00, 0x20) => self.verify(&cmd),
            (0x80, 0x2A) => self.sign(&cmd),
            (0x00, 0x88) => self.internal_authenticate(&cmd),
            (0x00 | 0x80, 0xA4 | 0xB0 | 0x20 | 0x2A | 0x88) => Err(StatusWord::CLA_NOT_SUPPORTED),
            _ => Err(StatusWord::INS_NOT_SUPPORTED),
        };
        let (mut data, sw) = result.unwrap_or_else(|sw| (Vec::new(), sw));
        data.extend_from_slice(&sw.to_bytes());
        data
    }

    fn select(&mut self, cmd: &Command<'_>) -> Reply {
        match cmd.p1 {
            // By AID.
            0x04 => {
                if cmd.data.is_empty() {
                    return Err(StatusWord::WRONG_LENGTH);
                }
                let app = if self.profile.jpki && cmd.data == apdu::JPKI_AID {
                    App::Jpki
                } else if self.profile.surface.is_some() && cmd.data == apdu::SURFACE_AID {
                    App::Surface
                } else {
                    return Err(StatusWord::NOT_FOUND);
                };
                if self.app != Some(app) {
                    self.clear_security();
                }
                self.app = Some(app);
                self.current = None;
                ok(Vec::new())
            }
            // An EF of the current application, by its 2-byte id.
            0x02 => {
                let id: [u8; 2] = cmd.data.try_into().map_err(|_| StatusWord::WRONG_LENGTH)?;
                let ef = self
                    .app
                    .and_then(|app| Ef::by_id(app, id))
                    .ok_or(StatusWord::NOT_FOUND)?;
                self.current = Some(ef);
                ok(Vec::new())
            }
            // The MF: leaves the application.
            0x00 if cmd.data.is_empty() || cmd.data == [0x3F, 0x00] => {
                self.reset();
                ok(Vec::new())
            }
            _ => Err(StatusWord::NOT_FOUND),
        }
    }

    fn read_binary(&mut self, cmd: &Command<'_>) -> Reply {
        let le = match (cmd.data.is_empty(), cmd.le) {
            (true, Some(le)) => le,
            _ => return Err(StatusWord::WRONG_LENGTH),
        };
        if cmd.p1 & 0x80 != 0 {
            // Short EF identifiers in P1 are not supported.
            return Err(StatusWord(0x6A86));
        }
        let surface = self.profile.surface.as_ref();
        let locked = !self.surface_pin.verified;
        let file: &[u8] = match (self.current, surface) {
            (Some(Ef::SurfaceIssuerCert), Some(s)) => &s.issuer_certificate,
            (
                Some(
                    Ef::SurfaceMyNumber
                    | Ef::SurfaceFacts
                    | Ef::SurfaceSignature
                    | Ef::SurfaceAuthPublic,
                ),
                Some(_),
            ) if locked => return Err(StatusWord::SECURITY_NOT_SATISFIED),
            (Some(Ef::SurfaceMyNumber), Some(s)) => &s.my_number,
            (Some(Ef::SurfaceFacts), Some(s)) => &s.basic_facts,
            (Some(Ef::SurfaceSignature), Some(s)) => &s.signature,
            (Some(Ef::SurfaceAuthPublic), Some(s)) => &s.auth_public,
            (current, _) => self.jpki_file(current)?,
        };

        let offset = usize::from(u16::from_be_bytes([cmd.p1, cmd.p2]));
        if offset > file.len() {
            return Err(StatusWord::WRONG_P1P2);
        }
        let end = (offset + le).min(file.len());
        let data = file[offset..end].to_vec();
        if data.len() < le {
            return Ok((data, StatusWord::END_OF_FILE));
        }
        ok(data)
    }

    /// The readable files of the JPKI application.
    fn jpki_file(&self, current: Option<Ef>) -> Result<&[u8], StatusWord> {
        Ok(match current {
            Some(Ef::AuthCert) => &self.profile.auth_cert,
            Some(Ef::AuthCaCert | Ef::SignCaCert) => &self.profile.auth_ca_cert,
            Some(Ef::SignCert) if self.sign_pin.verified => &self.profile.auth_cert,
            Some(Ef::SignCert) => return Err(StatusWord::SECURITY_NOT_SATISFIED),
            _ => return Err(StatusWord::NOT_ALLOWED),
        })
    }

    fn verify(&mut self, cmd: &Command<'_>) -> Reply {
        if cmd.p1 != 0x00 || cmd.p2 != 0x80 {
            return Err(StatusWord(0x6A86));
        }
        if cmd.le.is_some() {
            return Err(StatusWord::WRONG_LENGTH);
        }
        let given = cmd.data;
        match self.current {
            Some(Ef::AuthPin) if given.is_empty() || given.len() == 4 => {
                self.auth_pin.verify(&self.profile.pin, given)
            }
            Some(Ef::SignPin) if given.is_empty() || (6..=16).contains(&given.len()) => {
                self.sign_pin.verify(SIGN_PIN, given)
            }
            Some(Ef::SurfacePin) if given.is_empty() || given.len() == 4 => {
                let expected = self
                    .profile
                    .surface
                    .as_ref()
                    .map(|s| s.pin)
                    .unwrap_or_default();
                self.surface_pin.verify(&expected, given)
            }
            Some(Ef::AuthPin | Ef::SignPin | Ef::SurfacePin) => Err(StatusWord::WRONG_LENGTH),
            _ => Err(StatusWord::NOT_ALLOWED),
        }
    }

    fn sign(&mut self, cmd: &Command<'_>) -> Reply {
        if cmd.p1 != 0x00 || cmd.p2 != 0x80 {
            return Err(StatusWord(0x6A86));
        }
        let allowed = match self.current {
            Some(Ef::AuthKey) => self.auth_pin.verified,
            Some(Ef::SignKey) => self.sign_pin.verified,
            _ => return Err(StatusWord::NOT_ALLOWED),
        };
        // PKCS#1 v1.5 type 1 padding needs 11 bytes of the 256-byte block.
        if cmd.data.is_empty() || cmd.data.len() > apdu::SIGNATURE_LEN - 11 {
            return Err(StatusWord::WRONG_LENGTH);
        }
        if !allowed {
            return Err(StatusWord::SECURITY_NOT_SATISFIED);
        }
        // The card pads but does not hash: the data is the DigestInfo.
        self.profile
            .auth_key
            .sign(Pkcs1v15Sign::new_unprefixed(), cmd.data)
            .map(|sig| (sig, StatusWord::OK))
            .map_err(|_| StatusWord(0x6F00))
    }
}

impl VirtualCard {
    /// INTERNAL AUTHENTICATE with the input-assistance key: pads the DigestInfo it is given.
    fn internal_authenticate(&mut self, cmd: &Command<'_>) -> Reply {
        if cmd.p1 != 0x00 || cmd.p2 != 0x80 {
            return Err(StatusWord(0x6A86));
        }
        let (Some(Ef::SurfaceAuthKey), Some(surface)) =
            (self.current, self.profile.surface.as_ref())
        else {
            return Err(StatusWord::NOT_ALLOWED);
        };
        if cmd.data.is_empty() || cmd.data.len() > apdu::SIGNATURE_LEN - 11 {
            return Err(StatusWord::WRONG_LENGTH);
        }
        if !self.surface_pin.verified {
            return Err(StatusWord::SECURITY_NOT_SATISFIED);
        }
        surface
            .auth_key
            .sign(Pkcs1v15Sign::new_unprefixed(), cmd.data)
            .map(|sig| (sig, StatusWord::OK))
            .map_err(|_| StatusWord(0x6F00))
    }
}

#[cfg(test)]
mod tests;
