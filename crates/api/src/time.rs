//! Wall-clock times as clients print them: UTC, from milliseconds since the
//! Unix epoch (what events carry in `time_ms`). No time-zone database: the
//! API speaks UTC only.

/// A UTC date and time of day, to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UtcTime {
    pub year: i64,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub millis: u16,
}

impl UtcTime {
    /// The civil date of `ms` milliseconds after 1970-01-01T00:00:00Z
    /// (Howard Hinnant's days-to-civil algorithm, proleptic Gregorian).
    pub fn from_unix_ms(ms: u64) -> Self {
        let (secs, millis) = (ms / 1000, ms % 1000);
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let z = days as i64 + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        Self {
            year: yoe + era * 400 + i64::from(month <= 2),
            month: month as u8,
            day: day as u8,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
            millis: millis as u16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::UtcTime;

    #[test]
    fn known_instants() {
        let t = UtcTime::from_unix_ms(0);
        assert_eq!((t.year, t.month, t.day, t.hour), (1970, 1, 1, 0));
        // 2000-02-29T23:59:59.999Z (a leap day of a century leap year).
        let t = UtcTime::from_unix_ms(951_868_799_999);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis),
            (2000, 2, 29, 23, 59, 59, 999)
        );
        // 2026-12-03T13:05:07.123Z
        let t = UtcTime::from_unix_ms(1_796_303_107_123);
        assert_eq!(
            (t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis),
            (2026, 12, 3, 13, 5, 7, 123)
        );
    }
}
