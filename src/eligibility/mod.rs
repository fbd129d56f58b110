//! Eligibility by insured-person number: what was asked, what matched, what is answered.
//!
//! The flow: the API edge parses a request into a [`Query`]; [`check`] fetches the matching
//! coverages for every query in one round trip, [`decide`]s each answer, records every answer in
//! the audit log (durably, before returning), and hands back [`Answer`]s.

mod answer;
mod decide;

pub use answer::{Advisory, Answer, CoverageView, Shown, Withheld};
pub use decide::{decide, Validity};

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Pool;
use uuid::Uuid;

use crate::audit::{AuditLog, Disclosure, DisclosureKind};
use crate::domain::{Actor, PartyId};
use crate::domain::{BranchNumber, InsuredNumber, InsuredSymbol, InsurerNumber};

/// A parsed eligibility question: the card key, the birth date (part of the match) and the day
/// the care happens.
#[derive(Clone, Debug)]
pub struct Query {
    pub insurer_number: InsurerNumber,
    pub symbol: Option<InsuredSymbol>,
    pub number: InsuredNumber,
    pub branch: Option<BranchNumber>,
    pub birth_date: NaiveDate,
    pub date_of_care: NaiveDate,
    /// The consent-bound details the facility states the patient consented to show (the real
    /// system's consent flags of a query by number).
    pub stated: Shown,
}

impl Query {
    /// The store's look-up for this query.
    pub fn lookup(&self) -> crate::store::coverage::Lookup<'_> {
        crate::store::coverage::Lookup {
            insurer_number: &self.insurer_number,
            symbol: self.symbol.as_ref(),
            number: &self.number,
            branch: self.branch.as_ref(),
            birth_date: self.birth_date,
            date_of_care: self.date_of_care,
        }
    }

    /// The reference-number key of the query's card key (canonical; `''` for an absent part).
    pub fn reference_key(&self) -> crate::store::reference::Key {
        crate::store::reference::Key {
            insurer_number: self.insurer_number.as_str().to_owned(),
            symbol: self.symbol.as_ref().map_or("", |s| s.as_str()).to_owned(),
            number: self.number.as_str().to_owned(),
            branch: self.branch.as_ref().map_or("", |b| b.as_str()).to_owned(),
        }
    }

    /// What identifies the coverage asked about (the date of care aside): two queries with the
    /// same key ask about the same person.
    pub fn key(
        &self,
    ) -> (
        &InsurerNumber,
        Option<&InsuredSymbol>,
        &InsuredNumber,
        Option<&BranchNumber>,
        NaiveDate,
    ) {
        (
            &self.insurer_number,
            self.symbol.as_ref(),
            &self.number,
            self.branch.as_ref(),
            self.birth_date,
        )
    }
}

/// A coverage that matched a query's key and birth date, with its attributes as of the date of
/// care (the store's row). Only [`decide`] looks at these; callers see [`Answer`]s.
pub use crate::store::coverage::CoverageRow as Candidate;

/// The answer for a decided check and the audit record that discloses exactly what it shows,
/// under one new check id. Every path that answers (by number, by card, by health ID) goes
/// through here, so no answer can leave without its matching record.
pub fn answer_with_record(
    at: DateTime<Utc>,
    party_id: PartyId,
    kind: DisclosureKind,
    validity: Validity,
    chosen: Option<&Candidate>,
    date_of_care: NaiveDate,
    shown: Shown,
) -> (Answer, Disclosure) {
    // Time-ordered, so the unique index on check ids grows at its right edge instead of
    // touching a random page per answer.
    let check_id = Uuid::now_v7();
    let record = Disclosure {
        at,
        actor: Actor::Party(party_id),
        person_id: chosen.map(|c| c.person_id),
        coverage_id: chosen.map(|c| c.coverage_id),
        kind,
        check_id,
        validity: validity.code(),
    };
    (
        Answer::new(validity, chosen, date_of_care, check_id, shown),
        record,
    )
}

/// Today in Japan (UTC+9, no daylight saving): the default date of care.
pub fn today_in_japan() -> NaiveDate {
    (Utc::now() + chrono::Duration::hours(9)).date_naive()
}

/// Answers every query, recording each answer in the audit log before returning. A limit or
/// specific-disease certificate is shown when the query states the patient's consent, or when
/// the patient gave this party that consent at a card reader within its 24 hours (`now`).
///
/// # Errors
/// The database is unreachable, or the audit record could not be made durable: then no answer
/// may be returned.
pub async fn check(
    pool: &Pool,
    audit: &AuditLog,
    now: DateTime<Utc>,
    party_id: PartyId,
    kind: DisclosureKind,
    queries: &[&Query],
) -> anyhow::Result<Vec<Answer>> {
    use anyhow::Context;
    let client = pool.get().await.context("getting a database connection")?;
    let lookups: Vec<_> = queries.iter().map(|q| q.lookup()).collect();
    let found = crate::store::coverage::candidates(&client, &lookups)
        .await
        .context("looking up coverages")?;
    let mut answers = Vec::with_capacity(queries.len());
    let mut records = Vec::with_capacity(queries.len());
    let mut keys = Vec::with_capacity(queries.len());
    for (query, candidates) in queries.iter().zip(&found) {
        let (validity, chosen) = decide(query.date_of_care, candidates);
        let mut shown = query.stated;
        // Only a coverage with a consent-bound detail not stated in the query asks the store.
        if let Some(c) = chosen.filter(|c| {
            (c.limit_category.is_some() && !shown.limit_certificate)
                || (c.specific_disease.is_some() && !shown.specific_diseases)
        }) {
            let given = crate::store::card::consents_in_force(&client, c.person_id, party_id, now)
                .await
                .context("reading consents")?;
            shown = shown.or(Shown::from_consents(&given));
        }
        let (answer, record) = answer_with_record(
            now,
            party_id,
            kind,
            validity,
            chosen,
            query.date_of_care,
            shown,
        );
        keys.push(chosen.map_or_else(|| query.reference_key(), reference_key));
        records.push(record);
        answers.push(answer);
    }
    let persons: Vec<(crate::domain::PersonId, NaiveDate)> = queries
        .iter()
        .zip(&found)
        .filter_map(|(query, candidates)| {
            decide(query.date_of_care, candidates)
                .1
                .map(|c| (c.person_id, query.date_of_care))
        })
        .collect();
    // Both in one round trip: the session pipelines the two statements.
    let (references, expenses) = tokio::try_join!(
        crate::store::reference::of_keys(&client, party_id, &keys),
        crate::store::public_expense::in_force(&client, &persons),
    )
    .context("reading reference numbers and public expenses")?;
    let mut expenses = expenses.into_iter();
    drop(client);
    for (answer, reference) in answers.iter_mut().zip(references) {
        answer.reference_number = reference;
        if answer.coverage.is_some() {
            answer.public_expenses = expenses
                .next()
                .unwrap_or_default()
                .iter()
                .map(Into::into)
                .collect();
        }
    }
    audit.record(records).await?;
    Ok(answers)
}

/// The reference-number key of a coverage (its key as stored).
pub fn reference_key(c: &Candidate) -> crate::store::reference::Key {
    crate::store::reference::Key {
        insurer_number: c.insurer_number.clone(),
        symbol: c.symbol.clone(),
        number: c.number.clone(),
        branch: c.branch.clone(),
    }
}
