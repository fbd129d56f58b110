//! Date rules of the generator: the file's date range and the age thresholds that change a
//! person's copay.

use chrono::{Datelike, Months, NaiveDate};

pub(super) fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("the generator only builds real calendar dates")
}

/// The first and last day any birth, change,, card or certificate date may fall on.
pub(super) fn date_min() -> NaiveDate {
    date(2015, 1, 1)
}
/// See [`date_min`].
pub(super) fn date_max() -> NaiveDate {
    date(2026, 10, 31)
}

pub(super) fn ymd(d: NaiveDate) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

pub(super) fn years_after(d: NaiveDate, years: u32) -> NaiveDate {
    d.checked_add_months(Months::new(12 * years))
        .expect("dates stay far from chrono's limits")
}

pub(super) fn years_before(d: NaiveDate, years: u32) -> NaiveDate {
    d.checked_sub_months(Months::new(12 * years))
        .expect("dates stay far from chrono's limits")
}

pub(super) fn age_on(birth: NaiveDate, d: NaiveDate) -> i32 {
    let before_birthday = (d.month(), d.day()) < (birth.month(), birth.day());
    d.year() - birth.year() - i32::from(before_birthday)
}

/// 未就学 ends on the March 31 before this: the school copay applies from April 1. The rule the
/// eligibility answer's `preschool` uses, so the generated copay changes agree with it.
pub(super) fn school_start(birth: NaiveDate) -> NaiveDate {
    onshi_domain::calendar::school_start(birth).expect("birth dates stay far from chrono's limits")
}

/// The 70-74 copay applies from the first of the month after the 70th birthday (from the
/// birthday itself when it is the 1st).
pub(super) fn seventy_start(birth: NaiveDate) -> NaiveDate {
    let seventieth = years_after(birth, 70);
    if seventieth.day() == 1 {
        seventieth
    } else {
        let first = date(seventieth.year(), seventieth.month(), 1);
        first
            .checked_add_months(Months::new(1))
            .expect("dates stay far from chrono's limits")
    }
}

/// Certificates run to July 31; valid-to dates are kept within the file's date range.
pub(super) fn next_july_31(d: NaiveDate) -> NaiveDate {
    let this_year = date(d.year(), 7, 31);
    let end = if this_year >= d {
        this_year
    } else {
        date(d.year() + 1, 7, 31)
    };
    end.min(date_max())
}
