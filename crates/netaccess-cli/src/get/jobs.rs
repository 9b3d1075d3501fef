//! What to download: one [`Job`] per URL, from the command line (with the `--priority`,
//! `-O` and `--checksum` that apply to it) and then from `-i` lists, read line by line on a
//! thread of their own and handed over through a channel of one slot, so a list of any length
//! costs the memory of one line (at most [`MAX_LINE`] bytes) plus the jobs the run has started.
//!
//! A list line is `URL [out=NAME] [priority=high|normal|low] [checksum=sha256=HEX]`, fields
//! separated by white space; a value may be double-quoted (`out="a b.txt"`, `\"` and `\\`
//! inside). Empty lines and lines starting with `#` are skipped.

use std::collections::VecDeque;
use std::io::{BufRead, Read};
use std::path::PathBuf;

use clap::ArgMatches;
use netaccess::Priority;
use tokio::sync::mpsc;

use super::args::GetArgs;

/// A list line longer than this (in bytes) is an error of that line.
pub(super) const MAX_LINE: usize = 64 * 1024;

/// One URL to download and its own options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Job {
    /// Its number in the run, from 0 (command-line URLs first, then list lines).
    pub index: usize,
    pub url: String,
    pub priority: Priority,
    /// `-O NAME` / `out=NAME`: the file name, as given (sanitised when used).
    pub output: Option<String>,
    /// `--checksum sha256=HEX` / `checksum=sha256=HEX`.
    pub sha256: Option<[u8; 32]>,
}

/// A list line that could not be used: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BadLine {
    pub index: usize,
    pub message: String,
}

/// Parses `sha256=HEX` (the only algorithm; upper- or lower-case hex).
pub(super) fn parse_checksum(value: &str) -> Result<[u8; 32], String> {
    let Some((algorithm, hex_digits)) = value.split_once('=') else {
        return Err(format!("bad checksum {value:?}: expected sha256=HEX"));
    };
    if !algorithm.trim().eq_ignore_ascii_case("sha256") {
        return Err(format!(
            "bad checksum {value:?}: only sha256 is known, not {algorithm:?}"
        ));
    }
    let mut digest = [0u8; 32];
    hex::decode_to_slice(hex_digits.trim(), &mut digest)
        .map_err(|_| format!("bad checksum {value:?}: expected 64 hex digits"))?;
    Ok(digest)
}

fn parse_priority(value: &str) -> Result<Priority, String> {
    match value.to_ascii_lowercase().as_str() {
        "high" => Ok(Priority::High),
        "normal" => Ok(Priority::Normal),
        "low" => Ok(Priority::Low),
        _ => Err(format!(
            "bad priority {value:?}: expected high, normal or low"
        )),
    }
}

/// The jobs of the command line: each URL with the last `--priority` before it, and the `-O`
/// and `--checksum` that follow it (before the next URL). An `-O` or `--checksum` before the
/// first URL, or two for one URL, is bad usage.
pub(super) fn command_line_jobs(matches: &ArgMatches, args: &GetArgs) -> Result<Vec<Job>, String> {
    let indices = |id: &str| -> Vec<usize> {
        matches
            .indices_of(id)
            .map(Iterator::collect)
            .unwrap_or_default()
    };
    let url_indices = indices("urls");
    let mut jobs: Vec<Job> = url_indices
        .iter()
        .zip(&args.urls)
        .enumerate()
        .map(|(index, (&at, url))| Job {
            index,
            url: url.clone(),
            priority: indices("priority")
                .iter()
                .zip(&args.priority)
                .rfind(|(&i, _)| i < at)
                .map_or(Priority::Normal, |(_, &p)| p.into()),
            output: None,
            sha256: None,
        })
        .collect();
    // The URL a per-URL flag at `at` belongs to: the last one before it.
    let owner = |at: usize, flag: &str| -> Result<usize, String> {
        url_indices
            .iter()
            .rposition(|&u| u < at)
            .ok_or_else(|| format!("{flag} applies to the URL before it, and none is"))
    };
    for (&at, name) in indices("output").iter().zip(&args.output) {
        let job = &mut jobs[owner(at, "-O")?];
        if job.output.replace(name.clone()).is_some() {
            return Err(format!("two -O for {}", job.url));
        }
    }
    for (&at, value) in indices("checksum").iter().zip(&args.checksum) {
        let digest = parse_checksum(value)?;
        let job = &mut jobs[owner(at, "--checksum")?];
        if job.sha256.replace(digest).is_some() {
            return Err(format!("two --checksum for {}", job.url));
        }
    }
    Ok(jobs)
}

/// Splits a list line into fields: white space separates, double quotes group.
fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut field = String::new();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => quoted = !quoted,
                '\\' if quoted => match chars.next() {
                    Some(c) => field.push(c),
                    None => return Err("a line ends inside quotes".into()),
                },
                c if c.is_whitespace() && !quoted => break,
                c => field.push(c),
            }
        }
        if quoted {
            return Err("a line ends inside quotes".into());
        }
        out.push(field);
    }
}

/// One list line: `Ok(None)` for a comment or an empty line.
pub(super) fn parse_line(line: &str, index: usize) -> Result<Option<Job>, String> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let mut fields = fields(trimmed)?.into_iter();
    let Some(url) = fields.next() else {
        return Ok(None);
    };
    let mut job = Job {
        index,
        url,
        priority: Priority::Normal,
        output: None,
        sha256: None,
    };
    for field in fields {
        let Some((key, value)) = field.split_once('=') else {
            return Err(format!("bad option {field:?}: expected key=value"));
        };
        match key {
            "out" if !value.is_empty() => job.output = Some(value.to_owned()),
            "priority" => job.priority = parse_priority(value)?,
            "checksum" => job.sha256 = Some(parse_checksum(value)?),
            _ => {
                return Err(format!(
                    "unknown option {field:?} (out=NAME, priority=P, checksum=sha256=HEX)"
                ))
            }
        }
    }
    Ok(Some(job))
}

/// What the list reader hands over.
pub(super) type Item = Result<Job, BadLine>;

/// Reads one line of at most [`MAX_LINE`] bytes (without its end); `Ok(None)` at the end of
/// the input. A longer line is read to its end and discarded: `Err` with its length.
pub(super) fn read_bounded_line(
    reader: &mut dyn BufRead,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<Result<(), usize>>> {
    buf.clear();
    let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX) + 1;
    let read = reader.take(limit).read_until(b'\n', buf)?;
    if read == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        return Ok(Some(Ok(())));
    }
    if buf.len() <= MAX_LINE {
        return Ok(Some(Ok(()))); // the last line, without a newline
    }
    // Too long: skip to the end of the line without keeping it.
    let mut skipped = buf.len();
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            break;
        }
        match available.iter().position(|&b| b == b'\n') {
            Some(end) => {
                reader.consume(end + 1);
                skipped += end;
                break;
            }
            None => {
                let n = available.len();
                reader.consume(n);
                skipped += n;
            }
        }
    }
    buf.clear();
    Ok(Some(Err(skipped)))
}

/// Starts the thread that reads the `-i` lists in turn (`-` is stdin), numbering jobs from
/// `first_index`. The channel holds one item: the thread waits while the run is full.
pub(super) fn spawn_list_reader(inputs: Vec<PathBuf>, first_index: usize) -> mpsc::Receiver<Item> {
    let (tx, rx) = mpsc::channel(1);
    std::thread::spawn(move || {
        let mut index = first_index;
        for input in inputs {
            let shown = input.display().to_string();
            let reader: Box<dyn BufRead> = if shown == "-" {
                Box::new(std::io::BufReader::new(std::io::stdin()))
            } else {
                match std::fs::File::open(&input) {
                    Ok(f) => Box::new(std::io::BufReader::new(f)),
                    Err(e) => {
                        let bad = BadLine {
                            index,
                            message: format!("cannot read {shown}: {e}"),
                        };
                        if tx.blocking_send(Err(bad)).is_err() {
                            return;
                        }
                        index += 1;
                        continue;
                    }
                }
            };
            if !read_list(reader, &shown, &tx, &mut index) {
                return;
            }
        }
    });
    rx
}

/// Sends the jobs of one list; false when the receiver is gone.
fn read_list(
    mut reader: Box<dyn BufRead>,
    shown: &str,
    tx: &mpsc::Sender<Item>,
    index: &mut usize,
) -> bool {
    let mut buf = Vec::new();
    let mut number = 0usize;
    loop {
        number += 1;
        let item = match read_bounded_line(&mut *reader, &mut buf) {
            Ok(None) => return true,
            Err(e) => Err(format!("cannot read: {e}")),
            Ok(Some(Err(len))) => Err(format!(
                "the line is {len} bytes long, more than {MAX_LINE}"
            )),
            Ok(Some(Ok(()))) => match std::str::from_utf8(&buf) {
                Ok(line) => parse_line(line, *index).map_err(|e| e.to_string()),
                Err(_) => Err("the line is not UTF-8".to_owned()),
            },
        };
        let sent = match item {
            Ok(None) => continue,
            Ok(Some(job)) => tx.blocking_send(Ok(job)),
            Err(message) => {
                let stop = message.starts_with("cannot read:");
                let bad = BadLine {
                    index: *index,
                    message: format!("{shown}:{number}: {message}"),
                };
                let sent = tx.blocking_send(Err(bad));
                if stop {
                    *index += 1;
                    return sent.is_ok();
                }
                sent
            }
        };
        *index += 1;
        if sent.is_err() {
            return false;
        }
    }
}

/// The command-line jobs first, then the lists'.
pub(super) struct Jobs {
    command_line: VecDeque<Job>,
    lists: Option<mpsc::Receiver<Item>>,
}

impl Jobs {
    pub(super) fn new(command_line: Vec<Job>, inputs: Vec<PathBuf>) -> Jobs {
        let first = command_line.len();
        Jobs {
            command_line: command_line.into(),
            lists: (!inputs.is_empty()).then(|| spawn_list_reader(inputs, first)),
        }
    }

    /// The next job, `None` when every source is exhausted (cancel-safe).
    pub(super) async fn next(&mut self) -> Option<Item> {
        if let Some(job) = self.command_line.pop_front() {
            return Some(Ok(job));
        }
        let item = self.lists.as_mut()?.recv().await;
        if item.is_none() {
            self.lists = None;
        }
        item
    }

    /// Reads nothing more.
    pub(super) fn stop(&mut self) {
        self.command_line.clear();
        self.lists = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_lines_with_options() {
        let hex = "ab".repeat(32);
        let line = format!("  http://h/a  out=\"x y.bin\" priority=HIGH checksum=sha256={hex} ");
        let job = parse_line(&line, 7).unwrap().unwrap();
        assert_eq!(job.index, 7);
        assert_eq!(job.url, "http://h/a");
        assert_eq!(job.output.as_deref(), Some("x y.bin"));
        assert_eq!(job.priority, Priority::High);
        assert_eq!(job.sha256, Some([0xab; 32]));
        assert_eq!(parse_line("# comment", 0), Ok(None));
        assert_eq!(parse_line("   ", 0), Ok(None));
        assert!(parse_line("http://h/ out=\"open", 0).is_err());
        assert!(parse_line("http://h/ colour=red", 0).is_err());
        assert!(parse_line("http://h/ checksum=md5=00", 0).is_err());
        assert!(parse_line("http://h/ checksum=sha256=abc", 0).is_err());
        assert!(parse_line("http://h/ priority=urgent", 0).is_err());
    }

    #[test]
    fn an_overlong_line_is_skipped_whole() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\nnext\r\nlast");
        let mut reader = std::io::BufReader::with_capacity(1000, &input[..]);
        let mut buf = Vec::new();
        assert_eq!(
            read_bounded_line(&mut reader, &mut buf).unwrap(),
            Some(Err(MAX_LINE + 10))
        );
        assert!(buf.capacity() <= 2 * MAX_LINE + 2);
        assert_eq!(
            read_bounded_line(&mut reader, &mut buf).unwrap(),
            Some(Ok(()))
        );
        assert_eq!(buf, b"next");
        assert_eq!(
            read_bounded_line(&mut reader, &mut buf).unwrap(),
            Some(Ok(()))
        );
        assert_eq!(buf, b"last");
        assert_eq!(read_bounded_line(&mut reader, &mut buf).unwrap(), None);
    }
}
