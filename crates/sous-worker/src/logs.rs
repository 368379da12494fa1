//! An environment's log stream.
//!
//! The runtime's stdout and stderr share one pipe, read by one task per environment. That
//! task also writes the platform lines (INIT_START, START, END, REPORT, ...), so that every
//! line lands in the stream in the order Lambda would show it: before a platform line is
//! written, whatever the runtime wrote before it (already in the pipe) is drained. Lines go to
//! `<data-dir>/logs/<function>/<stream name>` as `epoch-ms TAB message` (with `\\` and `\n`
//! escaped, so a multi-line event stays one line), optionally echoed on Sous's stdout, and the
//! lines of the current invocation are kept for `LogType: Tail`.
//!
//! Managed runtimes also get a telemetry pipe (`_LAMBDA_TELEMETRY_LOG_FD`), as on Lambda: each
//! record is a frame — 4-byte type (`0xa55a0003` text, `0xa55a0002` JSON), 4-byte length and
//! 8-byte timestamp in microseconds (all big-endian), then the message — so a multi-line
//! message (a stack trace) stays one log event.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use sous_types::limits::LOG_TAIL_BYTES;

/// What to do with the invocation capture along with a batch of platform lines.
enum Capture {
    Keep,
    /// Start capturing (the batch's lines are the first captured); acknowledged once written.
    Start(oneshot::Sender<()>),
    /// Stop capturing and send the captured text (the batch's lines included).
    Finish(oneshot::Sender<String>),
}

struct Cmd {
    lines: Vec<String>,
    capture: Capture,
}

/// Handle to an environment's log task.
#[derive(Clone)]
pub struct LogStream {
    tx: mpsc::UnboundedSender<Cmd>,
}

/// Where a stream lives and whether it is echoed.
pub struct StreamTarget {
    pub path: PathBuf,
    pub echo_prefix: Option<String>,
}

impl LogStream {
    /// Start the log task reading `pipe` (the read end of the runtime's stdout/stderr) and,
    /// when given, `telemetry` (the read end of the framed telemetry log pipe).
    pub fn start(
        pipe: OwnedFd,
        telemetry: Option<OwnedFd>,
        target: StreamTarget,
    ) -> io::Result<Self> {
        if let Some(dir) = target.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = File::options()
            .create(true)
            .append(true)
            .open(&target.path)?;
        // Owned by the receivers (which make them non-blocking): nothing else can close them.
        let fd = pipe::Receiver::from_owned_fd(pipe)?;
        let tfd = telemetry.map(pipe::Receiver::from_owned_fd).transpose()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let task = LogTask {
            fd: Some(fd),
            partial: Vec::new(),
            tfd,
            frames: Vec::new(),
            out: BufWriter::new(file),
            echo_prefix: target.echo_prefix,
            capture: None,
            path: target.path,
            backlog: false,
        };
        tokio::spawn(task.run(rx));
        Ok(Self { tx })
    }

    /// Write platform lines after everything the runtime has printed so far.
    pub fn platform(&self, lines: Vec<String>) {
        let _ = self.tx.send(Cmd {
            lines,
            capture: Capture::Keep,
        });
    }

    /// Write the START line and begin capturing the invocation's log.
    ///
    /// Awaited before the event is handed to the runtime: everything the runtime printed
    /// before (during init or an earlier invocation) is drained first, and nothing it prints
    /// for this invocation can land before the START line.
    pub async fn begin(&self, lines: Vec<String>) {
        let (ack, done) = oneshot::channel();
        let sent = self.tx.send(Cmd {
            lines,
            capture: Capture::Start(ack),
        });
        if sent.is_ok() {
            let _ = done.await;
        }
    }

    /// Write the closing lines (END, REPORT) and return the invocation's log, last 4 KB.
    pub async fn finish(&self, lines: Vec<String>) -> String {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd {
            lines,
            capture: Capture::Finish(reply),
        });
        rx.await.unwrap_or_default()
    }
}

struct LogTask {
    fd: Option<pipe::Receiver>,
    partial: Vec<u8>,
    tfd: Option<pipe::Receiver>,
    frames: Vec<u8>,
    out: BufWriter<File>,
    echo_prefix: Option<String>,
    capture: Option<String>,
    path: PathBuf,
    /// The last drain stopped at its budget with data still in a pipe.
    backlog: bool,
}

/// Bytes read from the pipes in one go, so that a runtime printing without pause cannot keep
/// the log task (and the invocation waiting on it) busy forever.
const DRAIN_BUDGET: usize = 1024 * 1024;
/// The longest line kept whole: longer output without a newline is cut into events of this
/// size, so a runtime cannot grow Sous's memory by never ending a line.
const MAX_LINE: usize = 256 * 1024;
/// The largest telemetry frame accepted.
const MAX_FRAME: usize = 1024 * 1024;

impl LogTask {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        loop {
            tokio::select! {
                biased;
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => break,
                },
                _ = readable(&self.fd) => {
                    clear_ready(&self.fd);
                    self.drain();
                    self.flush();
                }
                _ = readable(&self.tfd) => {
                    clear_ready(&self.tfd);
                    self.drain();
                    self.flush();
                }
                _ = std::future::ready(()), if self.backlog => {
                    self.drain();
                    self.flush();
                }
            }
        }
        self.drain();
        self.flush_partial();
        self.flush();
    }

    fn command(&mut self, cmd: Cmd) {
        // Everything the runtime wrote before this command was issued is in the pipe now.
        self.drain();
        if matches!(cmd.capture, Capture::Start(_)) {
            self.flush_partial();
            self.capture = Some(String::new());
        }
        if matches!(cmd.capture, Capture::Finish(_)) {
            self.flush_partial();
        }
        for line in &cmd.lines {
            self.line(line);
        }
        self.flush();
        match cmd.capture {
            Capture::Finish(reply) => {
                let text = self.capture.take().unwrap_or_default();
                let _ = reply.send(tail(&text, LOG_TAIL_BYTES).to_string());
            }
            Capture::Start(ack) => {
                let _ = ack.send(());
            }
            Capture::Keep => {}
        }
    }

    /// Read what is currently in the pipes, without waiting, up to [`DRAIN_BUDGET`] each;
    /// `backlog` records that more is waiting.
    fn drain(&mut self) {
        self.backlog = false;
        self.drain_telemetry();
        let mut buf = [0u8; 16 * 1024];
        let mut taken = 0;
        loop {
            let Some(fd) = &self.fd else { return };
            if taken >= DRAIN_BUDGET {
                self.backlog = true;
                return;
            }
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => {
                    self.fd = None;
                    return;
                }
                Ok(n) => {
                    taken += n;
                    self.bytes(&buf[..n]);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
        }
    }

    fn drain_telemetry(&mut self) {
        let mut buf = [0u8; 16 * 1024];
        let mut taken = 0;
        while let Some(fd) = &self.tfd {
            if taken >= DRAIN_BUDGET {
                self.backlog = true;
                break;
            }
            match nix::unistd::read(fd, &mut buf) {
                Ok(0) => {
                    self.tfd = None;
                    break;
                }
                Ok(n) => {
                    taken += n;
                    self.frames.extend_from_slice(&buf[..n]);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        loop {
            match parse_frame(&self.frames) {
                Frame::Complete {
                    micros,
                    message,
                    used,
                } => {
                    let message = String::from_utf8_lossy(message)
                        .trim_end_matches('\n')
                        .to_string();
                    self.frames.drain(..used);
                    self.event(&message, Some((micros / 1000) as i128));
                }
                Frame::Incomplete => break,
                Frame::Invalid => {
                    // Not Lambda's framing (or a frame too large): stop reading the pipe
                    // rather than buffer or misread whatever follows.
                    self.frames.clear();
                    self.tfd = None;
                    self.line("Sous: invalid record on the telemetry log pipe; closed it");
                    break;
                }
            }
        }
    }

    fn bytes(&mut self, chunk: &[u8]) {
        self.partial.extend_from_slice(chunk);
        while let Some(pos) = self.partial.iter().position(|b| *b == b'\n') {
            let rest = self.partial.split_off(pos + 1);
            let mut line = std::mem::replace(&mut self.partial, rest);
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            self.line(&line);
        }
        while self.partial.len() > MAX_LINE {
            let rest = self.partial.split_off(MAX_LINE);
            let head = std::mem::replace(&mut self.partial, rest);
            let line = String::from_utf8_lossy(&head).into_owned();
            self.line(&line);
        }
    }

    fn flush_partial(&mut self) {
        if !self.partial.is_empty() {
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned();
            self.line(&line);
        }
    }

    fn line(&mut self, message: &str) {
        self.event(message, None);
    }

    /// One log event (which may span lines), at `ms` or now.
    fn event(&mut self, message: &str, ms: Option<i128>) {
        let ms = ms
            .unwrap_or_else(|| time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000);
        if let Err(e) = writeln!(self.out, "{ms}\t{}", escape(message)) {
            warn!(path = %self.path.display(), error = %e, "write log stream");
        }
        if let Some(prefix) = &self.echo_prefix {
            let stdout = io::stdout();
            let mut lock = stdout.lock();
            let _ = writeln!(lock, "{prefix} {message}");
        }
        if let Some(cap) = &mut self.capture {
            cap.push_str(message);
            cap.push('\n');
            // Keep the capture bounded; only the tail is ever returned.
            if cap.len() > 16 * LOG_TAIL_BYTES {
                let keep = tail(cap, 2 * LOG_TAIL_BYTES).to_string();
                *cap = keep;
            }
        }
    }

    fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

/// Forget that `fd` was found readable, before the reads that empty it (a `drain`): data
/// written after those reads makes it readable again. (The reads go to the descriptor
/// directly, not through `try_read`, which reads only while tokio deems the pipe ready: a
/// `drain` before a platform line must take whatever is in the pipe at that moment.)
fn clear_ready(fd: &Option<pipe::Receiver>) {
    if let Some(fd) = fd {
        let _ = fd.try_io(|| Err::<(), _>(io::ErrorKind::WouldBlock.into()));
    }
}

async fn readable(fd: &Option<pipe::Receiver>) -> io::Result<()> {
    match fd {
        Some(fd) => fd.readable().await,
        None => std::future::pending().await,
    }
}

/// What the start of the telemetry buffer holds.
enum Frame<'a> {
    Complete {
        micros: u64,
        message: &'a [u8],
        used: usize,
    },
    Incomplete,
    Invalid,
}

/// One telemetry frame at the start of `buf`: type `0xa55a00xx`, length, timestamp (µs).
fn parse_frame(buf: &[u8]) -> Frame<'_> {
    if buf.len() < 16 {
        return Frame::Incomplete;
    }
    let mut word = [0u8; 4];
    word.copy_from_slice(&buf[4..8]);
    let len = u32::from_be_bytes(word) as usize;
    if buf[0..3] != [0xa5, 0x5a, 0x00] || len > MAX_FRAME {
        return Frame::Invalid;
    }
    let mut stamp = [0u8; 8];
    stamp.copy_from_slice(&buf[8..16]);
    let end = 16 + len;
    if buf.len() < end {
        return Frame::Incomplete;
    }
    Frame::Complete {
        micros: u64::from_be_bytes(stamp),
        message: &buf[16..end],
        used: end,
    }
}

/// Escape a message for the one-line-per-event stream file.
pub fn escape(message: &str) -> String {
    message.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Undo [`escape`].
pub fn unescape(stored: &str) -> String {
    let mut out = String::with_capacity(stored.len());
    let mut chars = stored.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The last `max` bytes of `text`, cut at a character boundary.
pub fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The file of a log stream: `<logs>/<function>/<stream name>`.
pub fn stream_path(logs_dir: &Path, function: &str, stream: &str) -> PathBuf {
    logs_dir.join(function).join(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_cuts_at_char_boundary() {
        assert_eq!(tail("abc", 10), "abc");
        assert_eq!(tail("abcdef", 3), "def");
        assert_eq!(tail("aé", 1), "");
    }

    #[test]
    fn escaping_round_trips() {
        for s in ["plain", "two\nlines", "back\\slash\\n", ""] {
            assert_eq!(unescape(&escape(s)), s);
            assert!(!escape(s).contains('\n'));
        }
    }

    #[tokio::test]
    async fn telemetry_frames_keep_multiline_messages_together() {
        let dir = tempfile::tempdir().unwrap();
        let flags = nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK;
        let (r, w) = nix::unistd::pipe2(flags).unwrap();
        let (tr, tw) = nix::unistd::pipe2(flags).unwrap();
        let target = StreamTarget {
            path: dir.path().join("s"),
            echo_prefix: None,
        };
        let logs = LogStream::start(r, Some(tr), target).unwrap();
        logs.begin(vec!["START".into()]).await;
        let msg = b"[ERROR] boom\nTraceback:\n  line 1";
        let mut frame = 0xa55a_0003u32.to_be_bytes().to_vec();
        frame.extend((msg.len() as u32).to_be_bytes());
        frame.extend(1_700_000_000_000_000u64.to_be_bytes());
        frame.extend(msg);
        nix::unistd::write(&tw, &frame).unwrap();
        let text = logs.finish(vec!["END".into()]).await;
        assert_eq!(text, "START\n[ERROR] boom\nTraceback:\n  line 1\nEND\n");
        drop((logs, w, tw));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let stored = std::fs::read_to_string(dir.path().join("s")).unwrap();
        let events: Vec<&str> = stored.lines().collect();
        assert_eq!(events.len(), 3, "{stored}");
        assert_eq!(
            events[1],
            "1700000000000\t[ERROR] boom\\nTraceback:\\n  line 1"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn endless_lines_are_cut_and_bad_frames_close_the_telemetry_pipe() {
        let dir = tempfile::tempdir().unwrap();
        let flags = nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK;
        let (r, w) = nix::unistd::pipe2(flags).unwrap();
        let (tr, tw) = nix::unistd::pipe2(flags).unwrap();
        let target = StreamTarget {
            path: dir.path().join("s"),
            echo_prefix: None,
        };
        let logs = LogStream::start(r, Some(tr), target).unwrap();
        logs.begin(vec!["START".into()]).await;
        let writer = std::thread::spawn(move || {
            let chunk = vec![b'x'; 64 * 1024];
            for _ in 0..5 {
                let mut left = &chunk[..];
                while !left.is_empty() {
                    match nix::unistd::write(&w, left) {
                        Ok(n) => left = &left[n..],
                        Err(_) => std::thread::sleep(std::time::Duration::from_millis(1)),
                    }
                }
            }
            w
        });
        let w = tokio::task::spawn_blocking(move || writer.join().unwrap())
            .await
            .unwrap();
        nix::unistd::write(&tw, &[0u8; 16]).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let _ = logs.finish(vec!["END".into()]).await;
        drop((logs, w, tw));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let stored = std::fs::read_to_string(dir.path().join("s")).unwrap();
        let longest = stored.lines().map(str::len).max().unwrap();
        assert!(
            longest <= MAX_LINE + 20,
            "a line of {longest} bytes was kept"
        );
        assert!(
            stored.contains("invalid record on the telemetry log pipe"),
            "{stored}"
        );
    }

    #[tokio::test]
    async fn orders_runtime_output_before_platform_lines() {
        let dir = tempfile::tempdir().unwrap();
        let (r, w) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .unwrap();
        let path = dir.path().join("f/stream");
        let logs = LogStream::start(
            r,
            None,
            StreamTarget {
                path: path.clone(),
                echo_prefix: None,
            },
        )
        .unwrap();
        logs.begin(vec!["START".into()]).await;
        nix::unistd::write(&w, b"hello\nno newline").unwrap();
        let text = logs.finish(vec!["END".into()]).await;
        assert_eq!(text, "START\nhello\nno newline\nEND\n");
        drop(logs);
        drop(w);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let stored = std::fs::read_to_string(&path).unwrap();
        let messages: Vec<&str> = stored
            .lines()
            .map(|l| l.split_once('\t').unwrap().1)
            .collect();
        assert_eq!(messages, ["START", "hello", "no newline", "END"]);
    }
}
