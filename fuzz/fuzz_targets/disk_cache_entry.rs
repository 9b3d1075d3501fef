//! The disk cache's file format (cache/format.rs). The first input byte picks the mode:
//! raw bytes as a whole file (header, lengths, CRCs, metadata), or a file built from the
//! input with correct lengths and CRCs (so the fuzzer reaches the metadata decoder through
//! the checks) and one field optionally corrupted. Properties: a file that passes is decoded
//! exactly as its header says; decoded metadata encodes to the same length and decodes back
//! to the same value; a decoded header encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netaccess::__fuzz::disk_cache::{
    check_file, decode_header, decode_metadata, encode_header, encode_metadata, Header, Metadata,
    FILE_HEADER_LEN,
};

fn check_metadata(is_entry: bool, bytes: &[u8]) {
    let Some(meta) = decode_metadata(is_entry, bytes) else {
        return;
    };
    assert_eq!(matches!(meta, Metadata::Entry { .. }), is_entry);
    let encoded = encode_metadata(&meta);
    assert_eq!(encoded.len(), bytes.len());
    let back = decode_metadata(is_entry, &encoded).expect("encoded metadata decodes");
    assert_eq!(back, meta);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        // Raw bytes.
        if let Some(h) = decode_header(rest) {
            assert_eq!(&encode_header(&h)[..32], &rest[..32]);
        }
        if let Some((meta, body)) = check_file(rest) {
            let h = decode_header(rest).expect("a checked file has a header");
            assert_eq!(body.len() as u64, h.body_len);
            assert_eq!(h.is_entry, matches!(meta, Metadata::Entry { .. }));
        }
        check_metadata(true, rest);
        check_metadata(false, rest);
        return;
    }
    // Built: [corrupt selector][split byte] metadata | body.
    let Some((&corrupt, rest)) = rest.split_first() else {
        return;
    };
    let Some((&split, rest)) = rest.split_first() else {
        return;
    };
    let split = (usize::from(split) * rest.len() / 255).min(rest.len());
    let (meta, body) = rest.split_at(split);
    let is_entry = mode & 2 == 0;
    let mut header = Header {
        is_entry,
        meta_len: meta.len() as u32,
        body_len: body.len() as u64,
        meta_crc: crc32(meta),
        body_crc: crc32(body),
    };
    match corrupt % 8 {
        1 => header.meta_len = header.meta_len.wrapping_add(u32::from(corrupt >> 3)),
        2 => header.body_len ^= u64::from(corrupt) << 40,
        3 => header.meta_crc ^= 1,
        4 => header.body_crc ^= 1,
        _ => {}
    }
    let mut file = encode_header(&header).to_vec();
    file.extend_from_slice(meta);
    file.extend_from_slice(body);
    if corrupt % 8 == 5 && file.len() > FILE_HEADER_LEN {
        file.pop();
    }
    let checked = check_file(&file);
    match corrupt % 8 {
        1 if corrupt >> 3 != 0 => assert!(checked.is_none()),
        2 if corrupt != 0 => assert!(checked.is_none()),
        3 | 4 => assert!(checked.is_none()),
        5 if !body.is_empty() || !meta.is_empty() => assert!(checked.is_none()),
        _ => {
            // Intact: exactly as good as its metadata.
            let decoded = decode_metadata(is_entry, meta);
            let header_ok = decode_header(&file).is_some();
            assert_eq!(checked.is_some(), header_ok && decoded.is_some());
            if let Some((m, b)) = checked {
                assert_eq!(Some(m), decoded);
                assert_eq!(b, body);
            }
        }
    }
    check_metadata(is_entry, meta);
});

fn crc32(bytes: &[u8]) -> u32 {
    // CRC-32 (IEEE), bitwise: the fuzz target does not trust the code under test for it.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
