//! EventBridge schedule expressions: `rate(value unit)` and six-field `cron(...)`, parsed with
//! EventBridge's rules and evaluated in UTC. Pure: the caller passes the clock.
//!
//! `rate(1 minute)`, `rate(5 minutes)`, `rate(1 hour)`, `rate(2 days)`: a positive integer and
//! a unit that is singular exactly when the value is 1, as EventBridge requires. A rate rule
//! fires every period counted from an anchor (when the schedule was set). The unit `second(s)`
//! is accepted only when [`ParseOptions::allow_seconds`] is set (Sous's development setting;
//! EventBridge's smallest rate is one minute).
//!
//! `cron(Minutes Hours Day-of-month Month Day-of-week Year)`:
//!
//! | field | values | wildcards |
//! | --- | --- | --- |
//! | Minutes | 0-59 | `, - * /` |
//! | Hours | 0-23 | `, - * /` |
//! | Day-of-month | 1-31 | `, - * ? / L W` |
//! | Month | 1-12 or JAN-DEC | `, - * /` |
//! | Day-of-week | 1-7 or SUN-SAT (1 = SUN) | `, - * ? L #` |
//! | Year | 1970-2199 | `, - * /` |
//!
//! Exactly one of Day-of-month and Day-of-week is `?`. `L` alone is the month's last day
//! (Day-of-month) or Saturday (Day-of-week); `5L` is the month's last Thursday; `LW` the last
//! weekday of the month; `15W` the weekday nearest the 15th, within the month; `3#2` the
//! month's second Tuesday (`#` only as the field's single expression). A range whose start is
//! after its end wraps around (`FRI-MON`), except in Year. Increments may not exceed the
//! field's largest value (`*/60` in Minutes is invalid).
//!
//! Every invalid expression is one error, [`InvalidSchedule`], whose message is EventBridge's
//! own (`Parameter ScheduleExpression is not valid.`); the reason is kept for logs.

use std::fmt;

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// EventBridge's message for any invalid schedule expression.
pub const INVALID_MESSAGE: &str = "Parameter ScheduleExpression is not valid.";

/// The first and last years a cron expression may name.
pub const YEAR_MIN: i32 = 1970;
pub const YEAR_MAX: i32 = 2199;

/// An invalid schedule expression. Displays as EventBridge's ValidationException message;
/// [`InvalidSchedule::reason`] says what is wrong, for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{INVALID_MESSAGE}")]
pub struct InvalidSchedule {
    reason: String,
}

impl InvalidSchedule {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }

    /// What is wrong with the expression.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// How strictly to parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Accept `rate(N second(s))` (development and tests; not EventBridge).
    pub allow_seconds: bool,
}

/// A parsed schedule expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Rate(Rate),
    Cron(Box<Cron>),
}

impl Schedule {
    /// Parse `rate(...)` or `cron(...)`.
    pub fn parse(expr: &str, opts: ParseOptions) -> Result<Schedule, InvalidSchedule> {
        if let Some(inner) = strip(expr, "rate(") {
            Rate::parse_inner(inner, opts).map(Schedule::Rate)
        } else if let Some(inner) = strip(expr, "cron(") {
            Cron::parse_inner(inner).map(|c| Schedule::Cron(Box::new(c)))
        } else {
            Err(InvalidSchedule::new(
                "an expression is rate(value unit) or cron(six fields)",
            ))
        }
    }

    /// The first firing strictly after `after`. `anchor` is when the schedule was set (rate
    /// expressions count their periods from it; cron ignores it). `None` when the expression
    /// never fires again (a cron expression whose years are over).
    pub fn next_fire_after(
        &self,
        anchor: OffsetDateTime,
        after: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        match self {
            Schedule::Rate(r) => Some(r.next_fire_after(anchor, after)),
            Schedule::Cron(c) => c.next_fire_after(after),
        }
    }
}

fn strip<'a>(expr: &'a str, prefix: &str) -> Option<&'a str> {
    expr.strip_prefix(prefix)?.strip_suffix(')')
}

/// `rate(value unit)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub value: u64,
    pub unit: RateUnit,
}

/// The unit of a rate expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateUnit {
    /// Only with [`ParseOptions::allow_seconds`].
    Second,
    Minute,
    Hour,
    Day,
}

impl RateUnit {
    fn seconds(self) -> u64 {
        match self {
            RateUnit::Second => 1,
            RateUnit::Minute => 60,
            RateUnit::Hour => 3600,
            RateUnit::Day => 86_400,
        }
    }
}

/// Longest period accepted (about 100 years), so that time arithmetic never overflows.
const RATE_MAX_SECONDS: u64 = 100 * 366 * 86_400;

impl Rate {
    fn parse_inner(inner: &str, opts: ParseOptions) -> Result<Rate, InvalidSchedule> {
        let mut parts = inner.split(' ');
        let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(InvalidSchedule::new(
                "a rate is a value and a unit separated by one space",
            ));
        };
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidSchedule::new("the rate's value is not a number"));
        }
        let value: u64 = value
            .parse()
            .map_err(|_| InvalidSchedule::new("the rate's value is too large"))?;
        if value == 0 {
            return Err(InvalidSchedule::new("the rate's value must be positive"));
        }
        let (unit, plural) = match unit {
            "second" => (RateUnit::Second, false),
            "seconds" => (RateUnit::Second, true),
            "minute" => (RateUnit::Minute, false),
            "minutes" => (RateUnit::Minute, true),
            "hour" => (RateUnit::Hour, false),
            "hours" => (RateUnit::Hour, true),
            "day" => (RateUnit::Day, false),
            "days" => (RateUnit::Day, true),
            _ => {
                return Err(InvalidSchedule::new(
                    "the rate's unit is minute(s), hour(s) or day(s)",
                ))
            }
        };
        if unit == RateUnit::Second && !opts.allow_seconds {
            return Err(InvalidSchedule::new(
                "rates in seconds need the server's --schedule-seconds setting",
            ));
        }
        if plural != (value != 1) {
            return Err(InvalidSchedule::new(
                "the unit is singular when the value is 1 and plural otherwise",
            ));
        }
        if value
            .checked_mul(unit.seconds())
            .is_none_or(|s| s > RATE_MAX_SECONDS)
        {
            return Err(InvalidSchedule::new("the rate's period is too long"));
        }
        Ok(Rate { value, unit })
    }

    /// The period between firings.
    pub fn period(&self) -> Duration {
        // Bounded by RATE_MAX_SECONDS at parse time.
        Duration::seconds((self.value * self.unit.seconds()) as i64)
    }

    /// The first `anchor + k × period` (k ≥ 1) strictly after `after`.
    pub fn next_fire_after(&self, anchor: OffsetDateTime, after: OffsetDateTime) -> OffsetDateTime {
        let period = self.period();
        if after < anchor {
            return anchor + period;
        }
        let period_ns = period.whole_nanoseconds();
        let elapsed_ns = (after - anchor).whole_nanoseconds();
        let k = elapsed_ns / period_ns + 1;
        let offset_ns = k * period_ns;
        anchor + Duration::nanoseconds_i128(offset_ns)
    }
}

/// A set of values of one field, `min..=max`.
#[derive(Clone, PartialEq, Eq)]
struct ValueSet {
    min: u16,
    bits: Vec<bool>,
}

impl fmt::Debug for ValueSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values: Vec<u16> = self.iter_from(self.min).collect();
        write!(f, "{values:?}")
    }
}

impl ValueSet {
    fn empty(min: u16, max: u16) -> Self {
        Self {
            min,
            bits: vec![false; usize::from(max - min) + 1],
        }
    }

    fn max(&self) -> u16 {
        self.min + self.bits.len() as u16 - 1
    }

    fn insert(&mut self, v: u16) {
        self.bits[usize::from(v - self.min)] = true;
    }

    fn contains(&self, v: u16) -> bool {
        v >= self.min
            && self
                .bits
                .get(usize::from(v - self.min))
                .copied()
                .unwrap_or(false)
    }

    /// Members `>= from`, ascending.
    fn iter_from(&self, from: u16) -> impl Iterator<Item = u16> + '_ {
        let start = from.max(self.min);
        (start..=self.max()).filter(|v| self.contains(*v))
    }
}

/// One numeric field's rules.
struct Field {
    what: &'static str,
    min: u16,
    max: u16,
    names: &'static [&'static str],
    wrap: bool,
}

const MINUTES: Field = Field {
    what: "Minutes",
    min: 0,
    max: 59,
    names: &[],
    wrap: true,
};
const HOURS: Field = Field {
    what: "Hours",
    min: 0,
    max: 23,
    names: &[],
    wrap: true,
};
const DAYS_OF_MONTH: Field = Field {
    what: "Day-of-month",
    min: 1,
    max: 31,
    names: &[],
    wrap: true,
};
const MONTHS: Field = Field {
    what: "Month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
    wrap: true,
};
const DAYS_OF_WEEK: Field = Field {
    what: "Day-of-week",
    min: 1,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
    wrap: true,
};
const YEARS: Field = Field {
    what: "Year",
    min: YEAR_MIN as u16,
    max: YEAR_MAX as u16,
    names: &[],
    wrap: false,
};

impl Field {
    fn err(&self, text: &str, why: &str) -> InvalidSchedule {
        InvalidSchedule::new(format!("{} '{text}': {why}", self.what))
    }

    fn value(&self, text: &str) -> Result<u16, InvalidSchedule> {
        let upper = text.to_ascii_uppercase();
        if let Some(i) = self.names.iter().position(|n| *n == upper) {
            return Ok(self.min + i as u16);
        }
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 4 {
            return Err(self.err(text, "not a value of this field"));
        }
        let v: u16 = text
            .parse()
            .map_err(|_| self.err(text, "not a value of this field"))?;
        if v < self.min || v > self.max {
            return Err(self.err(text, &format!("out of range {}-{}", self.min, self.max)));
        }
        Ok(v)
    }

    /// `*`, values, ranges and increments, separated by commas.
    fn parse_set(&self, text: &str) -> Result<ValueSet, InvalidSchedule> {
        let mut set = ValueSet::empty(self.min, self.max);
        for item in text.split(',') {
            let (base, step) = match item.split_once('/') {
                Some((b, s)) => {
                    let step = self.step(s)?;
                    (b, Some(step))
                }
                None => (item, None),
            };
            let (start, end) = if base == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = base.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b && !self.wrap {
                    return Err(self.err(item, "a range's start is after its end"));
                }
                (a, b)
            } else {
                let a = self.value(base)?;
                // `a/step` runs to the field's end; a bare value is itself.
                (a, if step.is_some() { self.max } else { a })
            };
            let step = step.unwrap_or(1);
            let span = self.max - self.min + 1;
            let count = if start <= end {
                end - start + 1
            } else {
                (self.max - start + 1) + (end - self.min + 1)
            };
            let mut offset = 0;
            while offset < count {
                let v = self.min + (start - self.min + offset) % span;
                set.insert(v);
                offset += step;
            }
        }
        Ok(set)
    }

    fn step(&self, text: &str) -> Result<u16, InvalidSchedule> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) || text.len() > 4 {
            return Err(self.err(text, "an increment is a positive number"));
        }
        let step: u16 = text
            .parse()
            .map_err(|_| self.err(text, "an increment is a positive number"))?;
        if step == 0 || (self.min < 1000 && step > self.max) {
            return Err(self.err(text, "increment out of range"));
        }
        Ok(step)
    }
}

/// How the Day-of-month field selects days.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MonthDays {
    /// `?`: Day-of-week decides.
    Unspecified,
    Set(ValueSet),
    /// `L`
    Last,
    /// `LW`
    LastWeekday,
    /// `15W`
    NearestWeekday(u8),
}

/// How the Day-of-week field selects days (1 = Sunday ... 7 = Saturday).
#[derive(Debug, Clone, PartialEq, Eq)]
enum WeekDays {
    /// `?`: Day-of-month decides.
    Unspecified,
    Set(ValueSet),
    /// `5L`: the month's last Thursday.
    LastOfMonth(u8),
    /// `3#2`: the month's second Tuesday.
    Nth {
        weekday: u8,
        n: u8,
    },
}

/// `cron(Minutes Hours Day-of-month Month Day-of-week Year)`, in UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: ValueSet,
    hours: ValueSet,
    month_days: MonthDays,
    months: ValueSet,
    week_days: WeekDays,
    years: ValueSet,
}

impl Cron {
    fn parse_inner(inner: &str) -> Result<Cron, InvalidSchedule> {
        let fields: Vec<&str> = inner.split_whitespace().collect();
        let [minutes, hours, dom, month, dow, year] = fields[..] else {
            return Err(InvalidSchedule::new(format!(
                "a cron expression has six fields, not {}",
                fields.len()
            )));
        };
        let month_days = parse_month_days(dom)?;
        let week_days = parse_week_days(dow)?;
        match (&month_days, &week_days) {
            (MonthDays::Unspecified, WeekDays::Unspecified) => {
                return Err(InvalidSchedule::new(
                    "Day-of-month and Day-of-week cannot both be ?",
                ))
            }
            (MonthDays::Unspecified, _) | (_, WeekDays::Unspecified) => {}
            _ => {
                return Err(InvalidSchedule::new(
                    "one of Day-of-month and Day-of-week must be ?",
                ))
            }
        }
        Ok(Cron {
            minutes: MINUTES.parse_set(minutes)?,
            hours: HOURS.parse_set(hours)?,
            month_days,
            months: MONTHS.parse_set(month)?,
            week_days,
            years: YEARS.parse_set(year)?,
        })
    }

    /// The first firing strictly after `after` (whole minutes, UTC), or `None` when the
    /// expression's years are over.
    pub fn next_fire_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let after = after.to_offset(UtcOffset::UTC);
        let mut date = after.date();
        // The first whole minute strictly after `after`.
        let mut from_minute = u16::from(after.hour()) * 60 + u16::from(after.minute()) + 1;
        if from_minute >= 24 * 60 {
            date = date.next_day()?;
            from_minute = 0;
        }
        loop {
            let year = date.year();
            if year > YEAR_MAX {
                return None;
            }
            if year < YEAR_MIN || !self.years.contains(year as u16) {
                let next = self
                    .years
                    .iter_from((year + 1).max(YEAR_MIN) as u16)
                    .next()?;
                date = Date::from_calendar_date(i32::from(next), Month::January, 1).ok()?;
                from_minute = 0;
                continue;
            }
            let month = u8::from(date.month());
            if !self.months.contains(u16::from(month)) {
                date = match self.months.iter_from(u16::from(month) + 1).next() {
                    Some(m) => Date::from_calendar_date(year, month_of(m)?, 1).ok()?,
                    None => Date::from_calendar_date(year + 1, Month::January, 1).ok()?,
                };
                from_minute = 0;
                continue;
            }
            if self.day_matches(date) {
                if let Some(m) = self.first_time_from(from_minute) {
                    let time = Time::from_hms((m / 60) as u8, (m % 60) as u8, 0).ok()?;
                    return Some(PrimitiveDateTime::new(date, time).assume_utc());
                }
            }
            date = date.next_day()?;
            from_minute = 0;
        }
    }

    /// The first minute of the day (`hour × 60 + minute`) at or after `from` in the sets.
    fn first_time_from(&self, from: u16) -> Option<u16> {
        let (from_h, from_m) = (from / 60, from % 60);
        for h in self.hours.iter_from(from_h) {
            let start = if h == from_h { from_m } else { 0 };
            if let Some(m) = self.minutes.iter_from(start).next() {
                return Some(h * 60 + m);
            }
        }
        None
    }

    fn day_matches(&self, date: Date) -> bool {
        let day = date.day();
        let last = date.month().length(date.year());
        let weekday = date.weekday().number_days_from_sunday() + 1;
        let month_days_ok = match &self.month_days {
            MonthDays::Unspecified => true,
            MonthDays::Set(s) => s.contains(u16::from(day)),
            MonthDays::Last => day == last,
            MonthDays::LastWeekday => day == nearest_weekday(date, last, last),
            MonthDays::NearestWeekday(n) => *n <= last && day == nearest_weekday(date, *n, last),
        };
        let week_days_ok = match &self.week_days {
            WeekDays::Unspecified => true,
            WeekDays::Set(s) => s.contains(u16::from(weekday)),
            WeekDays::LastOfMonth(w) => *w == weekday && day + 7 > last,
            WeekDays::Nth { weekday: w, n } => *w == weekday && (day - 1) / 7 + 1 == *n,
        };
        month_days_ok && week_days_ok
    }
}

/// The weekday (Monday-Friday) nearest day `n` of `date`'s month, never leaving the month.
fn nearest_weekday(date: Date, n: u8, last: u8) -> u8 {
    let Ok(target) = date.replace_day(n) else {
        return 0;
    };
    match target.weekday() {
        time::Weekday::Saturday if n == 1 => 3,
        time::Weekday::Saturday => n - 1,
        time::Weekday::Sunday if n == last => n - 2,
        time::Weekday::Sunday => n + 1,
        _ => n,
    }
}

fn month_of(m: u16) -> Option<Month> {
    Month::try_from(u8::try_from(m).ok()?).ok()
}

fn parse_month_days(text: &str) -> Result<MonthDays, InvalidSchedule> {
    match text {
        "?" => return Ok(MonthDays::Unspecified),
        "L" => return Ok(MonthDays::Last),
        "LW" => return Ok(MonthDays::LastWeekday),
        _ => {}
    }
    if let Some(n) = text.strip_suffix('W') {
        let n = DAYS_OF_MONTH.value(n)?;
        return Ok(MonthDays::NearestWeekday(n as u8));
    }
    if text.contains(['L', 'W', '?', '#']) {
        return Err(DAYS_OF_MONTH.err(text, "L, W and ? stand alone"));
    }
    DAYS_OF_MONTH.parse_set(text).map(MonthDays::Set)
}

fn parse_week_days(text: &str) -> Result<WeekDays, InvalidSchedule> {
    match text {
        "?" => return Ok(WeekDays::Unspecified),
        // `L` alone is the week's last day, Saturday.
        "L" => {
            let mut s = ValueSet::empty(DAYS_OF_WEEK.min, DAYS_OF_WEEK.max);
            s.insert(7);
            return Ok(WeekDays::Set(s));
        }
        _ => {}
    }
    if let Some((w, n)) = text.split_once('#') {
        let weekday = DAYS_OF_WEEK.value(w)? as u8;
        let n: u8 = match n {
            "1" => 1,
            "2" => 2,
            "3" => 3,
            "4" => 4,
            "5" => 5,
            _ => return Err(DAYS_OF_WEEK.err(text, "# takes an instance 1-5")),
        };
        return Ok(WeekDays::Nth { weekday, n });
    }
    if let Some(w) = text.strip_suffix('L').filter(|w| !w.contains(',')) {
        let weekday = DAYS_OF_WEEK.value(w)? as u8;
        return Ok(WeekDays::LastOfMonth(weekday));
    }
    // No day name contains L, # or ?: here they can only be misplaced wildcards.
    if text.contains(['L', '?', '#']) {
        return Err(DAYS_OF_WEEK.err(text, "L, # and ? stand alone"));
    }
    DAYS_OF_WEEK.parse_set(text).map(WeekDays::Set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const DEV: ParseOptions = ParseOptions {
        allow_seconds: true,
    };

    fn cron(expr: &str) -> Schedule {
        Schedule::parse(expr, ParseOptions::default())
            .unwrap_or_else(|e| panic!("{expr}: {}", e.reason()))
    }

    /// (expression, after, the next firings in order)
    #[test]
    fn cron_next_fire_table() {
        let anchor = datetime!(2000-01-01 0:00 UTC);
        let table: &[(&str, OffsetDateTime, &[OffsetDateTime])] = &[
            // Every day at 10:00.
            (
                "cron(0 10 * * ? *)",
                datetime!(2024-03-10 9:59:59 UTC),
                &[
                    datetime!(2024-03-10 10:00 UTC),
                    datetime!(2024-03-11 10:00 UTC),
                ],
            ),
            // Strictly after: at 10:00:00 exactly, the next is tomorrow.
            (
                "cron(0 10 * * ? *)",
                datetime!(2024-03-10 10:00 UTC),
                &[datetime!(2024-03-11 10:00 UTC)],
            ),
            // 12:15 every day.
            (
                "cron(15 12 * * ? *)",
                datetime!(2024-12-31 23:00 UTC),
                &[datetime!(2025-01-01 12:15 UTC)],
            ),
            // 18:00 Monday to Friday.
            (
                "cron(0 18 ? * MON-FRI *)",
                datetime!(2024-03-08 18:00 UTC), // a Friday
                &[
                    datetime!(2024-03-11 18:00 UTC),
                    datetime!(2024-03-12 18:00 UTC),
                ],
            ),
            // 08:00 on the first of every month.
            (
                "cron(0 8 1 * ? *)",
                datetime!(2024-01-15 0:00 UTC),
                &[
                    datetime!(2024-02-01 8:00 UTC),
                    datetime!(2024-03-01 8:00 UTC),
                ],
            ),
            // Every 10 minutes on weekdays.
            (
                "cron(0/10 * ? * MON-FRI *)",
                datetime!(2024-03-08 23:45 UTC),
                &[
                    datetime!(2024-03-08 23:50 UTC),
                    datetime!(2024-03-11 0:00 UTC),
                ],
            ),
            // Every 5 minutes between 8:00 and 17:55 on weekdays.
            (
                "cron(0/5 8-17 ? * MON-FRI *)",
                datetime!(2024-03-11 17:56 UTC),
                &[
                    datetime!(2024-03-12 8:00 UTC),
                    datetime!(2024-03-12 8:05 UTC),
                ],
            ),
            // 09:00 on the first Monday of every month.
            (
                "cron(0 9 ? * 2#1 *)",
                datetime!(2024-03-05 0:00 UTC),
                &[
                    datetime!(2024-04-01 9:00 UTC),
                    datetime!(2024-05-06 9:00 UTC),
                ],
            ),
            // 1/10: the 11th, 21st, ... minute, as the docs say.
            (
                "cron(1/10 * * * ? *)",
                datetime!(2024-03-10 10:05 UTC),
                &[
                    datetime!(2024-03-10 10:11 UTC),
                    datetime!(2024-03-10 10:21 UTC),
                ],
            ),
            // A range with a step.
            (
                "cron(10-30/10 6 * * ? *)",
                datetime!(2024-03-10 6:10 UTC),
                &[
                    datetime!(2024-03-10 6:20 UTC),
                    datetime!(2024-03-10 6:30 UTC),
                    datetime!(2024-03-11 6:10 UTC),
                ],
            ),
            // L: the last day of the month, through a leap February.
            (
                "cron(0 0 L * ? *)",
                datetime!(2024-01-31 0:00 UTC),
                &[
                    datetime!(2024-02-29 0:00 UTC),
                    datetime!(2024-03-31 0:00 UTC),
                    datetime!(2024-04-30 0:00 UTC),
                ],
            ),
            // ... and a common February.
            (
                "cron(0 0 L 2 ? *)",
                datetime!(2024-03-01 0:00 UTC),
                &[
                    datetime!(2025-02-28 0:00 UTC),
                    datetime!(2026-02-28 0:00 UTC),
                ],
            ),
            // February 29th only in leap years; 2100 is not one.
            (
                "cron(0 12 29 FEB ? *)",
                datetime!(2097-01-01 0:00 UTC),
                &[datetime!(2104-02-29 12:00 UTC)],
            ),
            // The 31st skips short months.
            (
                "cron(0 0 31 * ? *)",
                datetime!(2024-03-31 0:00 UTC),
                &[
                    datetime!(2024-05-31 0:00 UTC),
                    datetime!(2024-07-31 0:00 UTC),
                ],
            ),
            // 6L: the last Friday of the month.
            (
                "cron(0 17 ? * 6L *)",
                datetime!(2024-03-01 0:00 UTC),
                &[
                    datetime!(2024-03-29 17:00 UTC),
                    datetime!(2024-04-26 17:00 UTC),
                ],
            ),
            // L in Day-of-week alone: Saturday.
            (
                "cron(0 0 ? * L *)",
                datetime!(2024-03-10 0:00 UTC), // a Sunday
                &[datetime!(2024-03-16 0:00 UTC)],
            ),
            // 15W: 2024-06-15 is a Saturday → Friday the 14th; 2024-09-15 a Sunday → Monday 16.
            (
                "cron(0 9 15W * ? 2024)",
                datetime!(2024-06-01 0:00 UTC),
                &[
                    datetime!(2024-06-14 9:00 UTC),
                    datetime!(2024-07-15 9:00 UTC),
                    datetime!(2024-08-15 9:00 UTC),
                    datetime!(2024-09-16 9:00 UTC),
                ],
            ),
            // 1W when the 1st is a Saturday (2024-06-01) → Monday the 3rd, never May 31st.
            (
                "cron(0 0 1W 6 ? *)",
                datetime!(2024-05-01 0:00 UTC),
                &[datetime!(2024-06-03 0:00 UTC)],
            ),
            // LW: the last weekday; 2024-03-31 is a Sunday → Friday the 29th.
            (
                "cron(0 0 LW * ? *)",
                datetime!(2024-03-01 0:00 UTC),
                &[
                    datetime!(2024-03-29 0:00 UTC),
                    datetime!(2024-04-30 0:00 UTC),
                ],
            ),
            // 31W when the 31st is a Sunday (2024-03-31) → Friday the 29th.
            (
                "cron(0 0 31W 3 ? *)",
                datetime!(2024-01-01 0:00 UTC),
                &[datetime!(2024-03-29 0:00 UTC)],
            ),
            // Month names and lists; year bounds.
            (
                "cron(30 2 1 JAN,jul ? 2025-2026)",
                datetime!(2024-12-31 23:59 UTC),
                &[
                    datetime!(2025-01-01 2:30 UTC),
                    datetime!(2025-07-01 2:30 UTC),
                    datetime!(2026-01-01 2:30 UTC),
                    datetime!(2026-07-01 2:30 UTC),
                ],
            ),
            // The last possible firing.
            (
                "cron(59 23 31 12 ? 2199)",
                datetime!(2199-12-31 23:58 UTC),
                &[datetime!(2199-12-31 23:59 UTC)],
            ),
            // Wrapping ranges: Friday to Monday; 22:00 to 01:00.
            (
                "cron(0 22-1 ? * FRI-MON *)",
                datetime!(2024-03-07 23:00 UTC), // a Thursday
                &[
                    datetime!(2024-03-08 0:00 UTC),
                    datetime!(2024-03-08 1:00 UTC),
                    datetime!(2024-03-08 22:00 UTC),
                ],
            ),
            // Every minute, with seconds in `after`.
            (
                "cron(* * * * ? *)",
                datetime!(2024-03-10 10:00:30.5 UTC),
                &[
                    datetime!(2024-03-10 10:01 UTC),
                    datetime!(2024-03-10 10:02 UTC),
                ],
            ),
            // Year step.
            (
                "cron(0 0 1 1 ? 2030/10)",
                datetime!(2024-01-01 0:00 UTC),
                &[
                    datetime!(2030-01-01 0:00 UTC),
                    datetime!(2040-01-01 0:00 UTC),
                ],
            ),
            // Day-of-week numbers: 1 = Sunday.
            (
                "cron(0 0 ? * 1 *)",
                datetime!(2024-03-10 0:00 UTC),
                &[datetime!(2024-03-17 0:00 UTC)],
            ),
            // Fifth Friday exists only in some months: 2024-03-29, then 2024-05-31.
            (
                "cron(0 0 ? * FRI#5 *)",
                datetime!(2024-03-01 0:00 UTC),
                &[
                    datetime!(2024-03-29 0:00 UTC),
                    datetime!(2024-05-31 0:00 UTC),
                ],
            ),
        ];
        for (expr, after, expected) in table {
            let s = cron(expr);
            let mut t = *after;
            for want in *expected {
                let got = s.next_fire_after(anchor, t);
                assert_eq!(got, Some(*want), "{expr} after {t}");
                t = *want;
            }
        }
    }

    #[test]
    fn cron_with_years_over_never_fires() {
        let s = cron("cron(0 0 1 1 ? 2020)");
        let t = datetime!(2024-01-01 0:00 UTC);
        assert_eq!(s.next_fire_after(t, t), None);
        let s = cron("cron(59 23 31 12 ? *)");
        assert_eq!(s.next_fire_after(t, datetime!(2199-12-31 23:59 UTC)), None);
    }

    #[test]
    fn rates_count_periods_from_the_anchor() {
        let anchor = datetime!(2024-03-10 10:00:07 UTC);
        let table: &[(&str, OffsetDateTime, OffsetDateTime)] = &[
            ("rate(1 minute)", anchor, datetime!(2024-03-10 10:01:07 UTC)),
            (
                "rate(5 minutes)",
                datetime!(2024-03-10 10:12:00 UTC),
                datetime!(2024-03-10 10:15:07 UTC),
            ),
            (
                "rate(1 hour)",
                datetime!(2024-03-10 11:00:07 UTC),
                datetime!(2024-03-10 12:00:07 UTC),
            ),
            (
                "rate(2 hours)",
                datetime!(2024-03-09 0:00 UTC), // before the anchor
                datetime!(2024-03-10 12:00:07 UTC),
            ),
            (
                "rate(1 day)",
                datetime!(2024-03-20 0:00 UTC),
                datetime!(2024-03-20 10:00:07 UTC),
            ),
            (
                "rate(7 days)",
                datetime!(2024-03-10 10:00:08 UTC),
                datetime!(2024-03-17 10:00:07 UTC),
            ),
        ];
        for (expr, after, want) in table {
            let s = Schedule::parse(expr, ParseOptions::default()).unwrap();
            assert_eq!(s.next_fire_after(anchor, *after), Some(*want), "{expr}");
        }
        let s = Schedule::parse("rate(2 seconds)", DEV).unwrap();
        assert_eq!(
            s.next_fire_after(anchor, datetime!(2024-03-10 10:00:08.5 UTC)),
            Some(datetime!(2024-03-10 10:00:09 UTC))
        );
        let s = Schedule::parse("rate(1 second)", DEV).unwrap();
        assert_eq!(
            s.next_fire_after(anchor, datetime!(2024-03-10 10:00:09 UTC)),
            Some(datetime!(2024-03-10 10:00:10 UTC))
        );
    }

    #[test]
    fn valid_expressions_parse() {
        for expr in [
            "rate(1 minute)",
            "rate(2 minutes)",
            "rate(1 hour)",
            "rate(12 hours)",
            "rate(1 day)",
            "rate(30 days)",
            "cron(0 10 * * ? *)",
            "cron(0/15 * * * ? *)",
            "cron(*/5 * * * ? *)",
            "cron(0 8 ? * MON-FRI *)",
            "cron(0 8 ? * mon-fri *)",
            "cron(0 0 ? * 3#2 *)",
            "cron(0 0 L * ? *)",
            "cron(0 0 LW * ? *)",
            "cron(0 0 3W * ? *)",
            "cron(0 0 ? * 6L *)",
            "cron(0 0 ? * FRIL *)",
            "cron(0 0 1,15 * ? *)",
            "cron(0 0 1-7/2 JAN-MAR ? 1970-2199)",
            "cron(0  0   * * ? *)",
            "cron(59 23 * 12 ? 2199)",
        ] {
            if let Err(e) = Schedule::parse(expr, ParseOptions::default()) {
                panic!("{expr} should parse: {}", e.reason());
            }
        }
    }

    #[test]
    fn invalid_expressions_are_refused_with_eventbridges_message() {
        for expr in [
            "",
            "rate()",
            "rate(0 minutes)",
            "rate(-1 minutes)",
            "rate(1 minutes)",
            "rate(5 minute)",
            "rate(1 hours)",
            "rate(2 day)",
            "rate(1.5 hours)",
            "rate(5  minutes)",
            "rate( 5 minutes)",
            "rate(5 weeks)",
            "rate(5 Minutes)",
            "rate(10 seconds)",
            "rate(1 second)",
            "rate 5 minutes",
            "cron(* * * * *)",
            "cron(*/1 * * * *)",
            "cron(0 10 * * * *)",
            "cron(0 10 ? * ? *)",
            "cron(7 20 * * 1-7 *)",
            "cron(60 * * * ? *)",
            "cron(0 24 * * ? *)",
            "cron(0 0 0 * ? *)",
            "cron(0 0 32 * ? *)",
            "cron(0 0 * 13 ? *)",
            "cron(0 0 ? * 8 *)",
            "cron(0 0 ? * 0 *)",
            "cron(0 0 1 1 ? 1969)",
            "cron(0 0 1 1 ? 2200)",
            "cron(0 0 1 1 ? 2030-2025)",
            "cron(*/60 * * * ? *)",
            "cron(0/0 * * * ? *)",
            "cron(0 0 ? * 3#1,6#3 *)",
            "cron(0 0 ? * 3#6 *)",
            "cron(0 0 L,15 * ? *)",
            "cron(0 0 32W * ? *)",
            "cron(0 0 ? * 9L *)",
            "cron(0 0 * FOO ? *)",
            "cron(0 0 * * ? * *)",
            "cron(0/5, 9-18, ?, *, MON-FRI, *)",
            "cron(a b c d e f)",
            "CRON(0 10 * * ? *)",
            "cron(0 10 * * ? *",
            "cron(0 10 * * ? *) ",
        ] {
            let err = Schedule::parse(expr, ParseOptions::default())
                .expect_err(&format!("{expr} should be refused"));
            assert_eq!(
                err.to_string(),
                "Parameter ScheduleExpression is not valid."
            );
            assert!(!err.reason().is_empty());
        }
        // Seconds need the development setting.
        assert!(Schedule::parse("rate(10 seconds)", DEV).is_ok());
        assert!(Schedule::parse("rate(1 seconds)", DEV).is_err());
    }
}
