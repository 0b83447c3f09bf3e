//! Ledger timestamps (Unix milliseconds) rendered as FHIR `instant`/`dateTime` strings,
//! without a date crate: the only calendar maths needed is days -> civil date.

/// 9999-12-31T23:59:59.999Z, the last moment a FHIR four-digit year can express; later
/// values are clamped so that a corrupt timestamp cannot make the whole bundle invalid.
const MAX_MS: u64 = 253_402_300_799_999;

/// `ms` since the Unix epoch as `YYYY-MM-DDThh:mm:ss.sssZ`. Valid both as FHIR `instant`
/// (which needs seconds and a zone) and `dateTime`, so one format serves every field.
pub fn instant(ms: u64) -> String {
    let ms = ms.min(MAX_MS);
    let days = ms / 86_400_000;
    let rem = ms % 86_400_000;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Howard Hinnant's `civil_from_days`, restricted to days >= 0 (the epoch onwards), so it
/// needs no signed arithmetic. Eras are 400-year (146097-day) cycles starting on 0000-03-01;
/// counting from March puts the leap day at the end of the year.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = z / 146_097;
    let doe = z % 146_097; // day of era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of year from March 1, [0, 365]
    let mp = (5 * doy + 2) / 153; // month from March, [0, 11]
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(instant(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(instant(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(instant(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(instant(1_709_164_800_000), "2024-02-29T00:00:00.000Z");
        assert_eq!(instant(1_735_689_599_123), "2024-12-31T23:59:59.123Z");
        assert_eq!(instant(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(instant(u64::MAX), "9999-12-31T23:59:59.999Z");
    }

    /// Walks every day from 1970 to 2401 and checks the calendar advances one day at a
    /// time with the Gregorian leap rules, which catches any off-by-one in the eras.
    #[test]
    fn every_day_follows_the_previous() {
        let leap = |y: u64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let month_len = |y: u64, m: u64| match m {
            2 if leap(y) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut prev = civil_from_days(0);
        assert_eq!(prev, (1970, 1, 1));
        for day in 1..158_000 {
            let (y, m, d) = prev;
            let expected = if d < month_len(y, m) {
                (y, m, d + 1)
            } else if m < 12 {
                (y, m + 1, 1)
            } else {
                (y + 1, 1, 1)
            };
            let got = civil_from_days(day);
            assert_eq!(got, expected, "day {day}");
            prev = got;
        }
    }
}
