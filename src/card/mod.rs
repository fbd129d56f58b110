//! The My Number card path, server side.
//!
//! A facility asks for a challenge (a single-use nonce bound to it, short-lived); the reader has
//! the card sign the challenge bound to onshi ([`binding`]: the use, the server origin, the
//! nonce and the consents) and sends certificate, challenge id and signature. The server takes
//! the challenge (atomically, so a replay fails), verifies the certificate ([`verify`], against
//! the trust store of [`trust`] with its revocation lists of [`crl`], failing closed) and the
//! signature, maps the certificate to the person it was linked to ([`identify`]), and answers
//! exactly as eligibility by number does for that person on the date of care. Consents given at
//! the reader are stored with their time and are in force for 24 hours.
//!
//! The same proof opens a person's own access log ([`crate::access_log`]), with a challenge
//! whose [`Audience`] is the card's holder rather than a party: each use accepts only challenges
//! issued for it. Linking a card to its person reads the person's number from the card's own
//! signed data ([`surface`], [`link`]); nobody types a number.
//!
//! Module map: [`binding`] what the card signs; [`profile`] what a certificate may be;
//! [`trust`], [`crl`] the trust store; [`verify`] the user-authentication certificate;
//! [`surface`] the 券面事項入力補助AP's signed data; [`link`] linking and unlinking.

pub mod binding;
pub mod crl;
pub mod link;
pub mod profile;
pub mod signature;
pub mod surface;
pub mod trust;
pub mod verify;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use deadpool_postgres::Pool;
use rand::RngCore;
use uuid::Uuid;

use crate::audit::{AuditLog, DisclosureKind};
use crate::domain::PersonId;
use crate::eligibility::{decide, decided, seal, Advisory, Answer, Shown};
use crate::store::card::{self as store, ConsentChoices, Taken};
use binding::{Origin, Purpose};
use trust::Snapshot;
use verify::{Grace, Rejection, VerifiedCard};

/// How long consents given at the reader stay in force.
pub const CONSENT_HOURS: i64 = 24;

pub use crate::store::card::Audience;

/// A challenge as handed to the reader.
pub struct Challenge {
    pub id: Uuid,
    pub nonce: [u8; 32],
    pub expires_at: DateTime<Utc>,
}

/// Why a card check or link was refused.
#[derive(Debug, thiserror::Error)]
pub enum CardError {
    #[error("the card path is not configured")]
    NotConfigured,
    #[error("unknown challenge")]
    ChallengeUnknown,
    #[error("challenge already used")]
    ChallengeUsed,
    #[error("challenge expired")]
    ChallengeExpired,
    #[error("challenge of another party")]
    ChallengeOtherParty,
    #[error("challenge issued for another use of the card")]
    ChallengeWrongAudience,
    #[error("card rejected: {0:?}")]
    Rejected(Rejection),
    #[error("the card's input-assistance data: {0:?}")]
    Surface(surface::SurfaceRejection),
    #[error("certificate not linked")]
    NotLinked,
    /// The verified number has no coverage to link to: one answer, whether or not the number is
    /// known at all.
    #[error("no coverage to link to")]
    NoCoverage,
    #[error("certificate linked to another person")]
    LinkedElsewhere,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Issues a challenge for `audience`, valid for `lifetime`.
///
/// # Errors
/// Database failures.
pub async fn new_challenge(
    pool: &Pool,
    audience: Audience,
    lifetime: Duration,
) -> anyhow::Result<Challenge> {
    let mut nonce = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let challenge = Challenge {
        id: Uuid::new_v4(),
        nonce,
        expires_at: Utc::now() + lifetime,
    };
    let client = pool.get().await?;
    store::insert_challenge(
        &client,
        challenge.id,
        audience,
        &challenge.nonce,
        challenge.expires_at,
    )
    .await?;
    Ok(challenge)
}

/// What the reader sent.
pub struct CardProof<'a> {
    pub certificate: &'a [u8],
    pub challenge_id: Uuid,
    pub signature: &'a [u8],
}

/// What the card's signature must cover besides the nonce.
#[derive(Clone, Copy)]
pub struct Bound<'a> {
    pub purpose: Purpose,
    pub origin: &'a Origin,
    pub consents: Option<ConsentChoices>,
}

impl Bound<'_> {
    fn grace(&self) -> Grace {
        match self.purpose {
            Purpose::Check => Grace::Eligibility,
            Purpose::SelfView | Purpose::Link | Purpose::Unlink | Purpose::WithdrawConsents => {
                Grace::None
            }
        }
    }
}

/// Takes the challenge, checks it was issued to `audience`, and verifies certificate and
/// signature over the bound challenge. Returns the card and the challenge's nonce.
pub(crate) async fn prove(
    client: &deadpool_postgres::Client,
    trust: Option<&Snapshot>,
    audience: Audience,
    bound: Bound<'_>,
    proof: &CardProof<'_>,
    now: DateTime<Utc>,
) -> Result<(VerifiedCard, Vec<u8>), CardError> {
    let trust = trust.ok_or(CardError::NotConfigured)?;
    let (issued_to, nonce, expires_at) =
        match store::take_challenge(client, proof.challenge_id).await? {
            Taken::Fresh {
                audience,
                nonce,
                expires_at,
            } => (audience, nonce, expires_at),
            Taken::AlreadyUsed => return Err(CardError::ChallengeUsed),
            Taken::Unknown => return Err(CardError::ChallengeUnknown),
        };
    match (issued_to, audience) {
        (Audience::Party(owner), Audience::Party(asking)) if owner != asking => {
            return Err(CardError::ChallengeOtherParty)
        }
        (Audience::Party(_), Audience::Holder) | (Audience::Holder, Audience::Party(_)) => {
            return Err(CardError::ChallengeWrongAudience)
        }
        _ => {}
    }
    if expires_at < now {
        return Err(CardError::ChallengeExpired);
    }
    let card = verify::verify_certificate(trust, proof.certificate, now, bound.grace())
        .map_err(CardError::Rejected)?;
    let digest = binding::digest(bound.purpose, bound.origin, &nonce, bound.consents);
    card.signed(&digest, proof.signature)
        .map_err(CardError::Rejected)?;
    Ok((card, nonce))
}

/// A card that proved itself, and the person it is linked to.
pub struct Holder {
    pub card: VerifiedCard,
    pub person_id: PersonId,
}

/// The person holding the card: takes the challenge issued to `audience`, verifies the
/// certificate and the signature over its nonce, and maps the certificate to its linked person.
/// The one step every use of the card goes through before it sees a person.
///
/// # Errors
/// A [`CardError`] for each way the card can be refused ([`CardError::NotLinked`] when it proves
/// itself but was never linked); database failures.
pub async fn identify(
    client: &deadpool_postgres::Client,
    trust: Option<&Snapshot>,
    audience: Audience,
    bound: Bound<'_>,
    proof: &CardProof<'_>,
    now: DateTime<Utc>,
) -> Result<Holder, CardError> {
    let (card, _) = prove(client, trust, audience, bound, proof, now).await?;
    let person_id = store::linked_person(client, &card.issuer, &card.serial)
        .await?
        .ok_or(CardError::NotLinked)?;
    Ok(Holder { card, person_id })
}

/// Eligibility of the card's holder on the date of care; the consents are stored with it.
///
/// # Errors
/// A [`CardError`] for each way the card can be refused; database and audit failures.
#[allow(clippy::too_many_arguments)]
pub async fn check(
    pool: &Pool,
    audit: &AuditLog,
    proofs: &std::sync::Arc<crate::proof::ProofKey>,
    trust: Option<&Snapshot>,
    origin: &Origin,
    party: &crate::parties::Party,
    proof: &CardProof<'_>,
    date_of_care: NaiveDate,
    consents: ConsentChoices,
    now: DateTime<Utc>,
) -> Result<Answer, CardError> {
    let party_id = party.id;
    let client = pool.get().await.map_err(anyhow::Error::new)?;
    let bound = Bound {
        purpose: Purpose::Check,
        origin,
        consents: Some(consents),
    };
    let Holder { card, person_id } =
        identify(&client, trust, Audience::Party(party_id), bound, proof, now).await?;
    let candidates =
        crate::store::coverage::candidates_of_person(&client, person_id, date_of_care).await?;
    let (validity, chosen) = decide(date_of_care, &candidates);
    // What the answer shows: the consents given now, and those still in force from earlier
    // checks at this facility. The consents given now are stored under the answer's check id.
    let earlier = store::consents_in_force(&client, person_id, party_id, now).await?;
    let shown = Shown::from_consents(&earlier).or(Shown {
        limit_certificate: consents.limit_certificate,
        specific_diseases: consents.specific_diseases,
    });
    let mut decision = decided(
        now,
        party,
        DisclosureKind::EligibilityCard,
        (validity, chosen),
        None,
        date_of_care,
        shown,
    );
    store::insert_consents(
        &client,
        person_id,
        party_id,
        decision.check_id(),
        consents,
        now,
        now + Duration::hours(CONSENT_HOURS),
    )
    .await?;
    decision.answer_mut().consents =
        Some(store::consents_in_force(&client, person_id, party_id, now).await?);
    if let Some(c) = chosen {
        decision.answer_mut().reference_number = crate::store::reference::of_keys(
            &client,
            party_id,
            &[crate::eligibility::reference_key(c)],
        )
        .await?
        .pop()
        .flatten();
        decision.answer_mut().public_expenses =
            crate::store::public_expense::in_force(&client, &[(c.person_id, date_of_care)])
                .await?
                .pop()
                .unwrap_or_default()
                .iter()
                .map(Into::into)
                .collect();
    }
    drop(client);
    let mut answer = seal(audit, proofs, vec![decision])
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no answer for one card check"))?;
    answer.advisories.extend(certificate_advisories(&card, now));
    Ok(answer)
}

fn certificate_advisories(card: &VerifiedCard, now: DateTime<Utc>) -> Vec<Advisory> {
    let day = card.not_after.date_naive();
    if card.in_grace {
        vec![Advisory {
            code: "card.certificate_expired",
            message: format!(
                "The card's certificate expired on {day}; eligibility is served for three months after expiry. The person should renew it at the town hall."
            ),
        }]
    } else if card.not_after < now + Duration::days(90) {
        vec![Advisory {
            code: "card.certificate_expires_soon",
            message: format!("The card's certificate expires on {day}; the person should renew it at the town hall."),
        }]
    } else {
        Vec::new()
    }
}

/// The holder withdraws, with card and PIN, every consent they gave at readers that is still in
/// force (to every facility); how many were withdrawn.
///
/// # Errors
/// A [`CardError`] for each way the card can be refused (a facility's challenge, another use's
/// signature, an unlinked card); database failures.
pub async fn withdraw_consents(
    pool: &Pool,
    trust: Option<&Snapshot>,
    origin: &Origin,
    proof: &CardProof<'_>,
    now: DateTime<Utc>,
) -> Result<u64, CardError> {
    let client = pool.get().await.map_err(anyhow::Error::new)?;
    let bound = Bound {
        purpose: Purpose::WithdrawConsents,
        origin,
        consents: None,
    };
    let Holder { person_id, .. } =
        identify(&client, trust, Audience::Holder, bound, proof, now).await?;
    Ok(store::withdraw_consents(&client, person_id, now).await?)
}
