//! The time criteria PPL defines (Pomerium's "Date Matcher", "Day of Week Matcher" and
//! "Time of Day Matcher"), judged against the proxy's clock (`Context::now_unix_seconds`):
//!
//! ```yaml
//! - date: {after: "2025-01-01T00:00:00Z", before: "2025-02-01T00:00:00+01:00"}
//! - day_of_week: mon-fri                      # UTC
//! - day_of_week: {days: "sat,sun", timezone: "-05:00"}
//! - time_of_day: {timezone: "+02:00", after: "08:30", before: "18:00"}
//! ```
//!
//! Decisions:
//! - Windows are half-open: a criterion holds from the instant `after` names (inclusive) up to
//!   the instant `before` names (exclusive), so `after: 09:00` holds at 09:00:00 and
//!   `before: 17:00` no longer holds at 17:00:00; adjacent windows neither overlap nor leave a
//!   gap. The clock has whole seconds; a configured fraction of a second rounds up.
//! - Time zones are `UTC` or a fixed offset (`+02:00`, `-05:30`). IANA names (`Europe/Berlin`)
//!   are refused at configure time: the time zone database would cost the filter about
//!   200 KiB (jiff's bundled tzdb alone is 207,040 bytes; chrono-tz built larger still), a third
//!   of its whole size budget. A fixed offset does not follow daylight saving time.
//! - `date` takes RFC 3339 timestamps with their offset (`Z` or `+01:00`). Pomerium's own
//!   example, `2020-01-02T16:20:00`, has none: which zone it means is a guess, so it is
//!   refused with a message that says what to add.
//! - `time_of_day` needs `timezone`, as in Pomerium. Its times are `H:MM`, `H:MM:SS`
//!   (optionally with a fraction) or the 12-hour forms Pomerium accepts (`3PM`, `3 PM`,
//!   `3:04PM`, `3:04 PM`). A window across midnight (`after: 22:00, before: 06:00`) is refused:
//!   PPL's operators all have to hold, so it could never match; write two criteria under `or`.
//! - `day_of_week` is `*`, days and ranges separated by commas (`mon-fri`, `sat,sun`,
//!   `mon,wed-fri`), English names or three-letter abbreviations in any letter case; a range
//!   may wrap (`fri-mon`). A bare string is judged in UTC; the object form adds `timezone`.
//! - Civil dates use the proleptic Gregorian calendar (years 0000 to 9999); leap seconds
//!   (`:60`) are refused, as Go's time parser refuses them.

use super::error::JsonPath;
use super::PolicyError;
use serde_json::{Map, Value};

const SECONDS_PER_DAY: i64 = 86_400;

/// A time zone: a fixed offset from UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Zone {
    offset_seconds: i32,
}

impl Zone {
    pub(crate) const UTC: Zone = Zone { offset_seconds: 0 };

    /// `UTC`, or `+HH:MM` / `-HH:MM` (hours 00-23, minutes 00-59, as in RFC 3339).
    pub(crate) fn parse(text: &str) -> Result<Zone, String> {
        if text == "UTC" {
            return Ok(Zone::UTC);
        }
        let mut cursor = Cursor::new(text);
        if let Some(offset_seconds) = cursor.offset() {
            if cursor.at_end() {
                return Ok(Zone { offset_seconds });
            }
        }
        let looks_like_a_name = text.contains('/')
            || (text.len() >= 3
                && text
                    .bytes()
                    .all(|byte| byte.is_ascii_alphabetic() || byte == b'_'));
        if looks_like_a_name {
            Err(format!(
                "time zone {text:?}: IANA time zone names are not supported (the time zone \
                 database would add about 200 KiB to the filter); give \"UTC\" or a fixed offset \
                 such as \"+02:00\" or \"-05:30\" (a fixed offset does not follow daylight \
                 saving time)"
            ))
        } else {
            Err(format!(
                "time zone {text:?}: give \"UTC\" or a fixed offset such as \"+02:00\" or \"-05:30\""
            ))
        }
    }

    /// Seconds since 1970-01-01T00:00:00 in this zone's local time. Saturates at the far end
    /// of `i64`, some 292 billion years away, rather than overflow.
    fn local_seconds(self, now_unix_seconds: u64) -> i64 {
        i64::try_from(now_unix_seconds)
            .unwrap_or(i64::MAX)
            .saturating_add(i64::from(self.offset_seconds))
    }

    /// Seconds since local midnight: 0 to 86399.
    fn second_of_day(self, now_unix_seconds: u64) -> i64 {
        self.local_seconds(now_unix_seconds)
            .rem_euclid(SECONDS_PER_DAY)
    }

    /// Monday = 0 ... Sunday = 6. 1970-01-01 was a Thursday.
    fn weekday(self, now_unix_seconds: u64) -> u32 {
        let days = self
            .local_seconds(now_unix_seconds)
            .div_euclid(SECONDS_PER_DAY);
        // `rem_euclid(7)` is in 0..7, so the conversion cannot fail.
        u32::try_from(days.rem_euclid(7).saturating_add(3) % 7).unwrap_or(0)
    }
}

/// `{"after": ..., "before": ...}` over RFC 3339 timestamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DateMatcher {
    /// Unix seconds, inclusive.
    after: Option<i64>,
    /// Unix seconds, exclusive.
    before: Option<i64>,
}

impl DateMatcher {
    pub(crate) fn parse(value: &Value, path: &JsonPath<'_>) -> Result<Self, PolicyError> {
        let object = value.as_object().ok_or_else(|| {
            path.wrong_type(
                "an object with \"after\" and/or \"before\" (RFC 3339 timestamps)",
                value,
            )
        })?;
        only_keys(object, path, &["after", "before"], "\"after\", \"before\"")?;
        let instant = |key: &str| -> Result<Option<i64>, PolicyError> {
            let Some(value) = object.get(key) else {
                return Ok(None);
            };
            let key_path = path.key(key);
            let text = value
                .as_str()
                .ok_or_else(|| key_path.wrong_type("a string", value))?;
            parse_rfc3339(text)
                .map(Some)
                .map_err(|problem| key_path.error(problem))
        };
        let matcher = DateMatcher {
            after: instant("after")?,
            before: instant("before")?,
        };
        check_window(path, matcher.after, matcher.before, "date", "instant")?;
        Ok(matcher)
    }

    pub(crate) fn matches(&self, now_unix_seconds: u64) -> bool {
        self.after
            .is_none_or(|after| at_or_after(now_unix_seconds, after))
            && self
                .before
                .is_none_or(|before| !at_or_after(now_unix_seconds, before))
    }
}

/// `now >= instant`, for any instant (a configured one may be before 1970).
fn at_or_after(now_unix_seconds: u64, instant: i64) -> bool {
    u64::try_from(instant).map_or(true, |instant| now_unix_seconds >= instant)
}

/// A set of weekdays in a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DayOfWeekMatcher {
    /// Bit 0 Monday ... bit 6 Sunday.
    days: u8,
    zone: Zone,
}

const DAY_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

impl DayOfWeekMatcher {
    pub(crate) fn parse(value: &Value, path: &JsonPath<'_>) -> Result<Self, PolicyError> {
        match value {
            Value::String(days) => Ok(DayOfWeekMatcher {
                days: parse_days(days).map_err(|problem| path.error(problem))?,
                zone: Zone::UTC,
            }),
            Value::Object(object) => {
                only_keys(object, path, &["days", "timezone"], "\"days\", \"timezone\"")?;
                let days_path = path.key("days");
                let days = object
                    .get("days")
                    .ok_or_else(|| path.error("missing \"days\" (such as \"mon-fri\")"))?;
                let days = days
                    .as_str()
                    .ok_or_else(|| days_path.wrong_type("a string", days))?;
                let days = parse_days(days).map_err(|problem| days_path.error(problem))?;
                let zone = match object.get("timezone") {
                    Some(zone) => parse_zone(zone, &path.key("timezone"))?,
                    None => Zone::UTC,
                };
                Ok(DayOfWeekMatcher { days, zone })
            }
            other => Err(path.wrong_type(
                "a string of days (such as \"mon-fri\") or an object with \"days\" and \"timezone\"",
                other,
            )),
        }
    }

    pub(crate) fn matches(&self, now_unix_seconds: u64) -> bool {
        self.days & (1 << self.zone.weekday(now_unix_seconds)) != 0
    }
}

fn parse_days(text: &str) -> Result<u8, String> {
    let usage = "give \"*\", days or ranges separated by commas such as \"mon-fri\" or \
                 \"sat,sun\", with English day names or their first three letters";
    if text.trim() == "*" {
        return Ok(0x7f);
    }
    let mut days = 0u8;
    for item in text.split(',') {
        let item = item.trim_matches(' ');
        let (first, last) = match item.split_once('-') {
            Some((first, last)) => (
                weekday_number(first.trim_matches(' ')),
                weekday_number(last.trim_matches(' ')),
            ),
            None => (weekday_number(item), weekday_number(item)),
        };
        let (Some(first), Some(last)) = (first, last) else {
            return Err(format!(
                "{item:?} in {text:?} is not a day or a range of days: {usage}"
            ));
        };
        // A range may wrap around the week: fri-mon is Friday to Monday.
        let mut day = first;
        loop {
            days |= 1 << day;
            if day == last {
                break;
            }
            day = (day + 1) % 7;
        }
    }
    Ok(days)
}

fn weekday_number(name: &str) -> Option<u32> {
    let name = name.to_ascii_lowercase();
    (0u32..)
        .zip(DAY_NAMES)
        .find(|(_, full)| name == *full || (name.len() == 3 && full.starts_with(&name)))
        .map(|(number, _)| number)
}

/// `{"timezone": ..., "after": ..., "before": ...}` over times of day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimeOfDayMatcher {
    zone: Zone,
    /// Seconds since midnight, inclusive.
    after: Option<i64>,
    /// Seconds since midnight, exclusive.
    before: Option<i64>,
}

impl TimeOfDayMatcher {
    pub(crate) fn parse(value: &Value, path: &JsonPath<'_>) -> Result<Self, PolicyError> {
        let object = value.as_object().ok_or_else(|| {
            path.wrong_type(
                "an object with \"timezone\" and \"after\" and/or \"before\"",
                value,
            )
        })?;
        only_keys(
            object,
            path,
            &["timezone", "after", "before"],
            "\"timezone\", \"after\", \"before\"",
        )?;
        let zone = object.get("timezone").ok_or_else(|| {
            path.error("missing \"timezone\" (\"UTC\" or a fixed offset such as \"+02:00\")")
        })?;
        let zone = parse_zone(zone, &path.key("timezone"))?;
        let time = |key: &str| -> Result<Option<i64>, PolicyError> {
            let Some(value) = object.get(key) else {
                return Ok(None);
            };
            let key_path = path.key(key);
            let text = value
                .as_str()
                .ok_or_else(|| key_path.wrong_type("a string", value))?;
            parse_time_of_day(text)
                .map(Some)
                .map_err(|problem| key_path.error(problem))
        };
        let matcher = TimeOfDayMatcher {
            zone,
            after: time("after")?,
            before: time("before")?,
        };
        check_window(path, matcher.after, matcher.before, "time_of_day", "time")?;
        Ok(matcher)
    }

    pub(crate) fn matches(&self, now_unix_seconds: u64) -> bool {
        let second = self.zone.second_of_day(now_unix_seconds);
        self.after.is_none_or(|after| second >= after)
            && self.before.is_none_or(|before| second < before)
    }
}

fn parse_zone(value: &Value, path: &JsonPath<'_>) -> Result<Zone, PolicyError> {
    let text = value
        .as_str()
        .ok_or_else(|| path.wrong_type("a string", value))?;
    Zone::parse(text).map_err(|problem| path.error(problem))
}

/// Refuses any key but `known`; `expected` lists them for the message.
fn only_keys(
    object: &Map<String, Value>,
    path: &JsonPath<'_>,
    known: &[&str],
    expected: &str,
) -> Result<(), PolicyError> {
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        Some(unknown) => Err(path.error(format!("unknown key {unknown:?} (expected {expected})"))),
        None => Ok(()),
    }
}

/// At least one bound, and a window that is not empty.
fn check_window(
    path: &JsonPath<'_>,
    after: Option<i64>,
    before: Option<i64>,
    criterion: &str,
    what: &str,
) -> Result<(), PolicyError> {
    match (after, before) {
        (None, None) => Err(path.error(format!("{criterion} needs \"after\", \"before\" or both"))),
        (Some(after), Some(before)) if after >= before => {
            let mut problem = format!(
                "\"after\" must be an earlier {what} than \"before\": no {what} is both at or \
                 after the one and before the other, so the criterion could never hold"
            );
            if criterion == "time_of_day" {
                problem.push_str(
                    "; for a window across midnight write two criteria under \"or\", one with \
                     \"after\" and one with \"before\"",
                );
            }
            Err(path.error(problem))
        }
        _ => Ok(()),
    }
}

/// An RFC 3339 timestamp (`2025-01-31T18:00:00Z`, `2025-01-31T18:00:00.5+01:00`) as Unix
/// seconds, a fraction rounded up to the next whole second.
pub(crate) fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let malformed = || {
        format!(
            "{text:?} is not an RFC 3339 timestamp such as \"2025-01-31T18:00:00Z\" or \
             \"2025-01-31T18:00:00+01:00\""
        )
    };
    let mut cursor = Cursor::new(text);
    let year = cursor.digits(4).ok_or_else(malformed)?;
    cursor.expect(b'-').ok_or_else(malformed)?;
    let month = cursor.digits(2).ok_or_else(malformed)?;
    cursor.expect(b'-').ok_or_else(malformed)?;
    let day = cursor.digits(2).ok_or_else(malformed)?;
    if !(cursor.eat(b'T') || cursor.eat(b't') || cursor.eat(b' ')) {
        return Err(malformed());
    }
    let (second_of_day, rounds_up) = cursor.clock().ok_or_else(malformed)?;
    let offset = if cursor.eat(b'Z') || cursor.eat(b'z') {
        0
    } else if cursor.at_end() {
        return Err(format!(
            "{text:?} has no UTC offset: add \"Z\" for UTC or an offset such as \"+01:00\""
        ));
    } else {
        cursor.offset().ok_or_else(malformed)?
    };
    if !cursor.at_end() {
        return Err(malformed());
    }
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(format!("{text:?} is not a date in the calendar"));
    }
    let second_of_day = second_of_day.map_err(|problem| format!("{text:?}: {problem}"))?;
    Ok(
        days_from_civil(i64::from(year), month, day) * SECONDS_PER_DAY + second_of_day
            - i64::from(offset)
            + i64::from(rounds_up),
    )
}

/// A time of day as seconds since midnight (0 to 86400: `23:59:59.5` rounds up to the end of
/// the day).
pub(crate) fn parse_time_of_day(text: &str) -> Result<i64, String> {
    let malformed = || {
        format!(
            "{text:?} is not a time of day: write \"HH:MM\" or \"HH:MM:SS\" (24-hour), or \
             \"3PM\", \"3 PM\", \"3:04PM\", \"3:04 PM\""
        )
    };
    let mut cursor = Cursor::new(text);
    let hour = cursor.one_or_two_digits().ok_or_else(malformed)?;
    let minute = if cursor.eat(b':') {
        Some(cursor.digits(2).ok_or_else(malformed)?)
    } else {
        None
    };
    let meridiem = {
        let mut ahead = cursor;
        ahead.eat(b' ');
        ahead.meridiem().inspect(|_| cursor = ahead)
    };
    let seconds = match meridiem {
        Some(afternoon) => {
            if !(1..=12).contains(&hour) || minute.is_some_and(|minute| minute > 59) {
                return Err(malformed());
            }
            let hour = hour % 12 + if afternoon { 12 } else { 0 };
            (i64::from(hour) * 60 + i64::from(minute.unwrap_or(0))) * 60
        }
        None => {
            // 24-hour: minutes are required, seconds and a fraction optional.
            let minute = minute.ok_or_else(malformed)?;
            let (second, rounds_up) = if cursor.eat(b':') {
                let second = cursor.digits(2).ok_or_else(malformed)?;
                (second, cursor.fraction().ok_or_else(malformed)?)
            } else {
                (0, false)
            };
            if hour > 23 || minute > 59 || second > 59 {
                return Err(format!(
                    "{text:?} is not a time of day: hours go to 23, minutes and seconds to 59"
                ));
            }
            (i64::from(hour) * 60 + i64::from(minute)) * 60
                + i64::from(second)
                + i64::from(rounds_up)
        }
    };
    if !cursor.at_end() {
        return Err(malformed());
    }
    Ok(seconds)
}

fn is_leap_year(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
/// days-from-civil). For years 0 to 9999 every intermediate value is far inside `i64`.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    // Months counted from March, so the leap day is the last day of the year.
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// A reader over ASCII text for the small grammars above.
#[derive(Clone, Copy)]
struct Cursor<'t> {
    bytes: &'t [u8],
    at: usize,
}

impl<'t> Cursor<'t> {
    fn new(text: &'t str) -> Self {
        Cursor {
            bytes: text.as_bytes(),
            at: 0,
        }
    }

    fn at_end(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn eat(&mut self, wanted: u8) -> bool {
        let found = self.peek() == Some(wanted);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect(&mut self, wanted: u8) -> Option<()> {
        self.eat(wanted).then_some(())
    }

    fn digit(&mut self) -> Option<u32> {
        let digit = char::from(self.peek()?).to_digit(10)?;
        self.at += 1;
        Some(digit)
    }

    /// Exactly `count` decimal digits (at most 4, so the value fits).
    fn digits(&mut self, count: usize) -> Option<u32> {
        (0..count).try_fold(0, |value, _| Some(value * 10 + self.digit()?))
    }

    fn one_or_two_digits(&mut self) -> Option<u32> {
        let first = self.digit()?;
        Some(match self.digit() {
            Some(second) => first * 10 + second,
            None => first,
        })
    }

    /// An optional `.` and one or more digits: whether the fraction is above zero.
    fn fraction(&mut self) -> Option<bool> {
        if !self.eat(b'.') {
            return Some(false);
        }
        let mut above_zero = self.digit()? != 0;
        while let Some(digit) = self.digit() {
            above_zero |= digit != 0;
        }
        Some(above_zero)
    }

    /// `HH:MM:SS[.fraction]`: the seconds since midnight (or why the values are out of range)
    /// and whether a fraction rounds them up.
    fn clock(&mut self) -> Option<(Result<i64, &'static str>, bool)> {
        let hour = self.digits(2)?;
        self.expect(b':')?;
        let minute = self.digits(2)?;
        self.expect(b':')?;
        let second = self.digits(2)?;
        let rounds_up = self.fraction()?;
        let seconds = if second == 60 {
            Err("leap seconds (:60) are not supported")
        } else if hour > 23 || minute > 59 || second > 59 {
            Err("hours go to 23, minutes and seconds to 59")
        } else {
            Ok((i64::from(hour) * 60 + i64::from(minute)) * 60 + i64::from(second))
        };
        Some((seconds, rounds_up))
    }

    /// `+HH:MM` or `-HH:MM`: the offset east of UTC in seconds.
    fn offset(&mut self) -> Option<i32> {
        let sign = match self.peek()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        self.at += 1;
        let hours = self.digits(2)?;
        self.expect(b':')?;
        let minutes = self.digits(2)?;
        if hours > 23 || minutes > 59 {
            return None;
        }
        i32::try_from(hours * 3600 + minutes * 60)
            .ok()
            .map(|seconds| sign * seconds)
    }

    /// `AM` or `PM` in any letter case: whether it is PM.
    fn meridiem(&mut self) -> Option<bool> {
        let pair = self.bytes.get(self.at..self.at + 2)?;
        let afternoon = if pair.eq_ignore_ascii_case(b"am") {
            false
        } else if pair.eq_ignore_ascii_case(b"pm") {
            true
        } else {
            return None;
        };
        self.at += 2;
        Some(afternoon)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use serde_json::json;

    /// 2024-03-04T00:00:00Z, a Monday.
    const MONDAY_2024_03_04: u64 = 1_709_510_400;
    const HOUR: u64 = 3600;
    const DAY: u64 = 86_400;

    fn date(value: Value) -> DateMatcher {
        DateMatcher::parse(&value, &JsonPath::root()).expect("valid date matcher")
    }

    fn days(value: Value) -> DayOfWeekMatcher {
        DayOfWeekMatcher::parse(&value, &JsonPath::root()).expect("valid day_of_week")
    }

    fn time_of_day(value: Value) -> TimeOfDayMatcher {
        TimeOfDayMatcher::parse(&value, &JsonPath::root()).expect("valid time_of_day")
    }

    fn date_error(value: Value) -> String {
        DateMatcher::parse(&value, &JsonPath::root())
            .expect_err("invalid date matcher")
            .to_string()
    }

    fn days_error(value: Value) -> String {
        DayOfWeekMatcher::parse(&value, &JsonPath::root())
            .expect_err("invalid day_of_week")
            .to_string()
    }

    fn time_error(value: Value) -> String {
        TimeOfDayMatcher::parse(&value, &JsonPath::root())
            .expect_err("invalid time_of_day")
            .to_string()
    }

    #[test]
    fn civil_days_match_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 3, 4) * SECONDS_PER_DAY, 1_709_510_400);
        assert_eq!(days_from_civil(0, 1, 1), -719_528);
        assert_eq!(days_from_civil(9999, 12, 31), 2_932_896);
        // Consecutive across a leap day and a century that is not a leap year.
        assert_eq!(
            days_from_civil(2024, 3, 1) - days_from_civil(2024, 2, 28),
            2
        );
        assert_eq!(
            days_from_civil(2100, 3, 1) - days_from_civil(2100, 2, 28),
            1
        );
        assert_eq!(
            days_from_civil(2000, 3, 1) - days_from_civil(2000, 2, 28),
            2
        );
    }

    #[test]
    fn leap_years() {
        assert!(is_leap_year(2024));
        assert!(is_leap_year(2000));
        assert!(!is_leap_year(1900));
        assert!(!is_leap_year(2100));
        assert!(!is_leap_year(2023));
        assert!(parse_rfc3339("2024-02-29T12:00:00Z").is_ok());
        assert!(parse_rfc3339("2000-02-29T12:00:00Z").is_ok());
        assert_eq!(
            parse_rfc3339("2023-02-29T12:00:00Z").expect_err("no such day"),
            "\"2023-02-29T12:00:00Z\" is not a date in the calendar"
        );
        assert!(parse_rfc3339("1900-02-29T00:00:00Z").is_err());
        assert!(parse_rfc3339("2100-02-29T00:00:00Z").is_err());
        assert!(parse_rfc3339("2024-04-31T00:00:00Z").is_err());
        assert!(parse_rfc3339("2024-12-31T00:00:00Z").is_ok());
    }

    #[test]
    fn rfc3339_instants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("2024-03-04T00:00:00Z"), Ok(1_709_510_400));
        assert_eq!(
            parse_rfc3339("2024-03-04T02:00:00+02:00"),
            Ok(1_709_510_400)
        );
        assert_eq!(
            parse_rfc3339("2024-03-03T18:30:00-05:30"),
            Ok(1_709_510_400)
        );
        assert_eq!(parse_rfc3339("2024-03-04t00:00:00z"), Ok(1_709_510_400));
        assert_eq!(parse_rfc3339("2024-03-04 00:00:00Z"), Ok(1_709_510_400));
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Ok(-1));
        assert_eq!(parse_rfc3339("0000-01-01T00:00:00Z"), Ok(-62_167_219_200));
        assert_eq!(
            parse_rfc3339("9999-12-31T23:59:59-23:59"),
            Ok(253_402_387_139)
        );
    }

    #[test]
    fn rfc3339_fractions_round_up() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.000Z"), Ok(0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.5Z"), Ok(1));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.000000001Z"), Ok(1));
        assert!(parse_rfc3339("1970-01-01T00:00:00.Z").is_err());
    }

    #[test]
    fn rfc3339_refusals() {
        assert_eq!(
            parse_rfc3339("2020-01-02T16:20:00").expect_err("no offset"),
            "\"2020-01-02T16:20:00\" has no UTC offset: add \"Z\" for UTC or an offset such as \
             \"+01:00\""
        );
        assert_eq!(
            parse_rfc3339("2024-03-04T23:59:60Z").expect_err("leap second"),
            "\"2024-03-04T23:59:60Z\": leap seconds (:60) are not supported"
        );
        assert_eq!(
            parse_rfc3339("2024-03-04T24:00:00Z").expect_err("hour 24"),
            "\"2024-03-04T24:00:00Z\": hours go to 23, minutes and seconds to 59"
        );
        let malformed = "is not an RFC 3339 timestamp such as \"2025-01-31T18:00:00Z\" or \
                         \"2025-01-31T18:00:00+01:00\"";
        for text in [
            "",
            "2024-03-04",
            "2024-03-04T00:00Z",
            "24-03-04T00:00:00Z",
            "2024-3-04T00:00:00Z",
            "2024-03-04T00:00:00+0200",
            "2024-03-04T00:00:00+02",
            "2024-03-04T00:00:00+24:00",
            "2024-03-04T00:00:00+02:60",
            "2024-03-04T00:00:00ZZ",
            "2024-03-04T00:00:00Z ",
            " 2024-03-04T00:00:00Z",
            "2024-03-04X00:00:00Z",
            "1709510400",
            "２０２４-03-04T00:00:00Z",
        ] {
            assert_eq!(
                parse_rfc3339(text),
                Err(format!("{text:?} {malformed}")),
                "{text:?}"
            );
        }
        assert!(parse_rfc3339("2024-13-01T00:00:00Z").is_err());
        assert!(parse_rfc3339("2024-00-01T00:00:00Z").is_err());
        assert!(parse_rfc3339("2024-01-00T00:00:00Z").is_err());
    }

    #[test]
    fn date_window_is_half_open() {
        let start = MONDAY_2024_03_04;
        let end = start + DAY;
        let window = date(json!({
            "after": "2024-03-04T00:00:00Z",
            "before": "2024-03-05T00:00:00Z",
        }));
        assert!(!window.matches(start - 1));
        assert!(window.matches(start), "at exactly after: holds");
        assert!(window.matches(end - 1));
        assert!(!window.matches(end), "at exactly before: no longer");
        assert!(!window.matches(0));
        assert!(!window.matches(u64::MAX));
    }

    #[test]
    fn date_with_one_bound() {
        let after = date(json!({"after": "2024-03-04T02:00:00+02:00"}));
        assert!(!after.matches(MONDAY_2024_03_04 - 1));
        assert!(after.matches(MONDAY_2024_03_04));
        assert!(after.matches(u64::MAX));
        let before = date(json!({"before": "2024-03-04T00:00:00Z"}));
        assert!(before.matches(0));
        assert!(before.matches(MONDAY_2024_03_04 - 1));
        assert!(!before.matches(MONDAY_2024_03_04));
        // An instant before 1970 is before every clock reading.
        let old = date(json!({"after": "1900-01-01T00:00:00Z"}));
        assert!(old.matches(0));
        let never = date(json!({"before": "1900-01-01T00:00:00Z"}));
        assert!(!never.matches(0));
    }

    #[test]
    fn date_fraction_rounds_toward_later() {
        // The real instant 00:00:00.5 lies inside the clock's second 0; rounding up means
        // the criterion turns on (after) or off (before) at the next whole second.
        let after = date(json!({"after": "2024-03-04T00:00:00.5Z"}));
        assert!(!after.matches(MONDAY_2024_03_04));
        assert!(after.matches(MONDAY_2024_03_04 + 1));
        let before = date(json!({"before": "2024-03-04T00:00:00.5Z"}));
        assert!(before.matches(MONDAY_2024_03_04));
        assert!(!before.matches(MONDAY_2024_03_04 + 1));
    }

    #[test]
    fn date_errors() {
        assert_eq!(
            date_error(json!("2024-03-04T00:00:00Z")),
            "policy: expected an object with \"after\" and/or \"before\" (RFC 3339 timestamps), \
             found a string"
        );
        assert_eq!(
            date_error(json!({})),
            "policy: date needs \"after\", \"before\" or both"
        );
        assert_eq!(
            date_error(json!({"after": "2024-03-04T00:00:00Z", "until": "x"})),
            "policy: unknown key \"until\" (expected \"after\", \"before\")"
        );
        assert_eq!(
            date_error(json!({"after": 1_709_510_400})),
            "policy.after: expected a string, found a number"
        );
        assert_eq!(
            date_error(json!({"before": "2020-01-02T16:20:00"})),
            "policy.before: \"2020-01-02T16:20:00\" has no UTC offset: add \"Z\" for UTC or an \
             offset such as \"+01:00\""
        );
        assert_eq!(
            date_error(json!({
                "after": "2024-03-05T00:00:00Z",
                "before": "2024-03-05T01:00:00+01:00",
            })),
            "policy: \"after\" must be an earlier instant than \"before\": no instant is both at \
             or after the one and before the other, so the criterion could never hold"
        );
    }

    #[test]
    fn zones() {
        assert_eq!(Zone::parse("UTC"), Ok(Zone::UTC));
        assert_eq!(Zone::parse("+00:00"), Ok(Zone::UTC));
        assert_eq!(Zone::parse("-00:00"), Ok(Zone::UTC));
        assert_eq!(
            Zone::parse("+02:00"),
            Ok(Zone {
                offset_seconds: 7200
            })
        );
        assert_eq!(
            Zone::parse("-05:30"),
            Ok(Zone {
                offset_seconds: -19_800
            })
        );
        assert_eq!(
            Zone::parse("+23:59"),
            Ok(Zone {
                offset_seconds: 86_340
            })
        );
        let iana = "time zone \"Europe/Berlin\": IANA time zone names are not supported (the \
                    time zone database would add about 200 KiB to the filter); give \"UTC\" or a \
                    fixed offset such as \"+02:00\" or \"-05:30\" (a fixed offset does not follow \
                    daylight saving time)";
        assert_eq!(Zone::parse("Europe/Berlin"), Err(iana.to_string()));
        assert!(Zone::parse("EST")
            .expect_err("abbreviation")
            .contains("IANA time zone names are not supported"));
        assert!(Zone::parse("utc")
            .expect_err("lower case")
            .contains("IANA time zone names are not supported"));
        for other in [
            "", "+2:00", "+0200", "+02", "+24:00", "UTC+2", "Z", "+02:00 ",
        ] {
            assert_eq!(
                Zone::parse(other),
                Err(format!(
                    "time zone {other:?}: give \"UTC\" or a fixed offset such as \"+02:00\" or \
                     \"-05:30\""
                )),
                "{other:?}"
            );
        }
    }

    #[test]
    fn weekday_in_zones() {
        let monday = MONDAY_2024_03_04;
        assert_eq!(Zone::UTC.weekday(0), 3, "1970-01-01 was a Thursday");
        assert_eq!(Zone::UTC.weekday(monday), 0);
        assert_eq!(Zone::UTC.weekday(monday - 1), 6);
        assert_eq!(Zone::UTC.weekday(monday + 6 * DAY), 6);
        assert_eq!(Zone::UTC.weekday(monday + 7 * DAY), 0);
        let west = Zone::parse("-05:00").expect("zone");
        // Monday 04:59 UTC is still Sunday at -05:00.
        assert_eq!(west.weekday(monday + 5 * HOUR - 1), 6);
        assert_eq!(west.weekday(monday + 5 * HOUR), 0);
        // Before 1970 in local time: the epoch at -05:00 is Wednesday evening.
        assert_eq!(west.weekday(0), 2);
        // No overflow at the far end of the clock.
        let east = Zone::parse("+23:59").expect("zone");
        assert!(east.weekday(u64::MAX) < 7);
        assert!(east.second_of_day(u64::MAX) < SECONDS_PER_DAY);
    }

    #[test]
    fn day_lists_and_ranges() {
        let weekdays = days(json!("mon-fri"));
        let monday = MONDAY_2024_03_04;
        for day in 0..5 {
            assert!(weekdays.matches(monday + day * DAY), "day {day}");
        }
        assert!(!weekdays.matches(monday + 5 * DAY));
        assert!(!weekdays.matches(monday + 6 * DAY));

        let weekend = days(json!("sat,sun"));
        assert!(!weekend.matches(monday + 4 * DAY + DAY - 1));
        assert!(weekend.matches(monday + 5 * DAY));
        assert!(weekend.matches(monday + 7 * DAY - 1));
        assert!(!weekend.matches(monday + 7 * DAY));

        let every = days(json!("*"));
        assert!((0..7).all(|day| every.matches(monday + day * DAY)));

        let mixed = days(json!("Monday, wed-FRI"));
        let held: Vec<bool> = (0..7)
            .map(|day| mixed.matches(monday + day * DAY))
            .collect();
        assert_eq!(held, [true, false, true, true, true, false, false]);

        let wrapping = days(json!("fri-mon"));
        let held: Vec<bool> = (0..7)
            .map(|day| wrapping.matches(monday + day * DAY))
            .collect();
        assert_eq!(held, [true, false, false, false, true, true, true]);

        let single = days(json!("thu-thu"));
        let held: Vec<bool> = (0..7)
            .map(|day| single.matches(monday + day * DAY))
            .collect();
        assert_eq!(held, [false, false, false, true, false, false, false]);
    }

    #[test]
    fn day_of_week_rolls_over_with_the_zone() {
        // Monday 23:30 UTC is Tuesday 01:30 at +02:00 and Monday 18:30 at -05:00.
        let late_monday = MONDAY_2024_03_04 + 23 * HOUR + 30 * 60;
        let tuesday_utc = days(json!("tue"));
        let tuesday_east = days(json!({"days": "tue", "timezone": "+02:00"}));
        let monday_west = days(json!({"days": "mon", "timezone": "-05:00"}));
        assert!(!tuesday_utc.matches(late_monday));
        assert!(tuesday_east.matches(late_monday));
        assert!(monday_west.matches(late_monday));
        // Monday 02:00 UTC is still Sunday at -05:30.
        let sunday_india_west = days(json!({"days": "sunday", "timezone": "-05:30"}));
        assert!(sunday_india_west.matches(MONDAY_2024_03_04 + 2 * HOUR));
        assert!(!sunday_india_west.matches(MONDAY_2024_03_04 + 6 * HOUR));
        // The object form without a timezone is UTC.
        assert!(days(json!({"days": "mon"})).matches(MONDAY_2024_03_04));
    }

    #[test]
    fn day_of_week_errors() {
        let usage = "give \"*\", days or ranges separated by commas such as \"mon-fri\" or \
                     \"sat,sun\", with English day names or their first three letters";
        assert_eq!(
            days_error(json!("mon-fry")),
            format!("policy: \"mon-fry\" in \"mon-fry\" is not a day or a range of days: {usage}")
        );
        assert_eq!(
            days_error(json!("weekdays")),
            format!(
                "policy: \"weekdays\" in \"weekdays\" is not a day or a range of days: {usage}"
            )
        );
        assert_eq!(
            days_error(json!("mon,,tue")),
            format!("policy: \"\" in \"mon,,tue\" is not a day or a range of days: {usage}")
        );
        assert_eq!(
            days_error(json!("")),
            format!("policy: \"\" in \"\" is not a day or a range of days: {usage}")
        );
        assert_eq!(
            days_error(json!("mo")),
            format!("policy: \"mo\" in \"mo\" is not a day or a range of days: {usage}")
        );
        assert_eq!(
            days_error(json!("mon-tue-wed")),
            format!(
                "policy: \"mon-tue-wed\" in \"mon-tue-wed\" is not a day or a range of days: \
                 {usage}"
            )
        );
        assert_eq!(
            days_error(json!(["mon"])),
            "policy: expected a string of days (such as \"mon-fri\") or an object with \"days\" \
             and \"timezone\", found a list"
        );
        assert_eq!(
            days_error(json!({"timezone": "UTC"})),
            "policy: missing \"days\" (such as \"mon-fri\")"
        );
        assert_eq!(
            days_error(json!({"days": "mon", "tz": "UTC"})),
            "policy: unknown key \"tz\" (expected \"days\", \"timezone\")"
        );
        assert_eq!(
            days_error(json!({"days": "mon", "timezone": "America/New_York"})),
            "policy.timezone: time zone \"America/New_York\": IANA time zone names are not \
             supported (the time zone database would add about 200 KiB to the filter); give \
             \"UTC\" or a fixed offset such as \"+02:00\" or \"-05:30\" (a fixed offset does not \
             follow daylight saving time)"
        );
        assert_eq!(
            days_error(json!({"days": 1})),
            "policy.days: expected a string, found a number"
        );
    }

    #[test]
    fn times_of_day() {
        assert_eq!(parse_time_of_day("00:00"), Ok(0));
        assert_eq!(parse_time_of_day("9:05"), Ok(9 * 3600 + 5 * 60));
        assert_eq!(parse_time_of_day("09:05:07"), Ok(9 * 3600 + 5 * 60 + 7));
        assert_eq!(parse_time_of_day("2:20:00"), Ok(2 * 3600 + 20 * 60));
        assert_eq!(parse_time_of_day("23:59:59"), Ok(86_399));
        assert_eq!(parse_time_of_day("23:59:59.5"), Ok(86_400));
        assert_eq!(parse_time_of_day("12:00:00.000"), Ok(43_200));
        assert_eq!(parse_time_of_day("4:30PM"), Ok(16 * 3600 + 30 * 60));
        assert_eq!(parse_time_of_day("4:30 pm"), Ok(16 * 3600 + 30 * 60));
        assert_eq!(parse_time_of_day("3PM"), Ok(15 * 3600));
        assert_eq!(parse_time_of_day("3 AM"), Ok(3 * 3600));
        assert_eq!(parse_time_of_day("12AM"), Ok(0));
        assert_eq!(parse_time_of_day("12:30 AM"), Ok(30 * 60));
        assert_eq!(parse_time_of_day("12PM"), Ok(12 * 3600));
        assert_eq!(parse_time_of_day("11:59 PM"), Ok(86_340));
    }

    #[test]
    fn time_of_day_refusals() {
        let malformed = "is not a time of day: write \"HH:MM\" or \"HH:MM:SS\" (24-hour), or \
                         \"3PM\", \"3 PM\", \"3:04PM\", \"3:04 PM\"";
        for text in [
            "",
            "9",
            "900",
            "9:5",
            "09:05:7",
            "13PM",
            "0AM",
            "9:00 XM",
            "9:00  PM",
            "9:00PM ",
            "123:00",
            "9:00:00:00",
            "9.5",
            "09:00Z",
            "0:60 AM",
        ] {
            assert_eq!(
                parse_time_of_day(text),
                Err(format!("{text:?} {malformed}")),
                "{text:?}"
            );
        }
        for text in ["24:00", "23:60", "23:59:60", "99:00"] {
            assert_eq!(
                parse_time_of_day(text),
                Err(format!(
                    "{text:?} is not a time of day: hours go to 23, minutes and seconds to 59"
                )),
                "{text:?}"
            );
        }
    }

    #[test]
    fn time_of_day_window_is_half_open() {
        let office = time_of_day(json!({"timezone": "UTC", "after": "09:00", "before": "17:00"}));
        let day = MONDAY_2024_03_04;
        assert!(!office.matches(day + 9 * HOUR - 1));
        assert!(office.matches(day + 9 * HOUR), "at exactly after: holds");
        assert!(office.matches(day + 17 * HOUR - 1));
        assert!(
            !office.matches(day + 17 * HOUR),
            "at exactly before: no longer"
        );
        // Every day, whatever the date.
        assert!(office.matches(day + 400 * DAY + 12 * HOUR));
        assert!(office.matches(12 * HOUR));
    }

    #[test]
    fn time_of_day_in_other_zones() {
        // 09:00-17:00 at +02:00 is 07:00-15:00 UTC.
        let east = time_of_day(json!({"timezone": "+02:00", "after": "9:00", "before": "5PM"}));
        let day = MONDAY_2024_03_04;
        assert!(!east.matches(day + 7 * HOUR - 1));
        assert!(east.matches(day + 7 * HOUR));
        assert!(east.matches(day + 15 * HOUR - 1));
        assert!(!east.matches(day + 15 * HOUR));
        // Across the UTC day boundary: 18:00-23:00 at -05:30 is 23:30-04:30 UTC.
        let west = time_of_day(json!({"timezone": "-05:30", "after": "18:00", "before": "23:00"}));
        assert!(!west.matches(day + 23 * HOUR + 29 * 60 + 59));
        assert!(west.matches(day + 23 * HOUR + 30 * 60));
        assert!(west.matches(day + DAY + 4 * HOUR + 29 * 60 + 59));
        assert!(!west.matches(day + DAY + 4 * HOUR + 30 * 60));
        // Only one bound.
        let morning = time_of_day(json!({"timezone": "UTC", "before": "12:00"}));
        assert!(morning.matches(day));
        assert!(!morning.matches(day + 12 * HOUR));
        let evening = time_of_day(json!({"timezone": "UTC", "after": "12:00"}));
        assert!(!evening.matches(day + 12 * HOUR - 1));
        assert!(evening.matches(day + DAY - 1));
        assert!(!evening.matches(day + DAY));
    }

    #[test]
    fn time_of_day_errors() {
        assert_eq!(
            time_error(json!({"after": "09:00"})),
            "policy: missing \"timezone\" (\"UTC\" or a fixed offset such as \"+02:00\")"
        );
        assert_eq!(
            time_error(json!({"timezone": "UTC"})),
            "policy: time_of_day needs \"after\", \"before\" or both"
        );
        assert_eq!(
            time_error(json!({"timezone": "UTC", "after": "22:00", "before": "06:00"})),
            "policy: \"after\" must be an earlier time than \"before\": no time is both at or \
             after the one and before the other, so the criterion could never hold; for a \
             window across midnight write two criteria under \"or\", one with \"after\" and one \
             with \"before\""
        );
        assert!(
            time_error(json!({"timezone": "UTC", "after": "9:00", "before": "9AM"}))
                .contains("could never hold")
        );
        assert_eq!(
            time_error(json!({"timezone": "UTC", "after": "25:00"})),
            "policy.after: \"25:00\" is not a time of day: hours go to 23, minutes and seconds \
             to 59"
        );
        assert_eq!(
            time_error(json!({"timezone": "Europe/Paris", "after": "09:00"})),
            "policy.timezone: time zone \"Europe/Paris\": IANA time zone names are not supported \
             (the time zone database would add about 200 KiB to the filter); give \"UTC\" or a \
             fixed offset such as \"+02:00\" or \"-05:30\" (a fixed offset does not follow \
             daylight saving time)"
        );
        assert_eq!(
            time_error(json!({"timezone": 2, "after": "09:00"})),
            "policy.timezone: expected a string, found a number"
        );
        assert_eq!(
            time_error(json!({"timezone": "UTC", "after": 9})),
            "policy.after: expected a string, found a number"
        );
        assert_eq!(
            time_error(json!({"timezone": "UTC", "from": "09:00"})),
            "policy: unknown key \"from\" (expected \"timezone\", \"after\", \"before\")"
        );
        assert_eq!(
            time_error(json!("09:00-17:00")),
            "policy: expected an object with \"timezone\" and \"after\" and/or \"before\", found \
             a string"
        );
    }
}
