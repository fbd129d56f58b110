//! One writer's lane of the chain: the store's locked session, that session's chain key and the
//! lane's head (its last record's id and hash, and how many records it holds).

use std::sync::Arc;

use super::chain::{self, ChainFields, ChainKey, GENESIS};
use super::checkpoint::{Head, Heads};
use super::key::AuditKey;
use super::Disclosure;
use crate::store::audit::{LaneSession, NewRecords, StoredRecord};

pub struct Lane {
    session: LaneSession,
    epoch: i64,
    key: ChainKey,
    head: Head,
    heads: Arc<Heads>,
}

impl Lane {
    /// Opens a session, locks the lowest free lane, reads its head and derives the session's
    /// chain key under a fresh epoch (one audit-key operation per claim, none per record).
    ///
    /// # Errors
    /// The database is unreachable, every lane is taken, or the key source failed.
    pub async fn claim(
        connector: &crate::store::Connector,
        audit_key: &AuditKey,
        heads: Arc<Heads>,
    ) -> anyhow::Result<Lane> {
        let (session, tail) = LaneSession::claim(connector).await?;
        let number = session.number();
        let head = match tail {
            Some(tail) => Head {
                first_id: Some(tail.first_id),
                last_id: Some(tail.last_id),
                hash: tail.hash,
                records: tail.records,
            },
            None => Head {
                first_id: None,
                last_id: None,
                hash: GENESIS,
                records: 0,
            },
        };
        let epoch: i64 = rand::random();
        let key = audit_key.lane_key(number, epoch)?;
        heads.set(number, head.clone());
        tracing::debug!(lane = number, "audit writer claimed its lane");
        Ok(Lane {
            session,
            epoch,
            key,
            head,
            heads,
        })
    }

    /// Whether the session has ended (the lane is no longer ours).
    pub fn is_closed(&self) -> bool {
        self.session.is_closed()
    }

    /// Appends the records, in order, to the lane's chain with one statement.
    ///
    /// # Errors
    /// Database failures. The caller must then drop this lane: the statement may or may not
    /// have committed, and only a fresh claim reads the true tail back.
    pub async fn append(&mut self, records: &[&Disclosure]) -> anyhow::Result<()> {
        let n = records.len();
        let mut prev = self.head.hash;
        let mut rows = NewRecords {
            at: Vec::with_capacity(n),
            party_id: Vec::with_capacity(n),
            person_id: Vec::with_capacity(n),
            coverage_id: Vec::with_capacity(n),
            kind: Vec::with_capacity(n),
            check_id: Vec::with_capacity(n),
            validity: Vec::with_capacity(n),
            prev_hash: Vec::with_capacity(n),
            hash: Vec::with_capacity(n),
        };
        for record in records {
            let hash = chain::link(&self.key, &prev, &ChainFields::from(*record));
            rows.at.push(record.at);
            rows.party_id.push(record.actor.stored());
            rows.person_id
                .push(record.person_id.map(crate::domain::PersonId::get));
            rows.coverage_id
                .push(record.coverage_id.map(crate::domain::CoverageId::get));
            rows.kind.push(record.kind.as_str());
            rows.check_id.push(record.check_id);
            rows.validity.push(record.validity);
            rows.prev_hash.push(prev.to_vec());
            rows.hash.push(hash.to_vec());
            prev = hash;
        }
        let (first, last) = self
            .session
            .append(self.epoch, self.head.records, &rows)
            .await?;
        let number = self.session.number();
        self.head.first_id = self.head.first_id.or(first);
        self.head.last_id = last.or(self.head.last_id);
        self.head.hash = prev;
        self.head.records += n as u64;
        self.heads.set(number, self.head.clone());
        Ok(())
    }
}

/// The chained fields of a record read back from the store.
pub fn fields(record: &StoredRecord) -> ChainFields<'_> {
    ChainFields {
        at_micros: record.at.timestamp_micros(),
        party_id: record.party_id,
        person_id: record.person_id,
        coverage_id: record.coverage_id,
        kind: &record.kind,
        check_id: *record.check_id.as_bytes(),
        validity: record.validity,
    }
}
