//! The rows of one coverage: acquires, then updates in date order, then losses.

use chrono::{Datelike, Duration, NaiveDate};
use rand::Rng;

use super::calendar::{age_on, date, date_max, next_july_31, school_start, seventy_start, ymd};
use super::household::{Generator, Home, Key, Person};
use super::lists::Scheme;
use super::row::Row;

impl Generator<'_> {
    /// Rows of one coverage of the household from `start`: acquires, then updates in date order,
    /// then losses, so each key's rows are in time order.
    pub(super) fn coverage(
        &mut self,
        people: &[Person],
        key: &Key,
        home: &Home,
        start: NaiveDate,
        end: Option<(NaiveDate, &'static str)>,
        rows: &mut Vec<Row>,
    ) {
        let ins = &self.insurers[key.insurer];
        let kouki = ins.scheme == Scheme::Kouki;
        let insurer_name = if self.used[key.insurer] {
            String::new()
        } else {
            ins.name.clone()
        };
        self.used[key.insurer] = true;
        let first = rows.len();
        let mut updates: Vec<(NaiveDate, Row)> = Vec::new();
        let mut losses = Vec::new();
        // A household move, for the whole household at once.
        let move_on = match end {
            Some((d, _)) if d - start > Duration::days(2) && self.rng.gen_bool(0.03) => {
                Some(self.between(start + Duration::days(1), d - Duration::days(1)))
            }
            None if date_max() - start > Duration::days(2) && self.rng.gen_bool(0.03) => {
                Some(self.between(start + Duration::days(1), date_max()))
            }
            _ => None,
        };
        let new_home = move_on.map(|_| self.home(key.insurer));

        for (i, p) in people.iter().enumerate() {
            let acquired = p.birth.max(start);
            let person_end = match (p.own_loss, end) {
                (Some(own), _) => Some(own),
                (None, e) => e,
            };
            let key_row = |change: &'static str| Row {
                change,
                insurer_number: ins.number.clone(),
                symbol: key.symbol.clone(),
                number: key.number.clone(),
                branch: if kouki {
                    String::new()
                } else {
                    format!("{:02}", i + 1)
                },
                ..Row::default()
            };
            let mut row = key_row("acquire");
            row.individual_number = p.my_number.clone();
            row.insurer_name = if i == 0 {
                insurer_name.clone()
            } else {
                String::new()
            };
            row.card_classification = key.card_classification;
            row.relationship = if i == 0 { "1" } else { "2" };
            row.insured_name = people[0].name.clone();
            row.name = p.name.clone();
            row.name_kana = p.kana.clone();
            row.sex = p.sex;
            row.birth_date = ymd(p.birth);
            row.postcode = home.postcode.clone();
            row.address = home.address.clone();
            row.acquired_on = ymd(acquired);
            row.copay_ratio = p.copay_on(acquired);
            let issued = (acquired + Duration::days(self.rng.gen_range(0..=10))).min(date_max());
            row.card_issued_on = ymd(issued);
            row.card_valid_from = ymd(acquired);
            if matches!(ins.scheme, Scheme::Kokuho | Scheme::Kouki) {
                row.card_valid_to = ymd(date(issued.year() + 1, 7, 31).min(date_max()));
            }
            if p.is_seventy_to_74(acquired) {
                row.elderly_copay_ratio = row.copay_ratio;
                row.elderly_valid_from = ymd(acquired);
                row.elderly_valid_to = ymd(next_july_31(acquired));
            }
            if p.has_limit_certificate {
                row.limit_classification = ["01", "02", "03"][self.rng.gen_range(0..3)];
                row.limit_category = if age_on(p.birth, acquired) >= 70 {
                    [
                        "B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10",
                    ][self.rng.gen_range(0..10)]
                } else {
                    [
                        "A01", "A02", "A03", "A04", "A05", "A05", "A04", "A03", "A06",
                    ][self.rng.gen_range(0..9)]
                };
                row.limit_valid_from = ymd(acquired);
                row.limit_valid_to = ymd(next_july_31(acquired));
            }
            // About three in a thousand hold a 特定疾病療養受療証, most for dialysis; the cap is
            // 10,000 yen a month (20,000 for higher-income dialysis patients under 70).
            if self.rng.gen_ratio(3, 1000) {
                let (category, cap) = [
                    ("1", "10000"),
                    ("1", "20000"),
                    ("2", "10000"),
                    ("3", "10000"),
                ][self.rng.gen_range(0..4)];
                row.specific_disease = category;
                row.specific_disease_self_pay = cap;
                row.specific_disease_valid_from = ymd(acquired);
            }
            rows.push(row);

            // Updates fall strictly after the acquire and strictly before any loss.
            let in_range =
                |d: NaiveDate| d > acquired && person_end.map_or(d <= date_max(), |(e, _)| d < e);
            if !kouki {
                // Only some insurers report the school-age change as its own row; the rest
                // leave it to the next card renewal, which keeps updates near 5% of persons.
                let school = school_start(p.birth);
                if in_range(school) && self.rng.gen_bool(0.25) {
                    let mut row = key_row("update");
                    row.effective_on = ymd(school);
                    row.copay_ratio = p.copay_on(school);
                    updates.push((school, row));
                }
                let seventy = seventy_start(p.birth);
                if in_range(seventy) {
                    let mut row = key_row("update");
                    row.effective_on = ymd(seventy);
                    row.copay_ratio = p.copay_on(seventy);
                    row.elderly_copay_ratio = row.copay_ratio;
                    row.elderly_valid_from = ymd(seventy);
                    row.elderly_valid_to = ymd(next_july_31(seventy));
                    updates.push((seventy, row));
                }
            }
            if let (Some(d), Some(new)) = (move_on, &new_home) {
                if in_range(d) {
                    let mut row = key_row("update");
                    row.effective_on = ymd(d);
                    row.postcode = new.postcode.clone();
                    row.address = new.address.clone();
                    updates.push((d, row));
                }
            }
            if let Some((d, reason)) = person_end {
                let mut row = key_row("lose");
                row.lost_on = ymd(d);
                row.loss_reason = reason;
                losses.push(row);
            }
        }
        debug_assert!(rows.len() > first, "a coverage has at least one acquire");
        updates.sort_by_key(|(d, _)| *d);
        rows.extend(updates.into_iter().map(|(_, r)| r));
        rows.extend(losses);
    }
}
