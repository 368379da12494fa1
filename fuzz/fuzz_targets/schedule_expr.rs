//! EventBridge schedule expressions (`rate(...)`, `cron(...)`): `Schedule::parse`, then the
//! next firings from a few instants (inside, at the edges of, and outside the cron years).
//! The input is the expression, as PutRule's `ScheduleExpression` carries it.
//!
//! Properties: no panic (and no endless search); what parses strictly also parses with
//! `--schedule-seconds`, to the same schedule; a firing is strictly after the instant asked
//! about; a cron firing is a whole UTC minute within the cron years, and it is also the next
//! firing from just before it (the search skips no firing and invents none); a rate firing
//! is a whole number of periods after the anchor.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sous_types::schedule_expr::{ParseOptions, Schedule, YEAR_MAX, YEAR_MIN};
use time::macros::datetime;
use time::Duration;

fuzz_target!(|data: &[u8]| {
    let Ok(expr) = std::str::from_utf8(data) else {
        return;
    };
    let lenient = Schedule::parse(
        expr,
        ParseOptions {
            allow_seconds: true,
        },
    );
    let strict = Schedule::parse(expr, ParseOptions::default());
    if let Ok(s) = &strict {
        assert_eq!(lenient.as_ref().ok(), Some(s), "{expr:?}");
    }
    let Ok(schedule) = lenient else {
        return;
    };
    let anchor = datetime!(2026-12-01 12:00:00.250 UTC);
    let instants = [
        datetime!(1969-12-31 23:59:59 UTC),
        anchor,
        datetime!(2028-02-28 23:59:30 UTC),
        datetime!(2099-12-31 23:59:00 UTC),
        datetime!(2199-12-31 23:58:59.999 UTC),
        datetime!(2199-12-31 23:59:00 UTC),
    ];
    for after in instants {
        let Some(next) = schedule.next_fire_after(anchor, after) else {
            assert!(matches!(schedule, Schedule::Cron(_)), "a rate always fires");
            continue;
        };
        assert!(next > after, "{expr:?}: {next} is not after {after}");
        match &schedule {
            Schedule::Cron(cron) => {
                assert_eq!(next.second(), 0, "{expr:?}: {next}");
                assert_eq!(next.nanosecond(), 0, "{expr:?}: {next}");
                assert_eq!(next.offset(), time::UtcOffset::UTC);
                assert!(
                    (YEAR_MIN..=YEAR_MAX).contains(&next.year()),
                    "{expr:?}: {next}"
                );
                let just_before = next - Duration::nanoseconds(1);
                assert_eq!(
                    cron.next_fire_after(just_before),
                    Some(next),
                    "{expr:?}: from {just_before}"
                );
                // Nothing fires between `after` and `next`: not a minute before it either.
                let earlier = next - Duration::minutes(1) - Duration::nanoseconds(1);
                if earlier > after {
                    assert_ne!(
                        cron.next_fire_after(earlier),
                        Some(next - Duration::minutes(1)),
                        "{expr:?}: skipped a firing"
                    );
                }
            }
            Schedule::Rate(rate) => {
                let period = rate.period().whole_nanoseconds();
                let since = (next - anchor).whole_nanoseconds();
                assert!(since > 0 && since % period == 0, "{expr:?}: {next}");
                assert!(
                    next - rate.period() <= after.max(anchor),
                    "{expr:?}: {next}"
                );
            }
        }
    }
});
