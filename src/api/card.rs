//! `POST /v1/challenges`, `POST /v1/eligibility/card`, `POST /v1/card-links` (a facility links
//! a card from its signed data), `POST /v1/card-links/unlink` (an administrator) and
//! `POST /v1/self/card-unlink` (the holder, no token); the card helpers here serve the self
//! endpoints of [`super::access_log`] too.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::auth::Caller;
use super::body::{read_limited, typed, unused};
use super::codes::Code;
use super::doc::{schema, Body, Content, Doc, Reply};
use super::error::{ApiError, ClientError};
use super::limits::AddressLimited;
use super::AppState;
use crate::card::link::{LinkProof, LinkTrust};
use crate::card::surface::SurfaceData;
use crate::card::{self, Audience, CardError, CardProof, Challenge};
use crate::domain::parse_date;
use crate::domain::Fault;
use crate::eligibility::today_in_japan;
use crate::store::card::ConsentChoices;

const BODY_MAX: usize = 64 * 1024;

/// A single-use nonce for one card signature, bound to the asking facility.
pub async fn challenge(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let party = caller.party();
    unused(payload).await?;
    let challenge = card::new_challenge(
        &state.pool,
        Audience::Party(party.id),
        state.challenge_lifetime,
    )
    .await?;
    Ok(challenge_created(&challenge))
}

/// The 201 answer handing a challenge to the reader.
pub(super) fn challenge_created(challenge: &Challenge) -> HttpResponse {
    HttpResponse::Created().json(ChallengeView {
        challenge_id: challenge.id,
        nonce: B64.encode(challenge.nonce),
        expires_at: challenge
            .expires_at
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// A challenge for the card to sign.
#[derive(Serialize, ToSchema)]
pub(super) struct ChallengeView {
    challenge_id: Uuid,
    /// Standard base64 of the nonce.
    nonce: String,
    /// RFC 3339, UTC.
    expires_at: String,
}

/// A card linked to its person.
#[derive(Serialize, ToSchema)]
struct Linked {
    linked: bool,
    /// When the card's user-authentication certificate expires (RFC 3339, UTC).
    certificate_not_after: String,
    /// The access-audit record of the link.
    check_id: Uuid,
}

/// A card unlinked.
#[derive(Serialize, ToSchema)]
struct Unlinked {
    unlinked: bool,
    /// The access-audit record of the unlink.
    check_id: Uuid,
}

/// The consents given at the reader (the schema of the store's choices; absent ones are no).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(dead_code, reason = "describes ConsentChoices")]
struct Consents {
    /// 薬剤情報.
    #[serde(default)]
    medication: bool,
    /// 特定健診情報.
    #[serde(default)]
    checkups: bool,
    /// 診療情報.
    #[serde(default)]
    diagnosis: bool,
    /// 手術情報.
    #[serde(default)]
    surgery: bool,
    /// 限度額適用認定証 in this facility's eligibility answers.
    #[serde(default)]
    limit_certificate: bool,
    /// 特定疾病療養受療証 in this facility's eligibility answers.
    #[serde(default)]
    specific_diseases: bool,
}

/// A card check: the card's proof over a challenge of `POST /v1/challenges`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CardCheckBody {
    /// Standard base64 of the DER user-authentication certificate.
    certificate: String,
    #[schema(format = Uuid)]
    challenge_id: String,
    /// Standard base64 of the card's signature over the bound challenge.
    signature: String,
    /// YYYY-MM-DD; today in Japan when absent.
    #[serde(default)]
    #[schema(pattern = "^([0-9]{4}-[0-9]{2}-[0-9]{2})?$")]
    date_of_care: Option<String>,
    #[serde(default, deserialize_with = "consents_object")]
    #[schema(value_type = Option<Consents>)]
    consents: ConsentChoices,
}

/// The consents as a JSON object only: serde would also read a struct from an array.
fn consents_object<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ConsentChoices, D::Error> {
    let map = serde_json::Map::deserialize(d)?;
    ConsentChoices::deserialize(serde_json::Value::Object(map)).map_err(serde::de::Error::custom)
}

/// `POST /v1/card-links`: the card's proof and the 券面事項入力補助AP's records. There is no
/// member for a typed number: a number nobody can prove is never a reason to link.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LinkBody {
    certificate: String,
    challenge_id: String,
    signature: String,
    card_surface: SurfaceBody,
}

/// The records as read from the card, each base64 of its TLV bytes. The My Number record is
/// among them: wiped when the request is done.
#[derive(Deserialize, ToSchema, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
#[serde(deny_unknown_fields)]
struct SurfaceBody {
    my_number: String,
    basic_facts: String,
    signature: String,
    issuer_certificate: String,
    auth_key: String,
    internal_authentication: String,
}

/// A proof of the card alone: the holder's own requests.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ProofBody {
    certificate: String,
    challenge_id: String,
    signature: String,
}

/// A card proof's members, decoded.
pub(super) struct DecodedProof {
    certificate: Vec<u8>,
    challenge_id: Uuid,
    signature: Vec<u8>,
}

impl ProofBody {
    /// Decodes the members, the first bad one refused (400 `<member>.format`).
    pub(super) fn decode(&self) -> Result<DecodedProof, ClientError> {
        let certificate = base64_field(&self.certificate, "certificate")?;
        let signature = base64_field(&self.signature, "signature")?;
        Ok(DecodedProof {
            certificate,
            challenge_id: uuid_field(&self.challenge_id)?,
            signature,
        })
    }
}

impl DecodedProof {
    pub(super) fn proof(&self) -> CardProof<'_> {
        CardProof {
            certificate: &self.certificate,
            challenge_id: self.challenge_id,
            signature: &self.signature,
        }
    }
}

/// An administrator's unlink names the certificate.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AdminUnlinkBody {
    certificate: String,
}

/// Eligibility of the card's holder.
pub async fn check(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let party = caller.party();
    let body: CardCheckBody = typed(&read_limited(payload, BODY_MAX).await?)?;
    let certificate = base64_field(&body.certificate, "certificate")?;
    let signature = base64_field(&body.signature, "signature")?;
    let challenge_id = uuid_field(&body.challenge_id)?;
    let date_of_care = match body.date_of_care.as_deref() {
        None | Some("") => today_in_japan(),
        Some(d) => parse_date(d).map_err(|e| ClientError::invalid("date_of_care", e))?,
    };
    let trust = state.trust.current();
    let proof = CardProof {
        certificate: &certificate,
        challenge_id,
        signature: &signature,
    };
    let answer = card::check(
        &state.pool,
        &state.audit,
        &state.proofs,
        trust.as_deref(),
        &state.origin,
        party,
        &proof,
        date_of_care,
        body.consents,
        state.clock.now(),
    )
    .await
    .map_err(card_error)?;
    Ok(HttpResponse::Ok().json(answer))
}

/// Links a card to its person at a facility's reader, from the card's signed data. The body is
/// read before the role is checked, so a typed number is refused (400) whoever sends it.
pub async fn link(
    state: web::Data<AppState>,
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: LinkBody = typed(&read_limited(payload, BODY_MAX).await?)?;
    let party = super::routes::admit_after_body(&req, &caller)?;
    let certificate = base64_field(&body.certificate, "certificate")?;
    let signature = base64_field(&body.signature, "signature")?;
    let challenge_id = uuid_field(&body.challenge_id)?;
    let s = &body.card_surface;
    let records = zeroize::Zeroizing::new([
        base64_field(&s.my_number, "card_surface.my_number")?,
        base64_field(&s.basic_facts, "card_surface.basic_facts")?,
        base64_field(&s.signature, "card_surface.signature")?,
        base64_field(&s.issuer_certificate, "card_surface.issuer_certificate")?,
        base64_field(&s.auth_key, "card_surface.auth_key")?,
        base64_field(
            &s.internal_authentication,
            "card_surface.internal_authentication",
        )?,
    ]);
    let [my_number, basic_facts, surface_signature, issuer_certificate, auth_key, internal] =
        &*records;
    let proof = LinkProof {
        card: CardProof {
            certificate: &certificate,
            challenge_id,
            signature: &signature,
        },
        surface: SurfaceData {
            my_number,
            basic_facts,
            signature: surface_signature,
            issuer_certificate,
            auth_key,
            internal_authentication: internal,
        },
    };
    let (jpki, surface) = (state.trust.current(), state.surface_trust.current());
    let trust = LinkTrust {
        jpki: jpki.as_deref(),
        surface: surface.as_deref(),
        origin: &state.origin,
    };
    let done = card::link::link(
        &state.pool,
        &state.audit,
        trust,
        &state.link_key,
        party.id,
        &proof,
    )
    .await
    .map_err(card_error)?;
    Ok(HttpResponse::Created().json(Linked {
        linked: true,
        certificate_not_after: done
            .not_after
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        check_id: done.check_id,
    }))
}

/// The holder unlinks their card: the card's signature over a holder challenge, no token.
pub async fn unlink_by_holder(
    state: web::Data<AppState>,
    _limited: AddressLimited,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: ProofBody = typed(&read_limited(payload, BODY_MAX).await?)?;
    let decoded = body.decode()?;
    let proof = decoded.proof();
    let trust = state.trust.current();
    let done = card::link::unlink_by_holder(
        &state.pool,
        &state.audit,
        trust.as_deref(),
        &state.origin,
        &proof,
    )
    .await
    .map_err(card_error)?;
    Ok(unlinked(&done))
}

/// An administrator unlinks a card by its certificate; recorded like every unlink.
pub async fn unlink_by_admin(
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let admin = caller.party();
    let body: AdminUnlinkBody = typed(&read_limited(payload, BODY_MAX).await?)?;
    let certificate = base64_field(&body.certificate, "certificate")?;
    let done = card::link::unlink_by_admin(&state.pool, &state.audit, admin.id, &certificate)
        .await
        .map_err(card_error)?;
    Ok(unlinked(&done))
}

/// The card's holder withdraws, with card and PIN, every consent they gave at readers that is
/// still in force; the credential is the card's signature over a self challenge, as for the
/// holder's unlink.
pub async fn withdraw_consents(
    state: web::Data<AppState>,
    _limited: AddressLimited,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: ProofBody = typed(&read_limited(payload, BODY_MAX).await?)?;
    let decoded = body.decode()?;
    let proof = decoded.proof();
    let trust = state.trust.current();
    let withdrawn = card::withdraw_consents(
        &state.pool,
        trust.as_deref(),
        &state.origin,
        &proof,
        state.clock.now(),
    )
    .await
    .map_err(card_error)?;
    Ok(HttpResponse::Ok().json(Withdrawn { withdrawn }))
}

/// Consents withdrawn.
#[derive(Serialize, ToSchema)]
struct Withdrawn {
    /// How many givings of consent were in force and are now withdrawn.
    withdrawn: u64,
}

fn unlinked(done: &card::link::Done) -> HttpResponse {
    HttpResponse::Ok().json(Unlinked {
        unlinked: true,
        check_id: done.check_id,
    })
}

pub(super) fn base64_field(value: &str, field: &'static str) -> Result<Vec<u8>, ClientError> {
    B64.decode(value)
        .map_err(|_| ClientError::fault(field, Fault::Format, "Must be standard base64."))
}

pub(super) fn uuid_field(value: &str) -> Result<Uuid, ClientError> {
    value.parse().map_err(|_| {
        ClientError::fault(
            "challenge_id",
            Fault::Format,
            "Must be the challenge_id returned with the challenge.",
        )
    })
}

pub(super) fn card_error(error: CardError) -> ApiError {
    use card::surface::SurfaceRejection as Surface;
    use card::verify::Rejection;
    let (code, message, field): (Code, &'static str, Option<&'static str>) = match error {
        CardError::NotConfigured => (
            Code::CardNotConfigured,
            "This server has no JPKI trust anchors (or, for linking, no card-surface trust anchors) configured; check by insurance number.",
            None,
        ),
        CardError::ChallengeUnknown => (Code::ChallengeUnknown, "No such challenge; ask for a new one.", None),
        CardError::ChallengeUsed => (Code::ChallengeUsed, "This challenge was used already; ask for a new one.", None),
        CardError::ChallengeExpired => (Code::ChallengeExpired, "This challenge expired; ask for a new one and sign it promptly.", None),
        CardError::ChallengeOtherParty => (Code::ChallengeOtherParty, "This challenge was issued to another facility.", None),
        CardError::ChallengeWrongAudience => (Code::ChallengeWrongAudience, "This challenge was issued for another use of the card: take one from POST /v1/challenges for a check or link at a facility, or from POST /v1/self/challenges for a person's own access log.", None),
        CardError::Rejected(rejection) => {
            let code = match rejection {
                Rejection::Malformed => Code::CertificateMalformed,
                Rejection::NotForAuthentication => Code::CertificateNotForAuthentication,
                Rejection::UnknownIssuer => Code::CertificateUnknownIssuer,
                Rejection::ChainSignature => Code::CertificateBadChainSignature,
                Rejection::IssuerNotValid => Code::CertificateIssuerNotValid,
                Rejection::NotYetValid => Code::CertificateNotYetValid,
                Rejection::Expired => Code::CertificateExpired,
                Rejection::Revoked => Code::CertificateRevoked,
                Rejection::RevocationUnavailable => Code::CardRevocationUnavailable,
                Rejection::BadSignature => Code::SignatureInvalid,
            };
            (code, rejection.message(), None)
        }
        CardError::Surface(rejection) => {
            let code = match rejection {
                Surface::Malformed(_) => Code::CardSurfaceMalformed,
                Surface::UnknownIssuer => Code::CardSurfaceUnknownIssuer,
                Surface::IssuerNotValid => Code::CardSurfaceIssuerNotValid,
                Surface::HashMismatch => Code::CardSurfaceHashMismatch,
                Surface::IssuerSignature => Code::CardSurfaceBadIssuerSignature,
                Surface::InternalAuthentication => Code::CardSurfaceInternalAuthenticationFailed,
            };
            (code, rejection.message(), Some(rejection.field()))
        }
        CardError::NotLinked => (
            Code::CardNotLinked,
            "This card is not linked to health insurance yet. The person can link it once at this reader, on the Mynaportal or at an ATM; meanwhile check by insurance number.",
            None,
        ),
        CardError::NoCoverage => (
            Code::CardNoCoverageToLink,
            "There is no coverage to link this card to; the person should ask their insurer, and check by insurance number meanwhile.",
            None,
        ),
        CardError::LinkedElsewhere => (
            Code::CardLinkedToAnotherPerson,
            "This card is already linked to another person; contact the operator.",
            None,
        ),
        CardError::Unexpected(error) => return error.into(),
    };
    let mut client = ClientError::new(code, message);
    if let Some(field) = field {
        client = client.with_field(field);
    }
    client.into()
}

/// The codes of a card proof over a challenge: the trust store, the challenge, the certificate
/// and its revocation, the signature.
pub(super) const PROOF_CODES: &[Code] = &[
    Code::CardNotConfigured,
    Code::CardRevocationUnavailable,
    Code::ChallengeUnknown,
    Code::ChallengeUsed,
    Code::ChallengeExpired,
    Code::ChallengeOtherParty,
    Code::ChallengeWrongAudience,
    Code::CertificateMalformed,
    Code::CertificateNotForAuthentication,
    Code::CertificateUnknownIssuer,
    Code::CertificateBadChainSignature,
    Code::CertificateIssuerNotValid,
    Code::CertificateNotYetValid,
    Code::CertificateExpired,
    Code::CertificateRevoked,
    Code::SignatureInvalid,
];

/// The members of a card proof, which may fail as `<member>.format`.
pub(super) const PROOF_FIELDS: &[&str] = &["certificate", "challenge_id", "signature"];

pub const CHALLENGE_DOC: Doc = Doc {
    id: "newChallenge",
    tag: "card",
    summary: "A single-use nonce for one card signature.",
    description: "The challenge is bound to the calling facility and expires after \
        `challenge_seconds` (default 120). No request body.",
    body: Body::None,
    replies: &[Reply {
        status: 201,
        description: "The challenge.",
        content: Content::Json(schema::<ChallengeView>),
    }],
    codes: &[&[]],
    fields: &[],
    params: &[],
};

pub const CHECK_DOC: Doc = Doc {
    id: "checkEligibilityByCard",
    tag: "card",
    summary: "Eligibility of the My Number card's holder.",
    description: "Takes the challenge (once), verifies the certificate's chain to the \
        configured JPKI CAs, its validity (served for three months after expiry, with an \
        advisory), its revocation and the signature, then answers as `POST /v1/eligibility` for \
        the person the card is linked to. The consents are stored with the check for 24 hours. \
        Body at most 64 KiB.",
    body: Body::Json(schema::<CardCheckBody>),
    replies: &[Reply {
        status: 200,
        description: "The answer.",
        content: Content::Json(schema::<crate::eligibility::Answer>),
    }],
    codes: &[PROOF_CODES, &[Code::CardNotLinked]],
    fields: &["certificate", "challenge_id", "signature", "date_of_care"],
    params: &[],
};

pub const LINK_DOC: Doc = Doc {
    id: "linkCard",
    tag: "card",
    summary: "Link a My Number card to its person, from the card's own signed data.",
    description: "There is no typed number: the body has no `individual_number` member, and one \
        sent is refused (`body.invalid`, field `individual_number`) whoever sends it, as the body \
        is read before the role is checked.\n\n`onshi-reader link` reads, in one card session, \
        the JPKI user-authentication certificate and the records of the card's 券面事項入力補助AP \
        (card-surface input assistance: the My Number record, the basic-facts record, the \
        issuer's signature over their SHA-256 hashes, the issuer's certificate, the \
        internal-authentication key signed by the issuer), takes a challenge from \
        `POST /v1/challenges`, and has both the application's internal-authentication key and \
        the JPKI key sign it, bound to onshi (audience `card.link`; see `src/card/binding.md`). \
        The server verifies the challenge, the JPKI certificate (no grace after expiry for \
        linking) and signature, the issuer's certificate against the configured 券面事項 trust \
        anchors (`card_surface_trust_dir`), both hashes, both issuer signatures and the internal \
        authentication; only then is the number read from the record, turned into the person's \
        link value and dropped (never stored, logged or returned). The link is recorded as a \
        `card.link` disclosure in the person's access log. Body at most 64 KiB.",
    body: Body::Json(schema::<LinkBody>),
    replies: &[Reply {
        status: 201,
        description: "Linked.",
        content: Content::Json(schema::<Linked>),
    }],
    codes: &[
        PROOF_CODES,
        &[
            Code::CardSurfaceMalformed,
            Code::CardSurfaceUnknownIssuer,
            Code::CardSurfaceIssuerNotValid,
            Code::CardSurfaceHashMismatch,
            Code::CardSurfaceBadIssuerSignature,
            Code::CardSurfaceInternalAuthenticationFailed,
            Code::CardNoCoverageToLink,
            Code::CardLinkedToAnotherPerson,
        ],
    ],
    fields: &[
        "certificate",
        "challenge_id",
        "signature",
        "card_surface.my_number",
        "card_surface.basic_facts",
        "card_surface.signature",
        "card_surface.issuer_certificate",
        "card_surface.auth_key",
        "card_surface.internal_authentication",
    ],
    params: &[],
};

pub const UNLINK_BY_ADMIN_DOC: Doc = Doc {
    id: "unlinkCardByAdmin",
    tag: "card",
    summary: "An administrator unlinks a card by its certificate.",
    description: "For a card reported lost or linked in error; the certificate only names the \
        link (it need not verify). Recorded as a `card.unlink` disclosure in the person's access \
        log, naming the administrator. Body at most 64 KiB.",
    body: Body::Json(schema::<AdminUnlinkBody>),
    replies: &[Reply {
        status: 200,
        description: "Unlinked.",
        content: Content::Json(schema::<Unlinked>),
    }],
    codes: &[&[Code::CertificateMalformed, Code::CardNotLinked]],
    fields: &["certificate"],
    params: &[],
};

pub const UNLINK_BY_HOLDER_DOC: Doc = Doc {
    id: "unlinkOwnCard",
    tag: "card",
    summary: "The card's holder unlinks their card, with card and PIN.",
    description: "Any token sent is ignored: the credential is the card's signature over a \
        challenge of `POST /v1/self/challenges`, bound to onshi with audience `card.unlink` \
        (`onshi-reader unlink`). Recorded as a `card.unlink` disclosure in the person's access \
        log. Body at most 64 KiB.",
    body: Body::Json(schema::<ProofBody>),
    replies: &[Reply {
        status: 200,
        description: "Unlinked.",
        content: Content::Json(schema::<Unlinked>),
    }],
    codes: &[PROOF_CODES, &[Code::CardNotLinked]],
    fields: PROOF_FIELDS,
    params: &[],
};

pub const WITHDRAW_CONSENTS_DOC: Doc = Doc {
    id: "withdrawOwnConsents",
    tag: "card",
    summary: "The card's holder withdraws the consents they gave at readers.",
    description: "Every consent still in force (to every facility) ends now: answers to those \
        facilities list the limit and specific-disease certificates as `withheld` again. The \
        credential is the card's signature over a challenge of `POST /v1/self/challenges`, bound \
        to onshi with audience `consent.withdraw` (`onshi-reader withdraw-consents`). Body at \
        most 64 KiB.",
    body: Body::Json(schema::<ProofBody>),
    replies: &[Reply {
        status: 200,
        description: "Withdrawn.",
        content: Content::Json(schema::<Withdrawn>),
    }],
    codes: &[PROOF_CODES, &[Code::CardNotLinked]],
    fields: PROOF_FIELDS,
    params: &[],
};
