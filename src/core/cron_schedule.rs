//! The daemon's sweep schedule, written as operators write crontab.
//!
//! Accepts 5 fields (`min hour dom month dow`), 6 fields with seconds first, and the
//! `@hourly`-style shorthands, with crontab's meaning: weekday 0 and 7 are Sunday, 1 is Monday,
//! and when both day-of-month and day-of-week are restricted a day matching either fires (as
//! Vixie cron does). The `cron` crate underneath numbers weekdays 1 = Sunday and ANDs the two
//! day fields, so this module translates the weekday field itself and splits the OR case into
//! two schedules. Pure: the next fire time is computed from a given instant, never from a clock.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeZone};
use serde::{Serialize, Serializer};

/// Why a crontab expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error(
        "\"{0}\" is not a crontab schedule: expected 5 fields (minute hour day-of-month month day-of-week, like \"*/5 * * * *\") or 6 with seconds first"
    )]
    FieldCount(String),
    #[error(
        "\"{expression}\": day-of-week \"{field}\" is invalid: use 0-7 (0 and 7 are Sunday) or names like MON-FRI"
    )]
    Weekday { expression: String, field: String },
    #[error("\"{expression}\" is not a valid crontab schedule: {reason}")]
    Invalid { expression: String, reason: String },
    /// A number outside its field's range, in the operator's terms.
    #[error("\"{expression}\": {field} {value} is out of range ({min}-{max})")]
    OutOfRange {
        expression: String,
        field: &'static str,
        value: u32,
        min: u32,
        max: u32,
    },
    /// It parses, but fires less than once a year, or never (`0 0 30 2 *`).
    #[error(
        "\"{0}\" never fires within a year (a day that does not exist in its month, like 30 February?); give a schedule that runs at least yearly"
    )]
    Rare(String),
}

/// A parsed crontab schedule.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    source: String,
    /// One schedule, or two whose union is crontab's "day-of-month OR day-of-week".
    parts: Vec<cron::Schedule>,
}

const WEEKDAY_NAMES: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

impl CronSchedule {
    /// The first fire time strictly after `after`, in `after`'s zone.
    pub fn next_after<Z: TimeZone>(&self, after: &DateTime<Z>) -> Option<DateTime<Z>> {
        self.parts
            .iter()
            .filter_map(|schedule| schedule.after(after).next())
            .min()
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    fn build(source: &str, seconds: &str, fields: [&str; 5]) -> Result<CronSchedule, CronError> {
        let [minute, hour, dom, month, dow] = fields;
        for (field, text, min, max) in [
            ("second", seconds, 0, 59),
            ("minute", minute, 0, 59),
            ("hour", hour, 0, 23),
            ("day of month", dom, 1, 31),
            ("month", month, 1, 12),
        ] {
            if let Some(value) = out_of_range(text, min, max) {
                return Err(CronError::OutOfRange {
                    expression: source.to_owned(),
                    field,
                    value,
                    min,
                    max,
                });
            }
        }
        let weekdays = translate_weekdays(dow).ok_or_else(|| CronError::Weekday {
            expression: source.to_owned(),
            field: dow.to_owned(),
        })?;
        let restricted = |field: &str| !field.starts_with('*');
        let variants: Vec<(&str, &str)> = if restricted(dom) && restricted(dow) {
            vec![(dom, "*"), ("*", weekdays.as_str())]
        } else {
            vec![(dom, weekdays.as_str())]
        };
        let parts = variants
            .into_iter()
            .map(|(dom, dow)| {
                let expression = format!("{seconds} {minute} {hour} {dom} {month} {dow}");
                cron::Schedule::from_str(&expression).map_err(|e| CronError::Invalid {
                    expression: source.to_owned(),
                    // The crate quotes its own 6-field rewrite over several lines: keep only
                    // its last line, the reason.
                    reason: e
                        .to_string()
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let schedule = CronSchedule {
            source: source.to_owned(),
            parts,
        };
        // From a fixed instant, not the clock: whether a schedule fires yearly does not
        // depend on when it is read. (29 February only is refused too: it skips years.)
        let from = DateTime::<chrono::Utc>::from_timestamp(YEAR_CHECK_FROM, 0)
            .unwrap_or(DateTime::<chrono::Utc>::MIN_UTC);
        let fires = schedule
            .next_after(&from)
            .is_some_and(|next| next - from <= chrono::TimeDelta::days(366));
        if !fires {
            return Err(CronError::Rare(source.to_owned()));
        }
        Ok(schedule)
    }
}

/// 2026-03-01T00:00:00Z, where the check for a yearly firing starts.
const YEAR_CHECK_FROM: i64 = 1_772_323_200;

/// Translates a crontab day-of-week field into the `cron` crate's syntax by naming the days,
/// which sidesteps the two numbering schemes. `None` if the field is malformed.
fn translate_weekdays(field: &str) -> Option<String> {
    let mut days = [false; 7];
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, step.parse::<usize>().ok().filter(|s| *s > 0)?),
            None => (item, 1),
        };
        let (first, last) = match range {
            "*" => (0, 6),
            _ => match range.split_once('-') {
                Some((a, b)) => (weekday_number(a)?, weekday_number(b)?),
                // "5/2" means from Friday on, every second day, as in cronie.
                None if item.contains('/') => (weekday_number(range)?, 6),
                None => {
                    let day = weekday_number(range)?;
                    (day, day)
                }
            },
        };
        if first > last {
            return None;
        }
        for day in (first..=last).step_by(step) {
            days[day % 7] = true;
        }
    }
    if days.iter().all(|d| *d) {
        return Some("*".to_owned());
    }
    let names: Vec<&str> = (0..7)
        .filter(|d| days[*d])
        .map(|d| WEEKDAY_NAMES[d])
        .collect();
    Some(names.join(","))
}

/// The first number of a field (`5`, `1-5`, `*/15`, `1,20-25`) outside `min..=max`. Names
/// (`JAN`) and `*` are left to the cron crate.
fn out_of_range(field: &str, min: u32, max: u32) -> Option<u32> {
    field
        .split(',')
        .flat_map(|item| {
            let range = item.split('/').next().unwrap_or_default();
            range.split('-').map(str::to_owned).collect::<Vec<_>>()
        })
        .filter_map(|n| n.parse::<u32>().ok())
        .find(|n| !(min..=max).contains(n))
}

/// A crontab weekday: 0-7 (0 and 7 Sunday) or a three-letter name.
fn weekday_number(token: &str) -> Option<usize> {
    if let Ok(n) = token.parse::<usize>() {
        return (n <= 7).then_some(n);
    }
    WEEKDAY_NAMES
        .iter()
        .position(|name| name.eq_ignore_ascii_case(token))
}

impl FromStr for CronSchedule {
    type Err = CronError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let expanded = match input.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        match fields.as_slice() {
            [m, h, dom, mon, dow] => CronSchedule::build(input, "0", [m, h, dom, mon, dow]),
            [s, m, h, dom, mon, dow] => CronSchedule::build(input, s, [m, h, dom, mon, dow]),
            _ => Err(CronError::FieldCount(input.to_owned())),
        }
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Serialize for CronSchedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_fields_are_named_in_five_field_terms() {
        for (expression, says) in [
            ("0 25 * * *", "hour 25 is out of range (0-23)"),
            ("61 * * * *", "minute 61 is out of range (0-59)"),
            ("0 0 32 * *", "day of month 32 is out of range (1-31)"),
            ("0 0 * 13 *", "month 13 is out of range (1-12)"),
            ("0 0 0-40 * *", "day of month 0 is out of range"),
        ] {
            let error = expression.parse::<CronSchedule>().unwrap_err().to_string();
            assert!(error.contains(says), "{expression}: {error}");
            assert_eq!(error.lines().count(), 1, "{error}");
        }
        assert!("0 23 31 12 *".parse::<CronSchedule>().is_ok());
    }

    #[test]
    fn schedules_that_never_fire_within_a_year_are_refused() {
        for never in ["0 0 30 2 *", "0 0 31 4 *", "0 0 29 2 *", "0 0 0 31 11 *"] {
            assert!(
                matches!(never.parse::<CronSchedule>(), Err(CronError::Rare(_))),
                "{never}"
            );
        }
        for yearly in ["0 0 1 1 *", "0 0 31 * *", "0 9 * * MON", "0 0 29 * *"] {
            assert!(yearly.parse::<CronSchedule>().is_ok(), "{yearly}");
        }
    }
    use crate::test_support::at;
    use chrono::{Datelike, Timelike, Utc, Weekday};
    use chrono_tz::Tz;
    use proptest::prelude::*;

    fn fires(expression: &str, from: &str, n: usize) -> Vec<DateTime<Utc>> {
        let schedule: CronSchedule = expression.parse().unwrap();
        let mut out = Vec::new();
        let mut t = at(from);
        for _ in 0..n {
            t = schedule.next_after(&t).unwrap();
            out.push(t);
        }
        out
    }

    #[test]
    fn weekdays_one_to_five_are_monday_to_friday() {
        // 2026-11-26 is a Thursday.
        let days: Vec<Weekday> = fires("0 9 * * 1-5", "2026-11-26T10:00:00Z", 5)
            .iter()
            .map(|t| t.weekday())
            .collect();
        assert_eq!(
            days,
            [
                Weekday::Fri,
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu
            ]
        );
        assert!(
            fires("0 9 * * 1-5", "2026-11-26T10:00:00Z", 20)
                .iter()
                .all(|t| t.hour() == 9 && t.minute() == 0)
        );
    }

    #[test]
    fn zero_and_seven_are_sunday() {
        for expression in ["0 0 * * 0", "0 0 * * 7", "0 0 * * sun", "@weekly"] {
            for t in fires(expression, "2026-11-26T00:00:00Z", 4) {
                assert_eq!(t.weekday(), Weekday::Sun, "{expression}");
            }
        }
    }

    #[test]
    fn weekday_table() {
        let cases = [
            ("*", "*"),
            ("1-5", "Mon,Tue,Wed,Thu,Fri"),
            ("MON-FRI", "Mon,Tue,Wed,Thu,Fri"),
            ("0,6", "Sun,Sat"),
            ("5-7", "Sun,Fri,Sat"),
            ("*/2", "Sun,Tue,Thu,Sat"),
            ("1-7", "*"),
            ("6/1", "Sat"),
        ];
        for (field, expected) in cases {
            assert_eq!(
                translate_weekdays(field).as_deref(),
                Some(expected),
                "{field}"
            );
        }
        for field in ["8", "5-1", "mon-", "*/0", "funday", ""] {
            assert_eq!(translate_weekdays(field), None, "{field}");
        }
    }

    #[test]
    fn five_and_six_fields() {
        let every_five = fires("*/5 * * * *", "2026-11-26T10:02:30Z", 3);
        assert_eq!(
            every_five,
            [
                at("2026-11-26T10:05:00Z"),
                at("2026-11-26T10:10:00Z"),
                at("2026-11-26T10:15:00Z")
            ]
        );
        let every_ten_seconds = fires("*/10 * * * * *", "2026-11-26T10:00:00Z", 2);
        assert_eq!(
            every_ten_seconds,
            [at("2026-11-26T10:00:10Z"), at("2026-11-26T10:00:20Z")]
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_restricted() {
        // Crontab: the 1st of the month OR any Monday. Dec 2026: Tue 1, Mon 7, 14, ...
        let days: Vec<u32> = fires("0 0 1 * 1", "2026-11-30T12:00:00Z", 3)
            .iter()
            .map(|t| t.day())
            .collect();
        assert_eq!(days, [1, 7, 14]);
    }

    #[test]
    fn runs_in_a_configured_zone() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let schedule: CronSchedule = "0 9 * * *".parse().unwrap();
        let next = schedule
            .next_after(&at("2026-11-26T00:00:00Z").with_timezone(&berlin))
            .unwrap();
        assert_eq!(next.with_timezone(&Utc), at("2026-11-26T08:00:00Z"));
    }

    #[test]
    fn refuses_bad_expressions_with_the_input_named() {
        for bad in ["* * * *", "61 * * * *", "* * * * 8", "every minute", ""] {
            let err = bad.parse::<CronSchedule>().unwrap_err().to_string();
            assert!(err.contains(&format!("\"{bad}\"")), "{bad}: {err}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn single_weekday_fires_only_on_that_day(day in 0usize..=7, minute in 0u32..60, hour in 0u32..24) {
            let expression = format!("{minute} {hour} * * {day}");
            let expected = Weekday::Sun.succ_n(day % 7);
            for t in fires(&expression, "2026-01-01T00:00:00Z", 3) {
                prop_assert_eq!(t.weekday(), expected);
                prop_assert_eq!((t.hour(), t.minute()), (hour, minute));
            }
        }
    }

    trait SuccN {
        fn succ_n(self, n: usize) -> Weekday;
    }

    impl SuccN for Weekday {
        fn succ_n(self, n: usize) -> Weekday {
            (0..n).fold(self, |d, _| d.succ())
        }
    }
}
