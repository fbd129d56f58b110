//! The blocking HTTP client of the onshi server's card endpoints: get a challenge, send the
//! certificate and the card's signature, get the eligibility answer (a facility, with its
//! token) or the person's own access log (the card holder, with no token). Errors are mapped
//! to "unreachable" or "refused" with the server's own code and message.

use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::answer::Answer;
use crate::error::{Error, Result};

/// The facility's bearer token. Redacted in `Debug`, no `Display`, wiped on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Token(String);

impl Token {
    /// Takes a token as read from a file or the environment; surrounding whitespace
    /// (the file's final newline) is dropped.
    ///
    /// # Errors
    /// If the token is empty or contains characters not allowed in an HTTP header.
    pub fn new(raw: &str) -> Result<Token> {
        let t = raw.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(anyhow!("the facility token is empty or has invalid characters").into());
        }
        Ok(Token(t.to_owned()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(****)")
    }
}

/// A server challenge: the card signs SHA-256 of `nonce`.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// Id to send back with the signature.
    pub challenge_id: String,
    /// The random bytes to sign (decoded from base64).
    pub nonce: Vec<u8>,
    /// When the challenge expires (RFC 3339, as sent).
    pub expires_at: String,
}

#[derive(Deserialize)]
struct ChallengeBody {
    challenge_id: String,
    nonce: String,
    expires_at: String,
}

/// Which information the person consented to show at the reader.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Consents {
    /// Medication history.
    pub medication: bool,
    /// Specific health check-ups.
    pub checkups: bool,
    /// Diagnosis information.
    pub diagnosis: bool,
    /// Surgery information.
    pub surgery: bool,
    /// The high-cost limit certificate in the eligibility answer.
    pub limit_certificate: bool,
    /// The specific-disease certificates in the eligibility answer.
    pub specific_diseases: bool,
}

/// The body of `POST /v1/eligibility/card`.
#[derive(Debug, Clone, Serialize)]
pub struct CardCheck {
    /// The user-authentication certificate, base64 DER.
    pub certificate: String,
    /// From [`Challenge::challenge_id`].
    pub challenge_id: String,
    /// The card's signature, base64.
    pub signature: String,
    /// `YYYY-MM-DD`; the server takes today when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_of_care: Option<String>,
    /// The person's consents.
    pub consents: Consents,
}

impl CardCheck {
    /// Builds the request from raw certificate and signature bytes.
    pub fn new(
        certificate_der: &[u8],
        challenge: &Challenge,
        signature: &[u8],
        date_of_care: Option<String>,
        consents: Consents,
    ) -> CardCheck {
        CardCheck {
            certificate: B64.encode(certificate_der),
            challenge_id: challenge.challenge_id.clone(),
            signature: B64.encode(signature),
            date_of_care,
            consents,
        }
    }
}

/// The body of `POST /v1/self/access-log`: the card proves its holder, nothing else is sent.
#[derive(Debug, Clone, Serialize)]
pub struct SelfProof {
    /// The user-authentication certificate, base64 DER.
    pub certificate: String,
    /// From [`Challenge::challenge_id`] of a self challenge.
    pub challenge_id: String,
    /// The card's signature, base64.
    pub signature: String,
}

impl SelfProof {
    /// Builds the request from raw certificate and signature bytes.
    pub fn new(certificate_der: &[u8], challenge: &Challenge, signature: &[u8]) -> SelfProof {
        SelfProof {
            certificate: B64.encode(certificate_der),
            challenge_id: challenge.challenge_id.clone(),
            signature: B64.encode(signature),
        }
    }
}

/// The input-assistance records and the internal authentication, each base64 (the body's
/// `card_surface`). Holds the My Number record: `Debug` is redacted, the strings are wiped.
#[derive(Serialize, Zeroize, ZeroizeOnDrop)]
pub struct CardSurface {
    my_number: String,
    basic_facts: String,
    signature: String,
    issuer_certificate: String,
    auth_key: String,
    internal_authentication: String,
}

impl fmt::Debug for CardSurface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardSurface(****)")
    }
}

/// The body of `POST /v1/card-links`: the JPKI proof and the input-assistance data, all from
/// one card session over one challenge.
#[derive(Debug, Serialize)]
pub struct CardLink {
    certificate: String,
    challenge_id: String,
    signature: String,
    card_surface: CardSurface,
}

impl CardLink {
    /// Builds the request from what the card gave.
    pub fn new(
        certificate_der: &[u8],
        challenge: &Challenge,
        signature: &[u8],
        records: &crate::surface::SurfaceRecords,
        internal_authentication: &[u8],
    ) -> CardLink {
        CardLink {
            certificate: B64.encode(certificate_der),
            challenge_id: challenge.challenge_id.clone(),
            signature: B64.encode(signature),
            card_surface: CardSurface {
                my_number: B64.encode(&records.my_number),
                basic_facts: B64.encode(&records.basic_facts),
                signature: B64.encode(&records.signature),
                issuer_certificate: B64.encode(&records.issuer_certificate),
                auth_key: B64.encode(&records.auth_key),
                internal_authentication: B64.encode(internal_authentication),
            },
        }
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    remedy: Option<String>,
}

/// Client of one onshi server for one facility, or for a card holder (no token).
pub struct ServerClient {
    agent: ureq::Agent,
    base: String,
    authorization: Option<Zeroizing<String>>,
}

impl ServerClient {
    /// A client of the server at `base_url` (`https://host[:port]`), authenticating
    /// with `token`. Every request times out after `timeout`.
    pub fn new(base_url: &str, token: &Token, timeout: Duration) -> ServerClient {
        ServerClient {
            authorization: Some(Zeroizing::new(format!("Bearer {}", token.0))),
            ..ServerClient::for_card_holder(base_url, timeout)
        }
    }

    /// A client of the server at `base_url` for the card's holder: it sends no token, as the
    /// card's signature is the credential of the self endpoints.
    pub fn for_card_holder(base_url: &str, timeout: Duration) -> ServerClient {
        ServerClient {
            agent: ureq::AgentBuilder::new().timeout(timeout).build(),
            base: base_url.trim_end_matches('/').to_owned(),
            authorization: None,
        }
    }

    /// `POST /v1/challenges`.
    ///
    /// # Errors
    /// [`Error::ServerUnreachable`], [`Error::ServerRefused`], or
    /// [`Error::Unexpected`] for a malformed answer.
    pub fn challenge(&self) -> Result<Challenge> {
        self.challenge_at("/v1/challenges")
    }

    /// `POST /v1/self/challenges`: a challenge for the holder's own access log.
    ///
    /// # Errors
    /// As [`ServerClient::challenge`].
    pub fn self_challenge(&self) -> Result<Challenge> {
        self.challenge_at("/v1/self/challenges")
    }

    /// `POST /v1/self/access-log`, with the page's query string (`before`, `limit`) as pairs.
    /// The answer is returned as the server sent it.
    ///
    /// # Errors
    /// [`Error::ServerUnreachable`], [`Error::ServerRefused`], or
    /// [`Error::Unexpected`] for an answer that is not JSON.
    pub fn access_log(
        &self,
        proof: &SelfProof,
        page: &[(&str, &str)],
    ) -> Result<serde_json::Value> {
        let url = format!("{}/v1/self/access-log", self.base);
        let mut request = self.request(&url);
        for (name, value) in page {
            request = request.query(name, value);
        }
        let resp = self.send(&url, request.send_json(proof))?;
        Ok(resp
            .into_json()
            .context("the server's access log is not JSON")?)
    }

    /// `POST /v1/card-links`: the server's answer as sent.
    ///
    /// # Errors
    /// [`Error::ServerUnreachable`], [`Error::ServerRefused`], or [`Error::Unexpected`] for an
    /// answer that is not JSON.
    pub fn link_card(&self, link: &CardLink) -> Result<serde_json::Value> {
        self.post_json("/v1/card-links", link)
    }

    /// `POST /v1/self/card-unlink`: the holder unlinks their card, over a self challenge.
    ///
    /// # Errors
    /// As [`ServerClient::link_card`].
    pub fn unlink_card(&self, proof: &SelfProof) -> Result<serde_json::Value> {
        self.post_json("/v1/self/card-unlink", proof)
    }

    /// `POST /v1/self/consents/withdraw`: the holder withdraws the consents given at readers.
    ///
    /// # Errors
    /// As [`ServerClient::link_card`].
    pub fn withdraw_consents(&self, proof: &SelfProof) -> Result<serde_json::Value> {
        self.post_json("/v1/self/consents/withdraw", proof)
    }

    /// The origin the card's signatures are bound to: this client's server URL's.
    ///
    /// # Errors
    /// A server URL that is not http(s).
    pub fn origin(&self) -> Result<crate::binding::Origin> {
        crate::binding::Origin::of_url(&self.base).map_err(|e| anyhow!(e).into())
    }

    fn post_json(&self, path: &str, body: &impl Serialize) -> Result<serde_json::Value> {
        let url = format!("{}{path}", self.base);
        let resp = self.send(&url, self.request(&url).send_json(body))?;
        Ok(resp
            .into_json()
            .context("the server's answer is not JSON")?)
    }

    fn challenge_at(&self, path: &str) -> Result<Challenge> {
        let url = format!("{}{path}", self.base);
        let resp = self.send(&url, self.request(&url).send_bytes(&[]))?;
        let body: ChallengeBody = resp
            .into_json()
            .context("the server's challenge is not the expected JSON")?;
        let nonce = B64
            .decode(body.nonce.as_bytes())
            .context("the server's nonce is not base64")?;
        if nonce.is_empty() {
            return Err(anyhow!("the server sent an empty nonce").into());
        }
        Ok(Challenge {
            challenge_id: body.challenge_id,
            nonce,
            expires_at: body.expires_at,
        })
    }

    /// `POST /v1/eligibility/card`.
    ///
    /// # Errors
    /// [`Error::ServerUnreachable`], [`Error::ServerRefused`], or
    /// [`Error::Unexpected`] for a malformed answer.
    pub fn check_card(&self, check: &CardCheck) -> Result<Answer> {
        let url = format!("{}/v1/eligibility/card", self.base);
        let resp = self.send(&url, self.request(&url).send_json(check))?;
        let value: serde_json::Value = resp
            .into_json()
            .context("the server's eligibility answer is not JSON")?;
        Answer::new(value).map_err(Error::from)
    }

    fn request(&self, url: &str) -> ureq::Request {
        let request = self.agent.post(url).set("Accept", "application/json");
        match &self.authorization {
            Some(authorization) => request.set("Authorization", authorization),
            None => request,
        }
    }

    fn send(
        &self,
        url: &str,
        result: std::result::Result<ureq::Response, ureq::Error>,
    ) -> Result<ureq::Response> {
        match result {
            Ok(resp) => Ok(resp),
            Err(ureq::Error::Status(status, resp)) => Err(refused(status, resp)),
            Err(ureq::Error::Transport(t)) => Err(Error::ServerUnreachable {
                url: url.to_owned(),
                reason: t.to_string(),
            }),
        }
    }
}

fn refused(status: u16, resp: ureq::Response) -> Error {
    let text = resp.into_string().unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(ErrorBody { error }) => Error::ServerRefused {
            status,
            code: error.code,
            message: error.message,
            field: error.field,
            remedy: error.remedy,
        },
        Err(_) => Error::ServerRefused {
            status,
            code: "unknown".to_owned(),
            message: "the server gave no error details".to_owned(),
            field: None,
            remedy: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_trimmed_and_redacted() {
        let t = Token::new("  secret-token\n").expect("valid");
        assert_eq!(t.0, "secret-token");
        assert_eq!(format!("{t:?}"), "Token(****)");
        assert!(Token::new(" \n").is_err());
        assert!(Token::new("two words").is_err());
    }

    #[test]
    fn card_check_json_shape() {
        let challenge = Challenge {
            challenge_id: "c1".into(),
            nonce: vec![1; 32],
            expires_at: "2030-01-01T00:00:00Z".into(),
        };
        let check = CardCheck::new(
            &[0x30, 0x00],
            &challenge,
            &[0xFF; 2],
            None,
            Consents {
                medication: true,
                ..Consents::default()
            },
        );
        let json = serde_json::to_value(&check).expect("serialisable");
        assert_eq!(
            json,
            serde_json::json!({
                "certificate": "MAA=",
                "challenge_id": "c1",
                "signature": "//8=",
                "consents": {"medication": true, "checkups": false, "diagnosis": false, "surgery": false,
                             "limit_certificate": false, "specific_diseases": false}
            })
        );
    }
}
