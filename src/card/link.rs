//! Linking a card's user-authentication certificate to its person, and unlinking it.
//!
//! A link is made only at a facility's reader, from the card itself: the JPKI user-authentication
//! key and the 券面事項入力補助AP's internal-authentication key both sign the same link challenge
//! (bound to onshi, [`super::binding`]), and the number comes from the application's
//! issuer-signed record ([`super::surface`]). Nobody types a number: a facility holding any
//! genuine card and someone else's number cannot link them. The number becomes the person's link
//! value at once and is dropped.
//!
//! A card is unlinked by its holder (card and PIN, over a holder challenge) or by an
//! administrator. Every link and unlink is a disclosure of its own (`card.link`, `card.unlink`)
//! in the audit log, so the person sees it in their access log. A facility is told the same
//! "no coverage to link to" whether the number is unknown or the person holds no coverage today,
//! so linking is no way to find out whether a number is enrolled.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use der::{Decode, Encode};
use uuid::Uuid;

use super::binding::{self, Origin, Purpose};
use super::surface::{self, SurfaceData};
use super::trust::Snapshot;
use super::verify::Rejection;
use super::{identify, prove, Audience, Bound, CardError, CardProof, Holder};
use crate::audit::{AuditLog, Disclosure, DisclosureKind};
use crate::domain::LinkKey;
use crate::domain::{Actor, PartyId, PersonId};
use crate::eligibility::{today_in_japan, Validity};
use crate::store::card as store;

/// Everything the reader read and the card signed for a link.
pub struct LinkProof<'a> {
    pub card: CardProof<'a>,
    pub surface: SurfaceData<'a>,
}

/// The trust a link needs: the JPKI store and the 券面事項 anchors.
#[derive(Clone, Copy)]
pub struct LinkTrust<'a> {
    pub jpki: Option<&'a Snapshot>,
    pub surface: Option<&'a Snapshot>,
    pub origin: &'a Origin,
}

/// A link or unlink that was made, and the check id it is recorded under.
pub struct Done {
    pub not_after: DateTime<Utc>,
    pub check_id: Uuid,
}

/// Links the card to the person its signed number names, at `party_id`'s reader.
///
/// # Errors
/// A [`CardError`] for each way the card or its data is refused, [`CardError::NoCoverage`],
/// [`CardError::LinkedElsewhere`]; database and audit failures.
pub async fn link(
    pool: &Pool,
    audit: &AuditLog,
    trust: LinkTrust<'_>,
    link_key: &LinkKey,
    party_id: PartyId,
    proof: &LinkProof<'_>,
) -> Result<Done, CardError> {
    let now = Utc::now();
    let mut client = pool.get().await.map_err(anyhow::Error::new)?;
    let bound = Bound {
        purpose: Purpose::Link,
        origin: trust.origin,
        consents: None,
    };
    let (card, nonce) = prove(
        &client,
        trust.jpki,
        Audience::Party(party_id),
        bound,
        &proof.card,
        now,
    )
    .await?;
    let anchors = trust.surface.ok_or(CardError::NotConfigured)?;
    let digest = binding::digest(Purpose::Link, trust.origin, &nonce, None);
    let number =
        surface::verify(anchors, &proof.surface, &digest, now).map_err(CardError::Surface)?;
    // A key source that fails (the token unreachable) is the service's fault, not the card's.
    let person_link = number.link(link_key);
    drop(number);
    let person_link = person_link.map_err(CardError::Unexpected)?;
    let person_id = match store::person_by_link(&client, person_link.as_bytes()).await? {
        Some(id)
            if !crate::store::coverage::candidates_of_person(&client, id, today_in_japan())
                .await?
                .is_empty() =>
        {
            id
        }
        _ => return Err(CardError::NoCoverage),
    };
    let transaction = client.transaction().await.map_err(anyhow::Error::new)?;
    let linked = store::link(
        &transaction,
        &card.issuer,
        &card.serial,
        person_id,
        card.not_after,
        Some(party_id),
    )
    .await?;
    if linked != person_id {
        return Err(CardError::LinkedElsewhere);
    }
    let check_id = record(
        audit,
        now,
        Actor::Party(party_id),
        DisclosureKind::CardLink,
        person_id,
    )
    .await?;
    transaction.commit().await.map_err(anyhow::Error::new)?;
    Ok(Done {
        not_after: card.not_after,
        check_id,
    })
}

/// The holder unlinks their own card: card and PIN over a holder challenge.
///
/// # Errors
/// A [`CardError`] for each way the card is refused; [`CardError::NotLinked`]; database and audit
/// failures.
pub async fn unlink_by_holder(
    pool: &Pool,
    audit: &AuditLog,
    trust: Option<&Snapshot>,
    origin: &Origin,
    proof: &CardProof<'_>,
) -> Result<Done, CardError> {
    let now = Utc::now();
    let mut client = pool.get().await.map_err(anyhow::Error::new)?;
    let bound = Bound {
        purpose: Purpose::Unlink,
        origin,
        consents: None,
    };
    let Holder { card, .. } = identify(&client, trust, Audience::Holder, bound, proof, now).await?;
    unlink(
        &mut client,
        audit,
        now,
        Actor::CardHolder,
        &card.issuer,
        &card.serial,
    )
    .await
}

/// An administrator unlinks a card by its certificate (for a card reported lost or linked in
/// error). The certificate only names the link: it need not verify.
///
/// # Errors
/// [`Rejection::Malformed`] for a certificate that does not parse; [`CardError::NotLinked`];
/// database and audit failures.
pub async fn unlink_by_admin(
    pool: &Pool,
    audit: &AuditLog,
    admin_id: PartyId,
    certificate: &[u8],
) -> Result<Done, CardError> {
    let now = Utc::now();
    let malformed = || CardError::Rejected(Rejection::Malformed);
    let cert = x509_cert::Certificate::from_der(certificate).map_err(|_| malformed())?;
    let issuer = cert
        .tbs_certificate
        .issuer
        .to_der()
        .map_err(|_| malformed())?;
    let serial = cert.tbs_certificate.serial_number.as_bytes().to_vec();
    let mut client = pool.get().await.map_err(anyhow::Error::new)?;
    unlink(
        &mut client,
        audit,
        now,
        Actor::Party(admin_id),
        &issuer,
        &serial,
    )
    .await
}

async fn unlink(
    client: &mut deadpool_postgres::Client,
    audit: &AuditLog,
    now: DateTime<Utc>,
    actor: Actor,
    issuer: &[u8],
    serial: &[u8],
) -> Result<Done, CardError> {
    let transaction = client.transaction().await.map_err(anyhow::Error::new)?;
    let (person_id, not_after) = store::unlink(&transaction, issuer, serial)
        .await?
        .ok_or(CardError::NotLinked)?;
    // Recorded before the unlink commits: an unlink is never without its record.
    let check_id = record(audit, now, actor, DisclosureKind::CardUnlink, person_id).await?;
    transaction.commit().await.map_err(anyhow::Error::new)?;
    Ok(Done {
        not_after,
        check_id,
    })
}

/// Records a link or unlink durably, under a new time-ordered check id.
async fn record(
    audit: &AuditLog,
    at: DateTime<Utc>,
    actor: Actor,
    kind: DisclosureKind,
    person_id: PersonId,
) -> anyhow::Result<Uuid> {
    let check_id = Uuid::now_v7();
    audit
        .record(vec![Disclosure {
            at,
            actor,
            person_id: Some(person_id),
            coverage_id: None,
            kind,
            check_id,
            validity: Validity::Valid.code(),
        }])
        .await?;
    Ok(check_id)
}
