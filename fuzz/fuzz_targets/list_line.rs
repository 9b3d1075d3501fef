//! `-i` list lines (`netaccess-cli/src/get/jobs.rs`): the reader splits any bytes into the
//! lines of the input (without `\n`, and one `\r` before it), gives the length of a line over
//! the limit instead of its bytes, and a job written back as a line (every field quoted)
//! parses to the same job.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netaccess_cli::__fuzz::{list_line, list_lines, ListJob, MAX_LIST_LINE};

fn write_line(job: &ListJob) -> String {
    let mut line = netaccess_fuzz::quoted_string(&job.url);
    if let Some(out) = &job.output {
        line.push_str(" out=");
        line.push_str(&netaccess_fuzz::quoted_string(out));
    }
    line.push_str(" priority=");
    line.push_str(job.priority);
    if let Some(digest) = job.sha256 {
        line.push_str(" checksum=sha256=");
        for b in digest {
            line.push_str(&format!("{b:02X}"));
        }
    }
    line
}

fuzz_target!(|data: &[u8]| {
    // Byte 0: the reader's buffer size; byte 1: how many times the rest repeats (long lines).
    let [capacity, repeat, body @ ..] = data else {
        return;
    };
    let input = body.repeat(1 + usize::from(*repeat) * usize::from(body.len() > 200));
    let mut reader = std::io::BufReader::with_capacity(usize::from(*capacity).max(1), &input[..]);
    let lines = list_lines(&mut reader).expect("reading a slice never fails");

    let mut pieces: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    let last_terminated = input.is_empty() || input.ends_with(b"\n");
    if last_terminated {
        pieces.pop();
    }
    assert_eq!(lines.len(), pieces.len(), "one item per line");
    let count = pieces.len();
    for (i, (line, piece)) in lines.iter().zip(pieces).enumerate() {
        let terminated = i + 1 < count || last_terminated;
        if piece.len() > MAX_LIST_LINE {
            assert_eq!(line, &Err(piece.len()), "an overlong line is its length");
            continue;
        }
        let want = match piece {
            [rest @ .., b'\r'] if terminated => rest,
            _ => piece,
        };
        let Ok(line) = line else {
            panic!("a line of {} bytes refused", piece.len());
        };
        assert_eq!(line.as_slice(), want);
        let Ok(text) = std::str::from_utf8(line) else {
            continue;
        };
        let Ok(Some(job)) = list_line(text) else {
            continue;
        };
        assert!(job.url.len() <= text.len());
        assert!(job
            .output
            .as_ref()
            .is_none_or(|o| !o.is_empty() && o.len() <= text.len()));
        let written = write_line(&job);
        assert_eq!(
            list_line(&written),
            Ok(Some(job.clone())),
            "{text:?} written back as {written:?}"
        );
    }
});
