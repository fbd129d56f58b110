//! The enumeration watch: a party walking through insurance numbers asks for many distinct keys
//! that find nothing.
//!
//! Within a sliding window (a minute), each party's distinct keys are remembered as missed or
//! hit, each key once: asking one known-valid key a thousand times is one hit, so copies of a
//! valid query cannot hide a walk. A party is flagged once its distinct misses reach the threshold
//! and are at least as many as its distinct hits. Keys are hashed with a key random to this
//! process, kept only for the window, and never leave memory.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::PartyId;

pub const WINDOW: Duration = Duration::from_secs(60);

/// The most distinct keys remembered per party: beyond it the oldest are forgotten early. A
/// walk is flagged long before (the threshold is tens of keys), so the bound costs no detection.
const KEYS_MAX: usize = 50_000;

/// A query's identity as the watch sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key(u64);

/// What the window held when the party was flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suspicion {
    pub distinct_misses: u32,
    pub distinct_keys: u32,
}

pub struct Watch {
    /// Distinct misses in a window that flag a party; 0 turns the watch off.
    misses_to_flag: u32,
    hasher: RandomState,
    parties: Mutex<HashMap<PartyId, Window>>,
}

#[derive(Default)]
struct Window {
    /// Each key's first sighting in the window and whether it has found coverage.
    keys: HashMap<Key, (Instant, bool)>,
    /// Keys in order of first sighting, for expiry.
    order: VecDeque<(Instant, Key)>,
    misses: u32,
    hits: u32,
}

impl Window {
    fn expire(&mut self, now: Instant) {
        while let Some(&(seen, key)) = self.order.front() {
            if now.saturating_duration_since(seen) < WINDOW && self.order.len() < KEYS_MAX {
                break;
            }
            self.order.pop_front();
            if let Some((_, hit)) = self.keys.remove(&key) {
                if hit {
                    self.hits -= 1;
                } else {
                    self.misses -= 1;
                }
            }
        }
    }

    fn note(&mut self, key: Key, hit: bool, now: Instant) {
        match self.keys.get_mut(&key) {
            Some((_, was_hit)) => {
                // A key that found nothing and then coverage (enrolled meanwhile) is a hit.
                if hit && !*was_hit {
                    *was_hit = true;
                    self.misses -= 1;
                    self.hits += 1;
                }
            }
            None => {
                self.keys.insert(key, (now, hit));
                self.order.push_back((now, key));
                if hit {
                    self.hits += 1;
                } else {
                    self.misses += 1;
                }
            }
        }
    }
}

impl Watch {
    pub fn new(misses_to_flag: u32) -> Self {
        Watch {
            misses_to_flag,
            hasher: RandomState::new(),
            parties: Mutex::new(HashMap::new()),
        }
    }

    /// The watch's key for a query (or anything else a party asks for by value).
    pub fn key(&self, value: &impl Hash) -> Key {
        Key(self.hasher.hash_one(value))
    }

    /// Counts a request's answers, each as its key and whether it found something; says so when
    /// the party now looks like it is enumerating (once: its window starts afresh).
    pub fn note(
        &self,
        party_id: PartyId,
        answers: impl IntoIterator<Item = (Key, bool)>,
    ) -> Option<Suspicion> {
        self.note_at(party_id, answers, Instant::now())
    }

    fn note_at(
        &self,
        party_id: PartyId,
        answers: impl IntoIterator<Item = (Key, bool)>,
        now: Instant,
    ) -> Option<Suspicion> {
        if self.misses_to_flag == 0 {
            return None;
        }
        let mut parties = self.parties.lock().unwrap_or_else(|p| p.into_inner());
        let window = parties.entry(party_id).or_default();
        window.expire(now);
        for (key, hit) in answers {
            window.note(key, hit, now);
            if window.order.len() >= KEYS_MAX {
                window.expire(now);
            }
        }
        if window.misses >= self.misses_to_flag && window.misses >= window.hits {
            let suspicion = Suspicion {
                distinct_misses: window.misses,
                distinct_keys: window.misses + window.hits,
            };
            *window = Window::default();
            return Some(suspicion);
        }
        if window.keys.is_empty() {
            parties.remove(&party_id);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn misses(watch: &Watch, party: i64, range: std::ops::Range<u32>, at: Instant) -> bool {
        let keys: Vec<_> = range.map(|n| (watch.key(&("miss", n)), false)).collect();
        watch.note_at(PartyId::new(party), keys, at).is_some()
    }

    #[test]
    fn distinct_misses_reaching_the_threshold_flag_the_party() {
        let watch = Watch::new(20);
        let t0 = Instant::now();
        assert!(
            !misses(&watch, 1, 0..19, t0),
            "19 misses are not yet a pattern"
        );
        assert!(misses(&watch, 1, 19..20, t0));
        // Another party has its own window.
        assert!(!misses(&watch, 2, 0..19, t0));
    }

    #[test]
    fn one_missed_key_asked_again_and_again_is_one_miss() {
        let watch = Watch::new(20);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(!misses(&watch, 1, 0..1, t0));
        }
    }

    #[test]
    fn copies_of_one_valid_query_do_not_cover_a_walk() {
        let watch = Watch::new(20);
        let t0 = Instant::now();
        let valid = watch.key(&"valid");
        let mut batch: Vec<_> = (0..1_000).map(|_| (valid, true)).collect();
        batch.extend((0..20).map(|n| (watch.key(&("miss", n)), false)));
        assert!(watch.note_at(PartyId::new(1), batch, t0).is_some());
    }

    #[test]
    fn misses_among_many_distinct_hits_or_spread_over_minutes_are_not_flagged() {
        let watch = Watch::new(20);
        let t0 = Instant::now();
        let mut batch: Vec<_> = (0..1_000).map(|n| (watch.key(&("hit", n)), true)).collect();
        batch.extend((0..30).map(|n| (watch.key(&("miss", n)), false)));
        assert!(watch.note_at(PartyId::new(1), batch, t0).is_none());
        // 15 misses a minute, for ten minutes.
        for minute in 0..10u32 {
            let at = t0 + WINDOW * minute;
            assert!(!misses(&watch, 2, minute * 15..minute * 15 + 15, at));
        }
    }

    #[test]
    fn a_missed_key_that_later_finds_coverage_counts_as_a_hit() {
        let watch = Watch::new(3);
        let t0 = Instant::now();
        let key = watch.key(&"late enrolment");
        assert!(watch.note_at(PartyId::new(1), [(key, false)], t0).is_none());
        assert!(watch.note_at(PartyId::new(1), [(key, true)], t0).is_none());
        assert!(!misses(&watch, 1, 0..2, t0));
        assert!(misses(&watch, 1, 2..3, t0));
    }
}
