//! The time in Japan (UTC+9, no daylight saving) as the files write it.

use std::time::SystemTime;

use chrono::{DateTime, FixedOffset, Utc};

/// `yyyyMMddHHmmss` and milliseconds, Japan time, of `at`.
pub fn japan(at: SystemTime) -> (String, u32) {
    let japan = FixedOffset::east_opt(9 * 3600).expect("UTC+9 is a valid offset");
    let local = DateTime::<Utc>::from(at).with_timezone(&japan);
    (
        local.format("%Y%m%d%H%M%S").to_string(),
        local.timestamp_subsec_millis(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

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
