//! Eligibility by insured-person number: what was asked, what matched, what is answered.
//!
//! The flow: the API edge parses a request into a [`Query`]; [`check`] fetches the matching
//! coverages for every query in one round trip, [`decide`]s each answer, records every answer in
//! the audit log (durably, before returning), signs each one's proof of check
//! ([`crate::proof`]), and hands back [`Answer`]s.

mod answer;
pub mod coalesce;
mod decide;

pub use answer::{Advisory, Answer, CoverageView, Shown, Withheld};
pub use decide::{decide, Validity};

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use deadpool_postgres::Pool;
use uuid::Uuid;

use crate::audit::{AuditLog, Disclosure, DisclosureKind};
use crate::domain::Actor;
use crate::domain::{BranchNumber, InsuredNumber, InsuredSymbol, InsurerNumber};
use crate::parties::Party;
use crate::proof::ProofKey;

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

/// A decided check on its way out: the answer it will give, the audit record that discloses
/// exactly what it shows and the claims its proof will sign, under one new check id. Every path
/// that answers (by number, by card, by health ID) makes one with [`decided`] and turns it into
/// an [`Answer`] only through [`seal`], so no answer can leave without its record and its proof.
pub struct Decided {
    answer: Answer,
    record: Disclosure,
    claims: crate::proof::Claims,
}

impl Decided {
    pub fn check_id(&self) -> Uuid {
        self.answer.check_id
    }

    /// The answer, for what a use case adds to it before it is sealed (a reference number,
    /// consents, advisories). What the proof signs was fixed by [`decided`].
    pub fn answer_mut(&mut self) -> &mut Answer {
        &mut self.answer
    }
}

/// Decides what a check answers: `(validity, chosen)` as [`decide`] found them, showing the
/// consent-bound details of `shown`. `asked` is the query by number, if there was one: its key
/// is what the proof names when no coverage is disclosed (a claims system holds that key).
pub fn decided(
    at: DateTime<Utc>,
    party: &Party,
    kind: DisclosureKind,
    (validity, chosen): (Validity, Option<&Candidate>),
    asked: Option<&Query>,
    date_of_care: NaiveDate,
    shown: Shown,
) -> Decided {
    // Time-ordered, so the unique index on check ids grows at its right edge instead of
    // touching a random page per answer.
    let check_id = Uuid::now_v7();
    let record = Disclosure {
        at,
        actor: Actor::Party(party.id),
        person_id: chosen.map(|c| c.person_id),
        coverage_id: chosen.map(|c| c.coverage_id),
        kind,
        check_id,
        validity: validity.code(),
    };
    let coverage_digest = match (chosen, asked) {
        (Some(c), _) => Some(crate::proof::coverage_digest(
            &c.insurer_number,
            &c.symbol,
            &c.number,
            &c.branch,
            c.birth_date,
        )),
        (None, Some(q)) => Some(crate::proof::coverage_digest(
            q.insurer_number.as_str(),
            q.symbol.as_ref().map_or("", |s| s.as_str()),
            q.number.as_str(),
            q.branch.as_ref().map_or("", |b| b.as_str()),
            q.birth_date,
        )),
        (None, None) => None,
    };
    let (facility_code, party_id) = crate::proof::asking_party(party);
    let claims = crate::proof::Claims {
        check_id,
        iat: at.timestamp(),
        facility_code,
        party_id,
        validity: validity.code(),
        date_of_care,
        coverage_digest,
    };
    Decided {
        answer: Answer::unsigned(validity, chosen, date_of_care, check_id, shown),
        record,
        claims,
    }
}

/// Batches at least this large are signed on blocking threads rather than the request's (a
/// token's signatures always are).
const SIGN_APART: usize = 8;

/// Signs every answer's proof and makes their audit records durable (both at once: the
/// signatures are computed while the records are written), then hands back the answers.
///
/// # Errors
/// The audit record could not be made durable, or the signing key (a token) failed: then no
/// answer may be returned.
pub async fn seal(
    audit: &AuditLog,
    proofs: &Arc<ProofKey>,
    decided: Vec<Decided>,
) -> anyhow::Result<Vec<Answer>> {
    let (mut answers, mut records, mut claims) = (
        Vec::with_capacity(decided.len()),
        Vec::with_capacity(decided.len()),
        Vec::with_capacity(decided.len()),
    );
    for d in decided {
        answers.push(d.answer);
        records.push(d.record);
        claims.push(d.claims);
    }
    let proofs_signed = if claims.len() < SIGN_APART && !proofs.in_token() {
        let signed = sign_all(proofs, &claims)?;
        audit.record(records).await?;
        signed
    } else {
        let (signed, recorded) = tokio::join!(sign_apart(proofs, claims), audit.record(records));
        recorded?;
        signed?
    };
    for (answer, proof) in answers.iter_mut().zip(proofs_signed) {
        answer.proof = proof;
    }
    Ok(answers)
}

fn sign_all(key: &ProofKey, claims: &[crate::proof::Claims]) -> anyhow::Result<Vec<String>> {
    claims.iter().map(|c| c.sign(key)).collect()
}

/// Signs on blocking threads, the claims split among the key's parallel signers, in order.
async fn sign_apart(
    proofs: &Arc<ProofKey>,
    claims: Vec<crate::proof::Claims>,
) -> anyhow::Result<Vec<String>> {
    use anyhow::Context;
    let parts = proofs.parallel_signers().clamp(1, claims.len().max(1));
    let size = claims.len().div_ceil(parts).max(1);
    let mut claims = claims.into_iter();
    let mut tasks = Vec::with_capacity(parts);
    loop {
        let part: Vec<_> = claims.by_ref().take(size).collect();
        if part.is_empty() {
            break;
        }
        let key = proofs.clone();
        tasks.push(tokio::task::spawn_blocking(move || sign_all(&key, &part)));
    }
    let mut signed = Vec::new();
    for task in futures_util::future::join_all(tasks).await {
        signed.extend(task.context("the signing task panicked")??);
    }
    Ok(signed)
}

/// Signs every answer's proof and hands back the answers with their audit records, recording
/// nothing: the caller must make the records durable before any of the answers leaves (the bulk
/// inquiry stores the answers, unshown, first).
///
/// # Errors
/// The signing key (a token) failed.
pub fn sign_unrecorded(
    proofs: &ProofKey,
    decided: Vec<Decided>,
) -> anyhow::Result<(Vec<Answer>, Vec<Disclosure>)> {
    let (mut answers, mut records) = (
        Vec::with_capacity(decided.len()),
        Vec::with_capacity(decided.len()),
    );
    for d in decided {
        let mut answer = d.answer;
        answer.proof = d.claims.sign(proofs)?;
        answers.push(answer);
        records.push(d.record);
    }
    Ok((answers, records))
}

/// Today in Japan (UTC+9, no daylight saving): the default date of care.
pub fn today_in_japan() -> NaiveDate {
    (Utc::now() + chrono::Duration::hours(9)).date_naive()
}

/// One query to answer, with who asks it and how (the disclosure kind its record carries).
#[derive(Clone, Copy)]
pub struct Ask<'a> {
    pub party: &'a Party,
    pub kind: DisclosureKind,
    pub query: &'a Query,
}

impl<'a> Ask<'a> {
    /// The queries of one party, asked the same way (a batch, a bulk chunk).
    pub fn all(party: &'a Party, kind: DisclosureKind, queries: &[&'a Query]) -> Vec<Ask<'a>> {
        queries
            .iter()
            .map(|query| Ask { party, kind, query })
            .collect()
    }
}

/// Answers every query, recording each answer in the audit log before returning. A limit or
/// specific-disease certificate is shown when the query states the patient's consent, or when
/// the patient gave the asking party that consent at a card reader within its 24 hours (`now`).
/// The queries may come from several parties (single checks answered together, see
/// [`coalesce`]): each answer is its own party's.
///
/// # Errors
/// The database is unreachable, or the audit record could not be made durable: then no answer
/// may be returned.
pub async fn check(
    pool: &Pool,
    audit: &AuditLog,
    proofs: &Arc<ProofKey>,
    now: DateTime<Utc>,
    asks: &[Ask<'_>],
) -> anyhow::Result<Vec<Answer>> {
    use anyhow::Context;
    let client = pool.get().await.context("getting a database connection")?;
    let decisions = decide_unrecorded(&client, now, asks).await?;
    drop(client);
    seal(audit, proofs, decisions).await
}

/// Decides every query's answer as [`check`] does, and neither signs nor records them: the
/// caller hands them to [`seal`], or (the bulk inquiry) to [`sign_unrecorded`], storing the
/// signed answers unshown before it records them, so that a worker stopping between the record
/// and the answer's storage can neither lose nor repeat a record.
///
/// # Errors
/// The database failed.
pub async fn decide_unrecorded(
    client: &impl deadpool_postgres::GenericClient,
    now: DateTime<Utc>,
    asks: &[Ask<'_>],
) -> anyhow::Result<Vec<Decided>> {
    use anyhow::Context;
    let lookups: Vec<_> = asks.iter().map(|a| a.query.lookup()).collect();
    let found = crate::store::coverage::candidates(client, &lookups)
        .await
        .context("looking up coverages")?;
    let mut decisions = Vec::with_capacity(asks.len());
    let mut keys = Vec::with_capacity(asks.len());
    let mut persons: Vec<(crate::domain::PersonId, NaiveDate)> = Vec::new();
    for (ask, candidates) in asks.iter().zip(&found) {
        let query = ask.query;
        let (validity, chosen) = decide(query.date_of_care, candidates);
        if let Some(c) = chosen {
            persons.push((c.person_id, query.date_of_care));
        }
        let mut shown = query.stated;
        // Only a coverage with a consent-bound detail not stated in the query asks the store.
        if let Some(c) = chosen.filter(|c| {
            (c.limit_category.is_some() && !shown.limit_certificate)
                || (c.specific_disease.is_some() && !shown.specific_diseases)
        }) {
            let given =
                crate::store::card::consents_in_force(client, c.person_id, ask.party.id, now)
                    .await
                    .context("reading consents")?;
            shown = shown.or(Shown::from_consents(&given));
        }
        decisions.push(decided(
            now,
            ask.party,
            ask.kind,
            (validity, chosen),
            Some(query),
            query.date_of_care,
            shown,
        ));
        keys.push(chosen.map_or_else(|| query.reference_key(), reference_key));
    }
    let asked: Vec<_> = asks.iter().map(|a| a.party.id).zip(&keys).collect();
    // Both in one round trip: the session pipelines the two statements.
    let (references, expenses) = tokio::try_join!(
        crate::store::reference::of_party_keys(client, &asked),
        crate::store::public_expense::in_force(client, &persons),
    )
    .context("reading reference numbers and public expenses")?;
    let mut expenses = expenses.into_iter();
    for (decision, reference) in decisions.iter_mut().zip(references) {
        let answer = decision.answer_mut();
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
    Ok(decisions)
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
