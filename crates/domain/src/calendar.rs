//! Dates the law fixes by age.

use chrono::{Datelike, NaiveDate};

/// The April 1st a child starts school: the one after turning six, where one born on April 1st
/// turns six (legally, the day before the birthday) in time to start that same year. `None` only
/// past chrono's last year.
pub fn school_start(birth: NaiveDate) -> Option<NaiveDate> {
    let start_year = if (birth.month(), birth.day()) <= (4, 1) {
        birth.year() + 6
    } else {
        birth.year() + 7
    };
    NaiveDate::from_ymd_opt(start_year, 4, 1)
}

/// 未就学者: before [`school_start`].
pub fn is_preschool(birth: NaiveDate, date_of_care: NaiveDate) -> bool {
    school_start(birth).is_some_and(|start| date_of_care < start)
}

#[cfg(test)]
mod tests {
    use super::is_preschool;
    use chrono::NaiveDate;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn school_starts_the_april_after_turning_six() {
        assert!(is_preschool(d("2020-04-02"), d("2027-03-31")));
        assert!(!is_preschool(d("2020-04-02"), d("2027-04-01")));
        assert!(is_preschool(d("2020-04-01"), d("2026-03-31")));
        assert!(!is_preschool(d("2020-04-01"), d("2026-04-01")));
        assert!(!is_preschool(d("1980-01-01"), d("2026-11-24")));
    }
}
