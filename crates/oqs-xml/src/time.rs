//! The time in Japan (UTC+9, no daylight saving) as the files write it, without a calendar
//! crate: the civil date from days since the epoch (H. Hinnant's `civil_from_days`).

use std::time::{SystemTime, UNIX_EPOCH};

/// `yyyyMMddHHmmss` and milliseconds, Japan time, of `at`.
pub fn japan(at: SystemTime) -> (String, u32) {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs() + 9 * 3600;
    let (days, of_day) = (seconds / 86_400, seconds % 86_400);
    let (y, m, d) = civil_from_days(days);
    let stamp = format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    );
    (stamp, since.subsec_millis())
}

fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn known_instants_in_japan() {
        let at = |s: u64| japan(UNIX_EPOCH + Duration::from_millis(s)).0;
        assert_eq!(at(0), "19700101090000");
        // 2026-12-01T15:00:00Z is midnight in Japan.
        assert_eq!(at(1_796_137_200_000), "20261202000000");
        // 2024-02-29T14:59:59Z, a leap day.
        assert_eq!(at(1_709_218_799_000), "20240229235959");
        assert_eq!(japan(UNIX_EPOCH + Duration::from_millis(1_250)).1, 250);
    }
}
