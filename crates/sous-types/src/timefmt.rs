//! The timestamp formats of Lambda and the services Sous speaks for, in one place.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

const LAST_MODIFIED: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000");

/// `2020-04-10T19:06:32.563+0000`: the format of `LastModified` and other `Timestamp` strings.
pub fn last_modified(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(LAST_MODIFIED)
        .expect("a UTC time always formats")
}

/// `2020/01/14`: the date prefix of a log stream name.
pub fn stream_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{:04}/{:02}/{:02}", t.year(), u8::from(t.month()), t.day())
}

/// `2019-06-07T19:11:20.564Z`: RFC 3339 with milliseconds, as Lambda's log lines print time.
pub fn log_time(t: OffsetDateTime) -> String {
    const F: &[FormatItem<'static>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(F)
        .expect("a UTC time always formats")
}

/// `2020-04-10T19:06:32Z`: whole seconds, as API Gateway's `__timestampIso8601` members and
/// EventBridge's Scheduled Event `time`.
pub fn iso8601_seconds(t: OffsetDateTime) -> String {
    const F: &[FormatItem<'static>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(F)
        .expect("a UTC time always formats")
}

/// `2021-12-08T22:06:39.614467Z`: microseconds, as function URL configs' `CreationTime` and
/// `LastModifiedTime`.
pub fn iso8601_micros(t: OffsetDateTime) -> String {
    const F: &[FormatItem<'static>] =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(F)
        .expect("a UTC time always formats")
}

/// `28/Nov/2026:22:52:53 +0000`: the `requestContext.time` of HTTP events.
pub fn request_time(t: OffsetDateTime) -> String {
    const F: &[FormatItem<'static>] =
        format_description!("[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000");
    t.to_offset(time::UtcOffset::UTC)
        .format(F)
        .expect("a UTC time always formats")
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_like_aws() {
        let t = datetime!(2020-04-10 19:06:32.563 UTC);
        assert_eq!(last_modified(t), "2020-04-10T19:06:32.563+0000");
        assert_eq!(stream_date(t), "2020/04/10");
        assert_eq!(log_time(t), "2020-04-10T19:06:32.563Z");
        assert_eq!(iso8601_seconds(t), "2020-04-10T19:06:32Z");
        assert_eq!(iso8601_micros(t), "2020-04-10T19:06:32.563000Z");
        assert_eq!(request_time(t), "10/Apr/2020:19:06:32 +0000");
    }
}
