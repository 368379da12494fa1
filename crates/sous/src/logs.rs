//! `sous logs FUNCTION`: print a function's stored log streams, oldest first, as
//! `aws logs tail` does for a log group: `--since` bounds the start, `--filter` keeps the events
//! that contain a text, `--follow` keeps printing what the streams gain until interrupted.
//!
//! The streams are files under `<data-dir>/logs/<function>/` whose lines are
//! `epoch-ms\tmessage` (the message escaped, one event a line). Whether the function exists is
//! the store's answer (`sous.db`), so that "no such function" and "no invocations yet" differ.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};

/// What to print.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Only events at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only events whose message contains this text.
    pub filter: Option<String>,
    /// Keep printing new events until interrupted.
    pub follow: bool,
}

/// How often `--follow` looks at the streams.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

/// Parses `--since`: a duration back from now (`30s`, `10m`, `1h`, `2d`, `1w`, as `aws logs
/// tail --since`) or an RFC 3339 time (`2024-05-01T12:00:00Z`). Returns ms since the epoch.
pub fn parse_since(text: &str, now: SystemTime) -> anyhow::Result<i64> {
    let now_ms = i64::try_from(
        now.duration_since(UNIX_EPOCH)
            .context("the clock is before 1970")?
            .as_millis(),
    )
    .context("the clock is past the year 292 million")?;
    let t = text.trim();
    if let Some(unit) = t.chars().last().filter(|c| c.is_ascii_alphabetic()) {
        let digits = &t[..t.len() - 1];
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            let n: i64 = digits
                .parse()
                .with_context(|| format!("--since {text:?}: number too large"))?;
            let unit_ms: i64 = match unit {
                's' => 1_000,
                'm' => 60_000,
                'h' => 3_600_000,
                'd' => 86_400_000,
                'w' => 604_800_000,
                _ => bail!(
                    "--since {text:?}: unknown unit {unit:?} (use s, m, h, d or w, or an RFC 3339 time)"
                ),
            };
            let back = n
                .checked_mul(unit_ms)
                .with_context(|| format!("--since {text:?}: too far back"))?;
            return Ok(now_ms.saturating_sub(back));
        }
    }
    let at = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
        .with_context(|| {
            format!(
                "--since {text:?}: neither a duration (30s, 10m, 1h, 2d, 1w) nor an RFC 3339 time \
                 (2024-05-01T12:00:00Z)"
            )
        })?;
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000)
        .with_context(|| format!("--since {text:?}: out of range"))
}

/// Whether `function` exists in the store of `data_dir` (its `$LATEST`).
fn function_exists(data_dir: &Path, function: &str) -> anyhow::Result<bool> {
    if !data_dir.join("sous.db").is_file() {
        bail!(
            "no Sous data in {} (no sous.db): pass the --data-dir (or SOUS_DATA_DIR) that \
             `sous serve` uses",
            data_dir.display()
        );
    }
    let store = sous_store::Store::open(data_dir)
        .with_context(|| format!("open the store in {}", data_dir.display()))?;
    Ok(store
        .get_function(function, sous_store::db::LATEST)
        .with_context(|| format!("look up function {function}"))?
        .is_some())
}

/// `sous logs`: see the module's documentation.
pub fn print(data_dir: &Path, function: &str, opts: &Options) -> anyhow::Result<()> {
    let exists = function_exists(data_dir, function)?;
    let dir = data_dir.join("logs").join(function);
    let mut streams = Streams::default();
    let first = streams.read_new(&dir)?;
    if !exists && !dir.is_dir() {
        bail!("no function named {function:?} (and no stored logs of one)");
    }
    if !exists {
        eprintln!("sous: function {function:?} does not exist (any more); its stored logs follow");
    } else if !dir.is_dir() && !opts.follow {
        eprintln!("sous: {function} has no invocations yet: no log streams");
    }
    let mut out = std::io::stdout().lock();
    write_events(&mut out, first, opts)?;
    if !opts.follow {
        return Ok(());
    }
    loop {
        std::thread::sleep(FOLLOW_POLL);
        let events = streams.read_new(&dir)?;
        write_events(&mut out, events, opts)?;
    }
}

fn write_events(
    out: &mut impl Write,
    mut events: Vec<(i64, String)>,
    opts: &Options,
) -> anyhow::Result<()> {
    events.sort_by_key(|(ms, _)| *ms);
    for (ms, message) in events {
        if opts.since_ms.is_some_and(|since| ms < since) {
            continue;
        }
        if opts.filter.as_deref().is_some_and(|f| !message.contains(f)) {
            continue;
        }
        if let Err(e) = writeln!(out, "{message}") {
            // The reader went away (`sous logs f | head`): nothing more to print.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e).context("write to stdout");
        }
    }
    out.flush().or_else(|e| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Ok(())
        } else {
            Err(e).context("write to stdout")
        }
    })
}

/// The streams of one function and how much of each has been read.
#[derive(Default)]
struct Streams {
    /// Bytes of complete lines already read, per stream file.
    read: BTreeMap<PathBuf, u64>,
}

impl Streams {
    /// The events the streams under `dir` gained since the last call (every event the first
    /// time), as (epoch ms, unescaped message). A line not yet ended by `\n` is left for the
    /// next call.
    fn read_new(&mut self, dir: &Path) -> anyhow::Result<Vec<(i64, String)>> {
        let mut files = Vec::new();
        match collect(dir, &mut files) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(e).with_context(|| format!("read log streams in {}", dir.display()))
            }
        }
        files.sort();
        let mut events = Vec::new();
        for path in files {
            let done = self.read.get(&path).copied().unwrap_or(0);
            let bytes = match std::fs::read(&path) {
                Ok(b) => b,
                // A stream removed between listing and reading (its function deleted).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
            };
            let start = usize::try_from(done).unwrap_or(usize::MAX).min(bytes.len());
            let fresh = &bytes[start..];
            let complete = fresh.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let text = String::from_utf8_lossy(&fresh[..complete]);
            for line in text.lines() {
                if let Some((ms, message)) = line.split_once('\t') {
                    events.push((
                        ms.parse::<i64>().unwrap_or(0),
                        sous_worker::logs::unescape(message),
                    ));
                }
            }
            self.read.insert(path, done + complete as u64);
        }
        Ok(events)
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms as u64)
    }

    #[test]
    fn since_takes_durations_back_from_now() {
        let now = at(10_000_000_000);
        assert_eq!(parse_since("30s", now).unwrap(), 10_000_000_000 - 30_000);
        assert_eq!(parse_since("10m", now).unwrap(), 10_000_000_000 - 600_000);
        assert_eq!(parse_since("1h", now).unwrap(), 10_000_000_000 - 3_600_000);
        assert_eq!(
            parse_since("2d", now).unwrap(),
            10_000_000_000 - 172_800_000
        );
        assert_eq!(
            parse_since("1w", now).unwrap(),
            10_000_000_000 - 604_800_000
        );
    }

    #[test]
    fn since_takes_rfc3339_times() {
        let now = at(0);
        assert_eq!(
            parse_since("2024-05-01T12:00:00Z", now).unwrap(),
            1_714_564_800_000
        );
        assert_eq!(
            parse_since("2024-05-01T14:00:00.5+02:00", now).unwrap(),
            1_714_564_800_500
        );
    }

    #[test]
    fn since_refuses_what_it_cannot_read() {
        for bad in ["", "m", "10", "10y", "yesterday", "-5m", "2024-05-01"] {
            let e = parse_since(bad, at(0)).unwrap_err();
            assert!(format!("{e:#}").contains("--since"), "{bad}: {e:#}");
        }
    }

    #[test]
    fn streams_yield_each_complete_line_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path().join("2024/01/01/[$LATEST]abc");
        std::fs::create_dir_all(s.parent().unwrap()).unwrap();
        std::fs::write(&s, "5\tfirst\n7\tsec").unwrap();
        let mut streams = Streams::default();
        assert_eq!(streams.read_new(dir.path()).unwrap(), [(5, "first".into())]);
        assert!(streams.read_new(dir.path()).unwrap().is_empty());
        let mut f = std::fs::OpenOptions::new().append(true).open(&s).unwrap();
        f.write_all(b"ond\\nline\n9\tthird\n").unwrap();
        assert_eq!(
            streams.read_new(dir.path()).unwrap(),
            [(7, "second\nline".into()), (9, "third".into())]
        );
        // A new stream is read from its start.
        std::fs::write(dir.path().join("2024/01/01/[$LATEST]def"), "8\tother\n").unwrap();
        assert_eq!(streams.read_new(dir.path()).unwrap(), [(8, "other".into())]);
        // No directory: no events.
        assert!(streams
            .read_new(&dir.path().join("absent"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn events_are_filtered_by_time_and_text() {
        let opts = Options {
            since_ms: Some(10),
            filter: Some("ERROR".into()),
            follow: false,
        };
        let mut out = Vec::new();
        write_events(
            &mut out,
            vec![
                (12, "ERROR late".into()),
                (5, "ERROR early".into()),
                (11, "INFO late".into()),
                (10, "ERROR at".into()),
            ],
            &opts,
        )
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "ERROR at\nERROR late\n");
    }
}
