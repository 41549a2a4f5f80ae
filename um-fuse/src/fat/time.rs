//! FAT time stamps and the clock that stamps new and written entries.
//!
//! FAT stores broken-down local times (a date from 1980 to 2107 and a time
//! with 2-second resolution, plus 10 ms in the creation time). This module
//! reads and writes them as UTC, as Linux's vfat does with `tz=UTC`, so a
//! time survives a round trip unchanged whatever the host's zone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fatfs::{Date, DateTime, Time, TimeProvider};

/// Days from 1970-01-01 to the given proleptic Gregorian date. Any input
/// gives a result (no panic), so it is safe on dates read from an image.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let month = i64::from(month.clamp(1, 12));
    let day = i64::from(day.clamp(1, 31));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number counted from 1970-01-01: (year, month, day).
fn civil_from_days(days: i64) -> (i64, u16, u16) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u16;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u16;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A point in time from seconds (possibly negative) since the epoch.
pub(crate) fn system_time(secs: i64, nanos: u32) -> SystemTime {
    let nanos = Duration::from_nanos(u64::from(nanos.min(999_999_999)));
    if secs >= 0 {
        UNIX_EPOCH + Duration::from_secs(secs.unsigned_abs()) + nanos
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()) + nanos
    }
}

/// A FAT date and time as a point in time.
pub(crate) fn from_fat(dt: DateTime) -> SystemTime {
    let days = days_from_civil(
        i64::from(dt.date.year),
        u32::from(dt.date.month),
        u32::from(dt.date.day),
    );
    let secs = days * 86_400
        + i64::from(dt.time.hour.min(23)) * 3600
        + i64::from(dt.time.min.min(59)) * 60
        + i64::from(dt.time.sec.min(59));
    system_time(secs, u32::from(dt.time.millis.min(999)) * 1_000_000)
}

/// A FAT date (no time of day) as a point in time: its midnight.
pub(crate) fn from_fat_date(date: Date) -> SystemTime {
    from_fat(DateTime {
        date,
        time: Time {
            hour: 0,
            min: 0,
            sec: 0,
            millis: 0,
        },
    })
}

/// A point in time as a FAT date and time, clamped to FAT's range
/// (1980-01-01 to 2107-12-31) and rounded down to its resolution.
pub(crate) fn to_fat(t: SystemTime) -> DateTime {
    let (secs, millis) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs().min(i64::MAX as u64) as i64, d.subsec_millis()),
        Err(_) => (0, 0),
    };
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400);
    let (date, time) = if year < 1980 {
        ((1980, 1, 1), (0, 0, 0, 0))
    } else if year > 2107 {
        ((2107, 12, 31), (23, 59, 58, 0))
    } else {
        (
            (year as u16, month, day),
            (
                (tod / 3600) as u16,
                (tod / 60 % 60) as u16,
                (tod % 60) as u16,
                millis as u16,
            ),
        )
    };
    DateTime {
        date: Date {
            year: date.0,
            month: date.1,
            day: date.2,
        },
        time: Time {
            hour: time.0,
            min: time.1,
            sec: time.2,
            millis: time.3,
        },
    }
}

/// The clock `fatfs` asks when it stamps a created or written entry: the
/// system time, in UTC.
#[derive(Debug)]
pub(crate) struct UtcClock;

/// The one clock every mounted FAT volume uses.
pub(crate) static UTC_CLOCK: UtcClock = UtcClock;

impl TimeProvider for UtcClock {
    fn get_current_date(&self) -> Date {
        to_fat(SystemTime::now()).date
    }

    fn get_current_date_time(&self) -> DateTime {
        to_fat(SystemTime::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for days in [-1, 0, 59, 3652, 11_016, 11_017, 50_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, u32::from(m), u32::from(d)), days);
        }
    }

    #[test]
    fn fat_times_round_trip_at_two_second_resolution() {
        let t = system_time(1_700_000_000, 0);
        assert_eq!(from_fat(to_fat(t)), t);
        let before = to_fat(system_time(0, 0));
        assert_eq!(before.date.year, 1980);
        let garbage = DateTime {
            date: Date {
                year: 2107,
                month: 15,
                day: 0,
            },
            time: Time {
                hour: 31,
                min: 63,
                sec: 62,
                millis: 990,
            },
        };
        let _ = from_fat(garbage);
    }
}
