//! The proxy's answer to CONNECT (transport/proxy.rs): the head reader stops right after the
//! first blank line (nothing of the tunnelled stream is consumed), refuses heads over 64 KiB
//! and ends at end of input; the parser's verdict agrees with the status line: 2xx opens the
//! tunnel, 407 asks for credentials, anything else is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netaccess::__fuzz::connect::{parse, read, Reply};

const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let (head, consumed) = read(data);
    let end = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    match head {
        Ok(head) => {
            assert_eq!(
                Some(consumed),
                end,
                "stopped elsewhere than the first blank line"
            );
            assert_eq!(&head[..], &data[..consumed]);
            assert!(head.len() <= LIMIT + 4);
        }
        Err(_) => {
            assert!(end.is_none_or(|e| e > LIMIT));
            assert!(consumed == data.len() || consumed > LIMIT);
            assert!(consumed <= LIMIT + 1);
        }
    }
    let verdict = parse(data);
    // Empty lines before the status line are allowed (RFC 9112 §2.2).
    let start = data
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(data.len());
    let line = &data[start..];
    let status = line
        .get(9..12)
        .filter(|_| line.starts_with(b"HTTP/1.1 ") || line.starts_with(b"HTTP/1.0 "))
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.parse::<u16>().ok());
    if let Some(reply) = verdict {
        let status = status.expect("a parsed head has an HTTP/1.x status line");
        match reply {
            Reply::Open => assert!((200..=299).contains(&status)),
            Reply::AuthRequired(_) => assert_eq!(status, 407),
            Reply::Refused(s) => {
                assert_eq!(s, status);
                assert!(!(200..=299).contains(&s) && s != 407);
            }
        }
    }
});
