//! A person's access log: which parties looked at their data, and when.
//!
//! The real system lets persons see on their portal which facility looked at them (DOMAIN.md §3);
//! here the log is the audit table itself, read by person. Exactly two ways in:
//! - the person, proving themselves with their card ([`of_card_holder`]): a challenge issued to
//!   the card's holder ([`Audience::Holder`]), signed by the card, mapped to the linked person by
//!   the same [`card::identify`] a facility's card check uses; no party is involved;
//! - an administrator, by the insured-person number and birth date ([`by_coverage`]).
//!
//! Besides the checks and reads of the person's data, the log shows every link and unlink of
//! the person's card (`card.link` by the facility at whose reader it was linked, `card.unlink` by
//! the holder or an administrator): a card linked to someone else's coverage is visible to the
//! person whose coverage it is.
//!
//! Reading the log discloses it, so every read is itself recorded in the audit log (durably,
//! before the page is returned) and appears in later reads as `access_log.self` or
//! `access_log.admin`. Pages run newest first; a page ends with a cursor (the `check_id` of its
//! last entry) when more may follow.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;
use uuid::Uuid;

use crate::audit::{AuditLog, Disclosure, DisclosureKind};
use crate::card::binding::{Origin, Purpose};
use crate::card::{self, trust::Snapshot, Audience, Bound, CardError, CardProof};
use crate::domain::Invalid;
use crate::domain::{Actor, PartyId, PersonId};
use crate::eligibility::{Query, Validity};
use crate::store::access_log as store;

/// The most entries one page holds.
pub const PAGE_MAX: u16 = 100;
/// Entries per page when the caller does not say.
pub const PAGE_DEFAULT: u16 = 50;

pub use crate::store::access_log::{Entry, PartyView};

/// One page of the log and the check id under which this read was recorded.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = AccessLogPage)]
pub struct Page {
    pub entries: Vec<Entry>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Uuid>,
    pub check_id: Uuid,
}

/// Where a page starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Before {
    /// The newest entries.
    Latest,
    /// Entries strictly before this instant.
    Time(DateTime<Utc>),
    /// Entries older than this check of the same person's log (a page's `next`).
    Check(Uuid),
}

impl Before {
    /// Parses `before`: absent or empty for the newest entries, a `next` cursor (a check id), or
    /// an RFC 3339 timestamp.
    ///
    /// # Errors
    /// `format` when it is neither.
    pub fn parse(value: Option<&str>) -> Result<Self, Invalid> {
        match value {
            None | Some("") => Ok(Before::Latest),
            Some(s) => s
                .parse::<Uuid>()
                .map(Before::Check)
                .or_else(|_| {
                    DateTime::parse_from_rfc3339(s).map(|t| Before::Time(t.with_timezone(&Utc)))
                })
                .map_err(|_| {
                    Invalid::format(
                        "before is the 'next' value of the previous page or an RFC 3339 time, e.g. 2026-11-24T09:00:00Z",
                    )
                }),
        }
    }
}

/// How many entries a page holds: 1 to [`PAGE_MAX`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLimit(u16);

impl PageLimit {
    /// # Errors
    /// `format` when not a whole number, `range` when outside 1 to [`PAGE_MAX`].
    pub fn parse(value: Option<&str>) -> Result<Self, Invalid> {
        let Some(s) = value.filter(|s| !s.is_empty()) else {
            return Ok(PageLimit(PAGE_DEFAULT));
        };
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::format("limit is a whole number from 1 to 100"));
        }
        match s.parse::<u16>() {
            Ok(n) if (1..=PAGE_MAX).contains(&n) => Ok(PageLimit(n)),
            _ => Err(Invalid::range("limit is a whole number from 1 to 100")),
        }
    }

    pub fn get(self) -> u16 {
        self.0
    }
}

/// Why a person's own read was refused.
#[derive(Debug, thiserror::Error)]
pub enum SelfViewError {
    #[error(transparent)]
    Card(#[from] CardError),
    #[error("the cursor is not a check in this person's log")]
    UnknownCursor,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Why an administrator's look-up was refused.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// No coverage matches the number and birth date (a wrong birth date looks the same).
    #[error("no such coverage")]
    NoSuchPerson,
    /// The number and birth date match coverages of several persons.
    #[error("several persons match")]
    SeveralPersons,
    #[error("the cursor is not a check in this person's log")]
    UnknownCursor,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The card holder's own log: the card proves itself over a challenge issued to its holder.
///
/// # Errors
/// [`SelfViewError::Card`] for each way the card can be refused, exactly as at a facility;
/// an unknown cursor; database and audit failures.
pub async fn of_card_holder(
    pool: &Pool,
    audit: &AuditLog,
    trust: Option<&Snapshot>,
    origin: &Origin,
    proof: &CardProof<'_>,
    before: Before,
    limit: PageLimit,
) -> Result<Page, SelfViewError> {
    let now = Utc::now();
    let client = pool.get().await.map_err(anyhow::Error::new)?;
    let bound = Bound {
        purpose: Purpose::SelfView,
        origin,
        consents: None,
    };
    let holder = card::identify(&client, trust, Audience::Holder, bound, proof, now).await?;
    let (entries, next) = page(&client, holder.person_id, before, limit)
        .await?
        .ok_or(SelfViewError::UnknownCursor)?;
    drop(client);
    let check_id = record_read(
        audit,
        now,
        Actor::CardHolder,
        DisclosureKind::AccessLogSelf,
        Some(holder.person_id),
        Validity::Valid,
    )
    .await?;
    Ok(Page {
        entries,
        next,
        check_id,
    })
}

/// The log of the person behind an insured-person number and birth date, for an administrator.
/// The look-up is recorded whether or not it finds someone, so probing numbers leaves a trace.
///
/// # Errors
/// No or several persons match; an unknown cursor; database and audit failures.
pub async fn by_coverage(
    pool: &Pool,
    audit: &AuditLog,
    admin_id: PartyId,
    query: &Query,
    before: Before,
    limit: PageLimit,
) -> Result<Page, LookupError> {
    let now = Utc::now();
    let client = pool.get().await.map_err(anyhow::Error::new)?;
    let candidates = crate::store::coverage::candidates(&client, &[query.lookup()])
        .await?
        .pop()
        .unwrap_or_default();
    let mut persons: Vec<PersonId> = candidates.iter().map(|c| c.person_id).collect();
    persons.sort_unstable();
    persons.dedup();
    let person_id = match persons[..] {
        [one] => one,
        ref none_or_several => {
            let (validity, error) = if none_or_several.is_empty() {
                (Validity::NoSuchCoverage, LookupError::NoSuchPerson)
            } else {
                (Validity::Several, LookupError::SeveralPersons)
            };
            drop(client);
            record_read(
                audit,
                now,
                Actor::Party(admin_id),
                DisclosureKind::AccessLogAdmin,
                None,
                validity,
            )
            .await?;
            return Err(error);
        }
    };
    let (entries, next) = page(&client, person_id, before, limit)
        .await?
        .ok_or(LookupError::UnknownCursor)?;
    drop(client);
    let check_id = record_read(
        audit,
        now,
        Actor::Party(admin_id),
        DisclosureKind::AccessLogAdmin,
        Some(person_id),
        Validity::Valid,
    )
    .await?;
    Ok(Page {
        entries,
        next,
        check_id,
    })
}

/// One page of the person's log and the cursor of the next; `None` when `before` names a check
/// that is not in this person's log.
async fn page(
    client: &deadpool_postgres::Client,
    person_id: PersonId,
    before: Before,
    limit: PageLimit,
) -> anyhow::Result<Option<(Vec<Entry>, Option<Uuid>)>> {
    let bound = match before {
        Before::Latest => None,
        // Disclosure ids start at 1: (t, 0) bounds exactly the entries before t.
        Before::Time(at) => Some((at, 0)),
        Before::Check(check_id) => match store::position(client, person_id, check_id).await? {
            Some(position) => Some(position),
            None => return Ok(None),
        },
    };
    let limit = usize::from(limit.get());
    // One more than the page, to know whether another page follows.
    let mut entries = store::newest_first(client, person_id, bound, limit + 1).await?;
    let next = if entries.len() > limit {
        entries.truncate(limit);
        entries.last().map(|e| e.check_id)
    } else {
        None
    };
    Ok(Some((entries, next)))
}

/// Records one read of a person's log durably, under a new check id (time-ordered, as
/// [`crate::eligibility::decided`] makes them), and returns that id.
///
/// # Errors
/// The audit record could not be written: the page must not be returned.
async fn record_read(
    audit: &AuditLog,
    at: DateTime<Utc>,
    actor: Actor,
    kind: DisclosureKind,
    person_id: Option<PersonId>,
    validity: Validity,
) -> anyhow::Result<Uuid> {
    let check_id = Uuid::now_v7();
    audit
        .record(vec![Disclosure {
            at,
            actor,
            person_id,
            coverage_id: None,
            kind,
            check_id,
            validity: validity.code(),
        }])
        .await?;
    Ok(check_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn before_reads_cursors_times_and_nothing() {
        assert_eq!(Before::parse(None), Ok(Before::Latest));
        assert_eq!(Before::parse(Some("")), Ok(Before::Latest));
        let id = "0192f1c4-8b9e-7cc3-9a57-1f0a3d2b4c5e";
        assert_eq!(
            Before::parse(Some(id)),
            Ok(Before::Check(id.parse().unwrap()))
        );
        let t = "2026-11-24T09:00:00+09:00";
        assert_eq!(
            Before::parse(Some(t)),
            Ok(Before::Time("2026-11-24T00:00:00Z".parse().unwrap()))
        );
        for bad in ["2026-11-24", "yesterday", "0192f1c4", "'; drop table x; --"] {
            assert_eq!(
                Before::parse(Some(bad)).unwrap_err().kind,
                "format",
                "{bad}"
            );
        }
    }

    #[test]
    fn limit_defaults_and_stays_in_range() {
        assert_eq!(PageLimit::parse(None).unwrap().get(), PAGE_DEFAULT);
        assert_eq!(PageLimit::parse(Some("")).unwrap().get(), PAGE_DEFAULT);
        assert_eq!(PageLimit::parse(Some("1")).unwrap().get(), 1);
        assert_eq!(PageLimit::parse(Some("100")).unwrap().get(), 100);
        assert_eq!(PageLimit::parse(Some("0")).unwrap_err().kind, "range");
        assert_eq!(PageLimit::parse(Some("101")).unwrap_err().kind, "range");
        assert_eq!(
            PageLimit::parse(Some("99999999")).unwrap_err().kind,
            "range"
        );
        for bad in ["-1", "+5", "1.5", "ten", " 5"] {
            assert_eq!(
                PageLimit::parse(Some(bad)).unwrap_err().kind,
                "format",
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn limit_accepts_exactly_1_to_max(n in 0u32..100_000) {
            let parsed = PageLimit::parse(Some(&n.to_string()));
            prop_assert_eq!(parsed.is_ok(), (1..=u32::from(PAGE_MAX)).contains(&n));
            if let Ok(limit) = parsed {
                prop_assert_eq!(u32::from(limit.get()), n);
            }
        }

        #[test]
        fn before_never_panics_and_round_trips_times(secs in 0i64..4_000_000_000) {
            let t = DateTime::from_timestamp(secs, 0).unwrap();
            let text = t.to_rfc3339();
            prop_assert_eq!(Before::parse(Some(&text)), Ok(Before::Time(t)));
        }
    }
}
