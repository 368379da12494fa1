//! Lambda's timestamp formats.

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
    }
}
