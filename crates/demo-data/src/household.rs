//! One household at a time: its people, its coverages and the change rows they produce.

use chrono::{Duration, NaiveDate};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::calendar::{
    age_on, date_max, date_min, school_start, seventy_start, years_after, years_before,
};
use super::lists::{
    Insurer, Scheme, CITIES, FAMILY_NAMES, FEMALE_NAMES, MALE_NAMES, PREFECTURES, TOWNS,
};
use super::row::Row;
use onshi_domain::check_digit;

pub(super) struct Person {
    pub(super) my_number: String,
    pub(super) name: String,
    pub(super) kana: String,
    pub(super) sex: &'static str,
    pub(super) birth: NaiveDate,
    /// The 後期高齢者医療 ratio, used from age 75.
    pub(super) kouki_ratio: &'static str,
    /// 現役並み所得: 30% even at 70-74.
    pub(super) high_income: bool,
    pub(super) has_limit_certificate: bool,
    /// A loss of this person alone (death, own coverage), before the household's end.
    pub(super) own_loss: Option<(NaiveDate, &'static str)>,
}

impl Person {
    pub(super) fn copay_on(&self, d: NaiveDate) -> &'static str {
        if d < school_start(self.birth) {
            "020"
        } else if age_on(self.birth, d) >= 75 {
            self.kouki_ratio
        } else if d >= seventy_start(self.birth) {
            if self.high_income {
                "030"
            } else {
                "020"
            }
        } else {
            "030"
        }
    }

    pub(super) fn is_seventy_to_74(&self, d: NaiveDate) -> bool {
        d >= seventy_start(self.birth) && age_on(self.birth, d) < 75
    }
}

/// Where a household lives.
pub(super) struct Home {
    pub(super) postcode: String,
    pub(super) address: String,
}

/// A coverage key without its branch.
pub(super) struct Key {
    pub(super) insurer: usize,
    pub(super) symbol: String,
    pub(super) number: String,
    pub(super) card_classification: &'static str,
}

pub(super) struct Generator<'a> {
    pub(super) rng: ChaCha8Rng,
    pub(super) insurers: &'a [Insurer],
    /// Insurers already seen: the first acquire of each carries its name.
    pub(super) used: Vec<bool>,
    pub(super) persons: u64,
    pub(super) keys: u64,
    pub(super) my_number_offset: u64,
}

/// 10^11: My Number bodies are 11 digits.
const BODY_SPACE: u64 = 100_000_000_000;
/// Odd and not a multiple of 5, so coprime with 10^11: counter × this mod 10^11 never repeats.
const BODY_STRIDE: u64 = 7_919_613_221;

impl<'a> Generator<'a> {
    pub(super) fn new(rng: ChaCha8Rng, seed: u64, insurers: &'a [Insurer]) -> Self {
        // SplitMix64 finaliser: nearby seeds give unrelated number ranges.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self {
            rng,
            insurers,
            used: vec![false; insurers.len()],
            persons: 0,
            keys: 0,
            my_number_offset: z % BODY_SPACE,
        }
    }

    pub(super) fn insurers_used(&self) -> u64 {
        self.used.iter().filter(|u| **u).count() as u64
    }

    pub(super) fn between(&mut self, lo: NaiveDate, hi: NaiveDate) -> NaiveDate {
        lo + Duration::days(self.rng.gen_range(0..=(hi - lo).num_days()))
    }

    fn my_number(&mut self) -> String {
        let body = (self.persons.wrapping_mul(BODY_STRIDE) % BODY_SPACE + self.my_number_offset)
            % BODY_SPACE;
        self.persons += 1;
        let body = format!("{body:011}");
        let mut bytes = [0u8; 11];
        bytes.copy_from_slice(body.as_bytes());
        format!("{body}{}", check_digit::my_number(&bytes))
    }

    fn person(&mut self, family: (&str, &str), sex: &'static str, age: u32) -> Person {
        let given = if sex == "1" { MALE_NAMES } else { FEMALE_NAMES };
        let given = *given
            .choose(&mut self.rng)
            .expect("name lists are not empty");
        let birth = years_before(date_max(), age) - Duration::days(self.rng.gen_range(0..365));
        let kouki_ratio = match self.rng.gen_range(0..100) {
            0..=59 => "010",
            60..=84 => "020",
            _ => "030",
        };
        Person {
            my_number: self.my_number(),
            name: format!("{}\u{3000}{}", family.0, given.0),
            kana: format!("{}\u{3000}{}", family.1, given.1),
            sex,
            birth,
            kouki_ratio,
            high_income: self.rng.gen_bool(0.1),
            has_limit_certificate: self.rng.gen_bool(0.1),
            own_loss: None,
        }
    }

    fn pick_insurer(&mut self, kouki: bool, not: Option<usize>) -> usize {
        let scheme = if kouki {
            Scheme::Kouki
        } else {
            match self.rng.gen_range(0..100) {
                0..=37 => Scheme::Kyokai,
                38..=64 => Scheme::Kumiai,
                65..=72 => Scheme::Kyosai,
                _ => Scheme::Kokuho,
            }
        };
        let candidates: Vec<usize> = (0..self.insurers.len())
            .filter(|&i| self.insurers[i].scheme == scheme && Some(i) != not)
            .collect();
        *candidates
            .choose(&mut self.rng)
            .expect("every scheme has two or more insurers")
    }

    pub(super) fn home(&mut self, insurer: usize) -> Home {
        let ins = &self.insurers[insurer];
        let pref = &PREFECTURES[ins.prefecture];
        let city = match ins.city {
            Some(city) => city,
            None => CITIES
                .choose(&mut self.rng)
                .expect("city list is not empty"),
        };
        let town = TOWNS.choose(&mut self.rng).expect("town list is not empty");
        let (lo, hi) = (pref.postcode_lo, pref.postcode_hi);
        Home {
            postcode: format!(
                "{:03}-{:04}",
                self.rng.gen_range(lo..=hi),
                self.rng.gen_range(0..10_000)
            ),
            address: format!(
                "{}{city}{town}{}-{}-{}",
                pref.name,
                self.rng.gen_range(1..=9),
                self.rng.gen_range(1..=30),
                self.rng.gen_range(1..=20)
            ),
        }
    }

    fn key(&mut self, insurer: usize, head_age: u32) -> Key {
        let ins = &self.insurers[insurer];
        let short = PREFECTURES[ins.prefecture].short;
        let full_width = |s: String| -> String {
            s.chars()
                .map(|c| {
                    char::from_u32(c as u32 + 0xFEE0).expect("ASCII digits shift into U+FF10..FF19")
                })
                .collect()
        };
        let digits = |rng: &mut ChaCha8Rng, n: u32| -> String {
            format!(
                "{:0width$}",
                rng.gen_range(0..10u64.pow(n)),
                width = n as usize
            )
        };
        let roll = self.rng.gen_range(0..100);
        let symbol = match (ins.scheme, roll) {
            (Scheme::Kouki, 0..=69) | (Scheme::Kokuho, 0..=34) => String::new(),
            (Scheme::Kouki, _) => digits(&mut self.rng, 2),
            (Scheme::Kokuho, 35..=59) | (_, 92..) => {
                format!("{short}{}", full_width(digits(&mut self.rng, 2)))
            }
            (Scheme::Kokuho, 60..=79) | (_, 80..=91) => full_width(digits(&mut self.rng, 3)),
            (Scheme::Kyokai, _) => digits(&mut self.rng, 8),
            _ => {
                let n = self.rng.gen_range(1..=4);
                digits(&mut self.rng, n)
            }
        };
        self.keys += 1;
        let number = if ins.scheme == Scheme::Kouki {
            format!("{:08}", 10_000_000 + self.keys)
        } else {
            format!("{}", 10_000 + self.keys)
        };
        let card_classification = match (ins.scheme, self.rng.gen_range(0..100)) {
            (Scheme::Kokuho, 0..=1) => "03",
            (Scheme::Kokuho, 2) => "05",
            (Scheme::Kumiai, 0..=4) if head_age >= 60 => "06",
            _ => "01",
        };
        Key {
            insurer,
            symbol,
            number,
            card_classification,
        }
    }
}

/// How a household's coverage ends, if it does within the file.
enum Fate {
    Stays,
    Loses(NaiveDate, &'static str),
    ChangesInsurer(NaiveDate),
}

impl Generator<'_> {
    /// Generates one household of at most `max_persons` people, appends its rows and returns how
    /// many people it has.
    pub(super) fn household(&mut self, max_persons: u64, rows: &mut Vec<Row>) -> u64 {
        let kouki = self.rng.gen_bool(0.14);
        let insurer = self.pick_insurer(kouki, None);
        let family = *FAMILY_NAMES
            .choose(&mut self.rng)
            .expect("name lists are not empty");
        let head_sex = if self.rng.gen_bool(0.5) { "1" } else { "2" };
        let head_age = if kouki {
            self.rng.gen_range(75..=95)
        } else {
            self.rng.gen_range(20..=74)
        };
        let mut people = vec![self.person(family, head_sex, head_age)];
        if !kouki {
            if head_age >= 25 && self.rng.gen_bool(0.55) {
                let age = (head_age as i32 + self.rng.gen_range(-5..=5)).clamp(20, 74) as u32;
                let sex = if head_sex == "1" { "2" } else { "1" };
                people.push(self.person(family, sex, age));
            }
            if (25..=62).contains(&head_age) {
                for _ in 0..self.rng.gen_range(0..=3) {
                    let age = self.rng.gen_range(0..=(head_age - 22).min(22));
                    let sex = if self.rng.gen_bool(0.5) { "1" } else { "2" };
                    people.push(self.person(family, sex, age));
                }
            }
        }
        people.truncate(max_persons.max(1) as usize);

        let acquired = if kouki {
            let seventy_fifth = years_after(people[0].birth, 75);
            if seventy_fifth >= date_min() {
                seventy_fifth
            } else {
                self.between(date_min(), date_max() - Duration::days(60))
            }
        } else {
            self.between(date_min(), date_max() - Duration::days(60))
        };
        // Every person is covered before any end, so every person appears in the file.
        let latest_start = people
            .iter()
            .map(|p| p.birth.max(acquired))
            .max()
            .unwrap_or(acquired);
        let fate = if latest_start + Duration::days(2) >= date_max() {
            Fate::Stays
        } else {
            let roll = self.rng.gen_range(0..1000);
            let end = self.between(latest_start + Duration::days(1), date_max());
            match roll {
                0..=29 if !kouki => Fate::ChangesInsurer(end),
                30..=79 => {
                    let reason = match (kouki, self.rng.gen_range(0..10)) {
                        (true, 0..=7) => "01",
                        (false, 0..=5) => "03",
                        (false, 6) => "02",
                        _ => "99",
                    };
                    Fate::Loses(end, reason)
                }
                _ => Fate::Stays,
            }
        };
        let household_end = match fate {
            Fate::Stays => None,
            Fate::Loses(d, _) | Fate::ChangesInsurer(d) => Some(d),
        };
        if !matches!(fate, Fate::ChangesInsurer(_)) {
            for p in people.iter_mut().skip(1) {
                let start = p.birth.max(acquired);
                let last = household_end.map_or(date_max(), |d| d - Duration::days(1));
                if start < last && self.rng.gen_bool(0.01) {
                    let d =
                        start + Duration::days(self.rng.gen_range(1..=(last - start).num_days()));
                    p.own_loss = Some((d, if self.rng.gen_bool(0.1) { "01" } else { "03" }));
                }
            }
        }

        let home = self.home(insurer);
        let key = self.key(insurer, head_age);
        match fate {
            Fate::Stays => self.coverage(&people, &key, &home, acquired, None, rows),
            Fate::Loses(d, reason) => {
                self.coverage(&people, &key, &home, acquired, Some((d, reason)), rows)
            }
            Fate::ChangesInsurer(d) => {
                self.coverage(&people, &key, &home, acquired, Some((d, "03")), rows);
                let new_insurer = self.pick_insurer(false, Some(insurer));
                let new_home = if self.insurers[new_insurer].prefecture
                    == self.insurers[insurer].prefecture
                    && self.insurers[new_insurer].city.is_none()
                {
                    home
                } else {
                    self.home(new_insurer)
                };
                let new_key = self.key(new_insurer, head_age);
                self.coverage(&people, &new_key, &new_home, d, None, rows);
            }
        }
        people.len() as u64
    }
}
