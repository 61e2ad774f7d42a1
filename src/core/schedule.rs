//! When renewals and reminders happen: intervals, anchors, time zones and delivery windows.
//!
//! Owns the calendar arithmetic of docs/rules.md ("Schedule"): renewal `k` is computed from the
//! anchor (never from the previous renewal, so nothing drifts), monthly intervals keep the
//! anchor's day clamped to the month's end, and a local time of day is resolved in the
//! customer's IANA zone (a time in a DST gap moves forward to the first valid instant; an
//! ambiguous one takes the earlier instant). Pure: no clock reads, no IO. "Now" is always a
//! parameter.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Days, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use serde::{Serialize, Serializer};

/// Why a schedule could not be formed or computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "\"{0}\" is not an interval: expected a positive count and a unit, like \"30 days\", \"2 weeks\" or \"1 month\""
    )]
    InvalidInterval(String),
    #[error("\"{0}\": an interval is at most {MAX_INTERVAL_COUNT} of its unit")]
    IntervalTooLong(String),
    #[error(
        "\"{0}\" is not an IANA time zone name (like \"America/New_York\" or \"Europe/Berlin\")"
    )]
    UnknownTimeZone(String),
    #[error("\"{0}\" is not a local time of day: expected HH:MM in 24-hour form, like \"09:00\"")]
    InvalidTimeOfDay(String),
    #[error("renewal {0} falls after the year {LAST_YEAR}, beyond the supported calendar")]
    OutOfRange(u32),
}

/// The unit of an [`Interval`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntervalUnit {
    Day,
    Week,
    Month,
}

/// How often a subscription renews: N days, N weeks or N months, N ≥ 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interval {
    count: u32,
    unit: IntervalUnit,
}

/// The last year a renewal may fall in (RFC 3339 has four-digit years).
pub const LAST_YEAR: i32 = 9999;

/// Largest count accepted for any unit: ten years of days. Keeps date arithmetic in range.
const MAX_INTERVAL_COUNT: u32 = 3650;

impl Interval {
    pub fn new(count: u32, unit: IntervalUnit) -> Option<Interval> {
        (1..=MAX_INTERVAL_COUNT)
            .contains(&count)
            .then_some(Interval { count, unit })
    }

    pub fn days(count: u32) -> Option<Interval> {
        Interval::new(count, IntervalUnit::Day)
    }

    pub fn count(self) -> u32 {
        self.count
    }

    pub fn unit(self) -> IntervalUnit {
        self.unit
    }

    /// Its length in hundredths of a day, a month counted as 30.44 days: for comparing
    /// intervals of different units (the nearest one a plan allows), never for scheduling.
    pub fn approx_centidays(self) -> u64 {
        let per_unit = match self.unit {
            IntervalUnit::Day => 100,
            IntervalUnit::Week => 700,
            IntervalUnit::Month => 3044,
        };
        u64::from(self.count) * per_unit
    }

    /// Of `choices`, the one closest in length to this interval (the shorter on a tie): how a
    /// subscription's interval carries over to a plan that does not allow it.
    pub fn nearest_of(self, choices: &[Interval]) -> Option<Interval> {
        let length = self.approx_centidays();
        choices.iter().copied().min_by_key(|c| {
            let other = c.approx_centidays();
            (other.abs_diff(length), other)
        })
    }

    /// The local date `k` intervals after `anchor`. Months keep the anchor's day, clamped to
    /// the end of shorter months (Jan 31 → Feb 28/29 → Mar 31).
    pub fn nth_date(self, anchor: NaiveDate, k: u32) -> Option<NaiveDate> {
        let steps = self.count.checked_mul(k)?;
        match self.unit {
            IntervalUnit::Day => anchor.checked_add_days(Days::new(u64::from(steps))),
            IntervalUnit::Week => {
                anchor.checked_add_days(Days::new(u64::from(steps.checked_mul(7)?)))
            }
            IntervalUnit::Month => anchor.checked_add_months(Months::new(steps)),
        }
    }
}

impl FromStr for Interval {
    type Err = ScheduleError;

    /// Accepts "30 days", "1 day", "2 weeks", "1 month", "3 months", and the short forms
    /// "30d", "2w", "1m".
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let invalid = || ScheduleError::InvalidInterval(input.to_owned());
        let trimmed = input.trim();
        let split = trimmed
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(invalid)?;
        let (number, unit) = trimmed.split_at(split);
        let unit = match unit.trim().to_ascii_lowercase().as_str() {
            "d" | "day" | "days" => IntervalUnit::Day,
            "w" | "week" | "weeks" => IntervalUnit::Week,
            "m" | "month" | "months" => IntervalUnit::Month,
            _ => return Err(invalid()),
        };
        let too_long = || ScheduleError::IntervalTooLong(input.to_owned());
        // All digits: a parse failure is an overflow.
        let count: u32 = number.parse().map_err(|_| too_long())?;
        match count {
            0 => Err(invalid()),
            _ => Interval::new(count, unit).ok_or_else(too_long),
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            IntervalUnit::Day => "day",
            IntervalUnit::Week => "week",
            IntervalUnit::Month => "month",
        };
        let plural = if self.count == 1 { "" } else { "s" };
        write!(f, "{} {unit}{plural}", self.count)
    }
}

impl Serialize for Interval {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Parses an IANA time zone name.
pub fn parse_time_zone(name: &str) -> Result<Tz, ScheduleError> {
    name.parse::<Tz>()
        .map_err(|_| ScheduleError::UnknownTimeZone(name.to_owned()))
}

/// A local time of day, parsed from "HH:MM" (or "HH:MM:SS").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(NaiveTime);

impl TimeOfDay {
    pub fn new(time: NaiveTime) -> TimeOfDay {
        TimeOfDay(time)
    }

    pub fn time(self) -> NaiveTime {
        self.0
    }
}

impl FromStr for TimeOfDay {
    type Err = ScheduleError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        NaiveTime::parse_from_str(input, "%H:%M")
            .or_else(|_| NaiveTime::parse_from_str(input, "%H:%M:%S"))
            .map(TimeOfDay)
            .map_err(|_| ScheduleError::InvalidTimeOfDay(input.to_owned()))
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%H:%M"))
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Longest DST gap searched for the first valid instant. Real gaps are 30 minutes to 2 hours;
/// a day covers historical calendar jumps too.
const MAX_GAP: TimeDelta = TimeDelta::hours(26);

/// Resolves a local wall-clock time in `tz` to an instant by the rules of docs/rules.md: an ambiguous
/// time (DST overlap) takes the earlier instant; a time that does not exist (DST gap) moves
/// forward to the first valid instant, which is the moment the gap ends.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => first_instant_after_gap(tz, local),
    }
}

/// The instant a DST gap containing `local` ends. The wall-clock offset before the gap maps
/// `local` to an instant just past the transition; a binary search over that span finds the
/// transition to the second.
fn first_instant_after_gap(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let before = tz
        .from_local_datetime(&(local - MAX_GAP))
        .earliest()
        .map(|t| t.offset().fix())
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset is valid"));
    // `local` read with the old offset is an instant after the transition; `local - MAX_GAP`
    // read the same way is before it.
    let mut after = (local - before).and_utc().timestamp();
    let mut lo = after - MAX_GAP.num_seconds();
    let offset_at = |secs: i64| {
        let t = DateTime::from_timestamp(secs, 0).expect("within chrono's range");
        t.with_timezone(&tz).offset().fix()
    };
    let old = offset_at(lo);
    // Transitions fall on whole seconds: search seconds, not durations.
    while after - lo > 1 {
        let mid = lo + (after - lo) / 2;
        if offset_at(mid) == old {
            lo = mid;
        } else {
            after = mid;
        }
    }
    DateTime::from_timestamp(after, 0).expect("within chrono's range")
}

/// Where a subscription's renewals are counted from: a local date and time of day in the
/// customer's zone. Renewal 0 is the anchor itself; renewal k is k intervals later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    pub local: NaiveDateTime,
    pub tz: Tz,
}

impl Anchor {
    pub fn new(local: NaiveDateTime, tz: Tz) -> Anchor {
        Anchor { local, tz }
    }

    /// The local wall-clock time of renewal `k` (before DST resolution).
    /// Dates past year 9999 are refused: they have no RFC 3339 form, and nothing bills that far.
    pub fn nth_local(&self, interval: Interval, k: u32) -> Result<NaiveDateTime, ScheduleError> {
        interval
            .nth_date(self.local.date(), k)
            .filter(|date| date.year() <= LAST_YEAR)
            .map(|date| date.and_time(self.local.time()))
            .ok_or(ScheduleError::OutOfRange(k))
    }

    /// The instant of renewal `k`, computed from the anchor alone.
    pub fn nth(&self, interval: Interval, k: u32) -> Result<DateTime<Utc>, ScheduleError> {
        Ok(resolve_local(self.tz, self.nth_local(interval, k)?))
    }

    /// The first cycle whose instant is strictly after `instant`, with that instant.
    /// Work is proportional to the answer's distance from an estimate, not to `k`.
    pub fn next_after(
        &self,
        interval: Interval,
        instant: DateTime<Utc>,
    ) -> Result<(u32, DateTime<Utc>), ScheduleError> {
        let mut k = self.estimate_cycle(interval, instant);
        // Step back while the estimate overshoots, then forward to the first later renewal.
        while k > 0 && self.nth(interval, k - 1)? > instant {
            k -= 1;
        }
        loop {
            let at = self.nth(interval, k)?;
            if at > instant {
                return Ok((k, at));
            }
            k = k.checked_add(1).ok_or(ScheduleError::OutOfRange(k))?;
        }
    }

    fn estimate_cycle(&self, interval: Interval, instant: DateTime<Utc>) -> u32 {
        let elapsed_days = (instant.naive_utc() - self.local).num_days().max(0);
        let per_cycle = match interval.unit {
            IntervalUnit::Day => i64::from(interval.count),
            IntervalUnit::Week => 7 * i64::from(interval.count),
            IntervalUnit::Month => 28 * i64::from(interval.count),
        };
        u32::try_from(elapsed_days / per_cycle).unwrap_or(u32::MAX)
    }
}

/// The daily local-time span in which reminders may be delivered, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DeliveryWindow {
    pub start: TimeOfDay,
    pub end: TimeOfDay,
}

impl DeliveryWindow {
    /// The first instant at or after `due` whose local time in `tz` falls inside the window:
    /// `due` itself when inside, else the next opening of the window.
    pub fn next_open(&self, due: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
        let local = due.with_timezone(&tz).naive_local();
        let (start, end) = (self.start.time(), self.end.time());
        let time = local.time();
        if time >= start && time < end {
            return due;
        }
        let opening_date = if time < start {
            local.date()
        } else {
            local.date().succ_opt().unwrap_or(local.date())
        };
        resolve_local(tz, opening_date.and_time(start)).max(due)
    }
}

/// When the reminder announcing a renewal is delivered: `lead_days` local calendar days before
/// the renewal's local time, or `now` when that has passed (a reminder queued late, after a
/// pause or an outage), then moved into the delivery window. `None` when the window would put
/// it at or after the renewal itself: a reminder never arrives after what it announces.
pub fn reminder_instant(
    renewal_local: NaiveDateTime,
    tz: Tz,
    lead_days: u32,
    window: &DeliveryWindow,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let renewal = resolve_local(tz, renewal_local);
    let due_local = renewal_local.checked_sub_days(Days::new(u64::from(lead_days)))?;
    let deliver = window.next_open(resolve_local(tz, due_local).max(now), tz);
    (deliver < renewal).then_some(deliver)
}

/// When the annual notice after `from` is due: a year later (the end of time if that overflows).
pub fn next_annual(from: DateTime<Utc>) -> DateTime<Utc> {
    from.checked_add_months(Months::new(12))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_nearest_allowed_interval_is_the_closest_in_length() {
        let parse = |s: &str| s.parse::<Interval>().unwrap();
        let all = |list: &[&str]| list.iter().map(|s| parse(s)).collect::<Vec<_>>();
        for (from, choices, nearest) in [
            ("30 days", &["180 days", "6 months"][..], "180 days"),
            (
                "1 month",
                &["30 days", "45 days", "60 days", "1 month"][..],
                "1 month",
            ),
            ("2 weeks", &["30 days", "1 month"][..], "30 days"),
            ("60 days", &["90 days", "3 months"][..], "90 days"),
            ("3 months", &["60 days", "2 months"][..], "2 months"),
        ] {
            assert_eq!(
                parse(from).nearest_of(&all(choices)),
                Some(parse(nearest)),
                "{from} among {choices:?}"
            );
        }
        assert_eq!(parse("30 days").nearest_of(&[]), None);
    }
    use super::*;
    use crate::test_support::{at as utc, day_window};
    use chrono::{Datelike, NaiveDate, Timelike};
    use proptest::prelude::*;

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap()
    }

    fn tz(name: &str) -> Tz {
        parse_time_zone(name).unwrap()
    }

    #[test]
    fn parses_intervals() {
        let cases = [
            ("30 days", 30, IntervalUnit::Day),
            ("1 day", 1, IntervalUnit::Day),
            ("2 weeks", 2, IntervalUnit::Week),
            ("1 month", 1, IntervalUnit::Month),
            ("3 Months", 3, IntervalUnit::Month),
            ("45d", 45, IntervalUnit::Day),
            ("6w", 6, IntervalUnit::Week),
        ];
        for (input, count, unit) in cases {
            assert_eq!(
                input.parse::<Interval>(),
                Ok(Interval { count, unit }),
                "{input}"
            );
        }
        for input in [
            "0 days",
            "-1 days",
            "month",
            "1.5 months",
            "30 fortnights",
            "",
            "99999 days",
        ] {
            assert!(input.parse::<Interval>().is_err(), "{input:?}");
        }
        // Too long names the maximum.
        for input in ["3651 days", "99999999999 weeks"] {
            let error = input.parse::<Interval>().unwrap_err();
            assert!(error.to_string().contains("at most 3650"), "{error}");
        }
        assert_eq!(
            "2 weeks".parse::<Interval>().unwrap().to_string(),
            "2 weeks"
        );
        assert_eq!("1m".parse::<Interval>().unwrap().to_string(), "1 month");
    }

    #[test]
    fn month_end_anchors_clamp_and_return() {
        let monthly: Interval = "1 month".parse().unwrap();
        let anchor = Anchor::new(local("2026-01-31T09:00"), tz("UTC"));
        let dates: Vec<String> = (0..4)
            .map(|k| anchor.nth_local(monthly, k).unwrap().date().to_string())
            .collect();
        assert_eq!(
            dates,
            ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30"]
        );

        // Leap year: Jan 31 2028 -> Feb 29.
        let leap = Anchor::new(local("2028-01-31T09:00"), tz("UTC"));
        assert_eq!(
            leap.nth_local(monthly, 1).unwrap().date().to_string(),
            "2028-02-29"
        );

        // A Feb 29 anchor yearly-ish (12 months): Feb 28 in common years, Feb 29 in leap years.
        let feb29 = Anchor::new(local("2028-02-29T09:00"), tz("UTC"));
        let yearly: Interval = "12 months".parse().unwrap();
        let years: Vec<String> = (0..5)
            .map(|k| feb29.nth_local(yearly, k).unwrap().date().to_string())
            .collect();
        assert_eq!(
            years,
            [
                "2028-02-29",
                "2029-02-28",
                "2030-02-28",
                "2031-02-28",
                "2032-02-29"
            ]
        );
    }

    #[test]
    fn anchors_on_29_30_31_keep_their_day_when_it_exists() {
        let monthly: Interval = "1 month".parse().unwrap();
        for (year, day) in [
            (2026, 29),
            (2026, 30),
            (2026, 31),
            (2028, 29),
            (2028, 30),
            (2028, 31),
        ] {
            let anchor = Anchor::new(
                NaiveDate::from_ymd_opt(year, 1, day)
                    .unwrap()
                    .and_hms_opt(9, 0, 0)
                    .unwrap(),
                tz("UTC"),
            );
            for k in 0..48 {
                let date = anchor.nth_local(monthly, k).unwrap().date();
                let last = last_day_of_month(date);
                assert_eq!(date.day(), day.min(last), "anchor day {day}/{year}, k={k}");
            }
        }
    }

    fn last_day_of_month(date: NaiveDate) -> u32 {
        let first_next = if date.month() == 12 {
            NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
        };
        first_next.unwrap().pred_opt().unwrap().day()
    }

    /// Each case is (zone, local wall time, the instant it must resolve to).
    fn assert_resolves(cases: &[(&str, &str, &str)]) {
        for &(zone, wall, expected) in cases {
            assert_eq!(
                resolve_local(tz(zone), local(wall)),
                utc(expected),
                "{zone} {wall}"
            );
        }
    }

    #[test]
    fn dst_gap_moves_forward_to_first_valid_instant() {
        // (zone, nonexistent local time, expected instant)
        let cases = [
            // New York springs forward 02:00 EST -> 03:00 EDT on 2026-03-08 (07:00 UTC).
            (
                "America/New_York",
                "2026-03-08T02:30",
                "2026-03-08T07:00:00Z",
            ),
            // Berlin springs forward 02:00 CET -> 03:00 CEST on 2026-03-29 (01:00 UTC).
            ("Europe/Berlin", "2026-03-29T02:15", "2026-03-29T01:00:00Z"),
            // Lord Howe shifts 30 minutes: 02:00 +10:30 -> 02:30 +11 on 2026-10-04 (15:30 UTC).
            (
                "Australia/Lord_Howe",
                "2026-10-04T02:10",
                "2026-10-03T15:30:00Z",
            ),
        ];
        assert_resolves(&cases);
    }

    #[test]
    fn dst_overlap_takes_the_earlier_instant() {
        let cases = [
            // New York falls back 02:00 EDT -> 01:00 EST on 2026-11-01: 01:30 happens twice.
            (
                "America/New_York",
                "2026-11-01T01:30",
                "2026-11-01T05:30:00Z",
            ),
            // Berlin falls back 03:00 CEST -> 02:00 CET on 2026-10-25.
            ("Europe/Berlin", "2026-10-25T02:30", "2026-10-25T00:30:00Z"),
            // Lord Howe falls back 02:00 +11 -> 01:30 +10:30 on 2026-04-05.
            (
                "Australia/Lord_Howe",
                "2026-04-05T01:45",
                "2026-04-04T14:45:00Z",
            ),
        ];
        assert_resolves(&cases);
    }

    #[test]
    fn local_time_is_kept_across_dst() {
        let berlin = tz("Europe/Berlin");
        let weekly: Interval = "1 week".parse().unwrap();
        let anchor = Anchor::new(local("2026-03-22T09:00"), berlin);
        // Before the change 09:00 CET = 08:00 UTC; after it 09:00 CEST = 07:00 UTC.
        assert_eq!(anchor.nth(weekly, 0).unwrap(), utc("2026-03-22T08:00:00Z"));
        assert_eq!(anchor.nth(weekly, 1).unwrap(), utc("2026-03-29T07:00:00Z"));
    }

    #[test]
    fn a_gap_renewal_returns_to_its_time_next_cycle() {
        let ny = tz("America/New_York");
        let monthly: Interval = "1 month".parse().unwrap();
        let anchor = Anchor::new(local("2026-02-08T02:30"), ny);
        let in_gap = anchor.nth(monthly, 1).unwrap().with_timezone(&ny);
        assert_eq!((in_gap.hour(), in_gap.minute()), (3, 0));
        let after = anchor.nth(monthly, 2).unwrap().with_timezone(&ny);
        assert_eq!((after.day(), after.hour(), after.minute()), (8, 2, 30));
    }

    #[test]
    fn next_after_finds_the_first_later_cycle() {
        let monthly: Interval = "1 month".parse().unwrap();
        let anchor = Anchor::new(local("2026-01-31T09:00"), tz("UTC"));
        assert_eq!(
            anchor
                .next_after(monthly, utc("2026-01-31T09:00:00Z"))
                .unwrap(),
            (1, utc("2026-02-28T09:00:00Z"))
        );
        assert_eq!(
            anchor
                .next_after(monthly, utc("2026-01-01T00:00:00Z"))
                .unwrap(),
            (0, utc("2026-01-31T09:00:00Z"))
        );
        assert_eq!(
            anchor
                .next_after(monthly, utc("2027-03-30T00:00:00Z"))
                .unwrap(),
            (14, utc("2027-03-31T09:00:00Z"))
        );
    }

    #[test]
    fn delivery_window_holds_night_reminders_until_morning() {
        let ny = tz("America/New_York");
        let window = day_window();
        // Due 02:00 New York (07:00 UTC) -> 09:00 New York the same day.
        assert_eq!(
            window.next_open(utc("2026-06-10T06:00:00Z"), ny),
            utc("2026-06-10T13:00:00Z")
        );
        // Due 21:00 -> 09:00 the next day.
        assert_eq!(
            window.next_open(utc("2026-06-11T01:00:00Z"), ny),
            utc("2026-06-11T13:00:00Z")
        );
        // Inside the window: unchanged.
        assert_eq!(
            window.next_open(utc("2026-06-10T15:00:00Z"), ny),
            utc("2026-06-10T15:00:00Z")
        );
    }

    #[test]
    fn renewals_after_year_9999_are_refused() {
        let anchor = Anchor::new(local("2026-01-31T09:00"), tz("UTC"));
        let every = "120 months".parse().unwrap();
        assert!(anchor.nth(every, 797).is_ok(), "9986");
        assert_eq!(anchor.nth(every, 799), Err(ScheduleError::OutOfRange(799)));
    }

    #[test]
    fn reminders_come_before_their_renewal() {
        let berlin = tz("Europe/Berlin");
        let window = day_window();
        let renewal = local("2026-06-10T02:00");
        let early = utc("2026-06-01T00:00:00Z");
        // 3 days before at 02:00 local waits for 09:00 local on June 7.
        assert_eq!(
            reminder_instant(renewal, berlin, 3, &window, early),
            Some(utc("2026-06-07T07:00:00Z"))
        );
        // Zero lead at 02:00: the window opens after the renewal, so no reminder.
        assert_eq!(reminder_instant(renewal, berlin, 0, &window, early), None);
    }

    #[test]
    fn a_reminder_queued_late_waits_for_the_window() {
        let new_york = tz("America/New_York");
        let window = day_window();
        let renewal = local("2026-06-10T09:00");
        // Queued at 02:00 New York, days after its planned instant: at 09:00 that morning.
        assert_eq!(
            reminder_instant(renewal, new_york, 3, &window, utc("2026-06-08T06:00:00Z")),
            Some(utc("2026-06-08T13:00:00Z"))
        );
        // Queued at 23:00: at 09:00 the next morning.
        assert_eq!(
            reminder_instant(renewal, new_york, 3, &window, utc("2026-06-09T03:00:00Z")),
            Some(utc("2026-06-09T13:00:00Z"))
        );
        // Queued inside the window: at once.
        assert_eq!(
            reminder_instant(renewal, new_york, 3, &window, utc("2026-06-08T15:30:00Z")),
            Some(utc("2026-06-08T15:30:00Z"))
        );
        // Queued at 23:00 the night before the renewal: the next opening is the renewal's
        // own instant, so no reminder.
        assert_eq!(
            reminder_instant(renewal, new_york, 3, &window, utc("2026-06-10T03:00:00Z")),
            None
        );
    }

    fn arb_interval() -> impl Strategy<Value = Interval> {
        (
            1u32..=12,
            prop_oneof![
                Just(IntervalUnit::Day),
                Just(IntervalUnit::Week),
                Just(IntervalUnit::Month)
            ],
        )
            .prop_map(|(count, unit)| Interval::new(count, unit).unwrap())
    }

    fn arb_zone() -> impl Strategy<Value = Tz> {
        prop::sample::select(vec![
            "America/New_York",
            "Europe/Berlin",
            "Australia/Lord_Howe",
            "Asia/Kolkata",
            "Pacific/Chatham",
            "UTC",
        ])
        .prop_map(tz)
    }

    fn arb_local() -> impl Strategy<Value = NaiveDateTime> {
        (0i64..(365 * 8), 0u32..24, 0u32..60).prop_map(|(day, hour, minute)| {
            NaiveDate::from_ymd_opt(2024, 1, 1)
                .unwrap()
                .checked_add_days(Days::new(day as u64))
                .unwrap()
                .and_hms_opt(hour, minute, 0)
                .unwrap()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(500))]

        #[test]
        fn renewals_strictly_increase_and_never_drift(
            interval in arb_interval(), zone in arb_zone(), start in arb_local()
        ) {
            let anchor = Anchor::new(start, zone);
            let mut previous = anchor.nth(interval, 0).unwrap();
            for k in 1..=120 {
                let at = anchor.nth(interval, k).unwrap();
                prop_assert!(at > previous, "renewal {} not after {}", k, k - 1);
                // No drift: the local wall-clock time is the anchor's whenever it exists.
                let wall = anchor.nth_local(interval, k).unwrap();
                prop_assert_eq!(wall.time(), start.time());
                if let LocalResult::Single(t) = zone.from_local_datetime(&wall) {
                    prop_assert_eq!(at, t.with_timezone(&Utc));
                }
                previous = at;
            }
        }

        #[test]
        fn resolution_is_never_before_the_wall_clock_intent(zone in arb_zone(), wall in arb_local()) {
            // The resolved instant, read back in the zone, is the wall time itself, or (in a
            // gap) later than it by less than the gap.
            let at = resolve_local(zone, wall);
            let back = at.with_timezone(&zone).naive_local();
            prop_assert!(back >= wall);
            prop_assert!(back - wall <= TimeDelta::hours(2));
        }

        #[test]
        fn next_after_is_the_first_later_renewal(
            interval in arb_interval(), zone in arb_zone(), start in arb_local(), probe in arb_local()
        ) {
            let anchor = Anchor::new(start, zone);
            let probe = probe.and_utc();
            let (k, at) = anchor.next_after(interval, probe).unwrap();
            prop_assert!(at > probe);
            prop_assert_eq!(at, anchor.nth(interval, k).unwrap());
            if k > 0 {
                prop_assert!(anchor.nth(interval, k - 1).unwrap() <= probe);
            }
        }
    }
}
