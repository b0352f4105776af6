//! The zip central-directory checks: stored zips written by hand whose local headers and
//! central directory may disagree (CRC-32, sizes, 0xFFFFFFFF sizes without zip64), whose
//! entries may be directories carrying data, and whose entries may overlap (one entry's
//! data holding another's local header). A zip with a wrong CRC-32, a local size that
//! disagrees, or overlapping entries must never pass.
#![no_main]

use backup_monitor_fuzz::{restore_bytes, token_path};
use libfuzzer_sys::fuzz_target;

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

struct Entry {
    name: Vec<u8>,
    data: Vec<u8>,
    crc: u32,
    local_sizes: (u32, u32),
}

fn local(e: &Entry) -> Vec<u8> {
    let mut h = b"PK\x03\x04".to_vec();
    h.extend([20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
    h.extend(e.crc.to_le_bytes());
    h.extend(e.local_sizes.0.to_le_bytes());
    h.extend(e.local_sizes.1.to_le_bytes());
    h.extend((e.name.len() as u16).to_le_bytes());
    h.extend([0, 0]);
    h.extend(&e.name);
    h
}

fn central(e: &Entry, offset: u32) -> Vec<u8> {
    let n = e.data.len() as u32;
    let mut h = b"PK\x01\x02".to_vec();
    h.extend([20, 3, 20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
    h.extend(e.crc.to_le_bytes());
    h.extend(n.to_le_bytes());
    h.extend(n.to_le_bytes());
    h.extend((e.name.len() as u16).to_le_bytes());
    h.extend([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xa4, 0x81]);
    h.extend(offset.to_le_bytes());
    h.extend(&e.name);
    h
}

fuzz_target!(|data: &[u8]| {
    let mut body = Vec::new();
    let mut records: Vec<(Entry, u32)> = Vec::new();
    let mut must_fail = false;
    let mut rest = data;
    let mut index = 0u32;
    while rest.len() >= 4 && records.len() < 16 {
        let (flags, bits, len) = (rest[0], u16::from_le_bytes([rest[1], rest[2]]), rest[3]);
        rest = &rest[4..];
        let take = usize::from(len).min(rest.len());
        let (content, after) = rest.split_at(take);
        rest = after;
        // Distinct names: entries sharing one are refused for a reason of their own.
        let mut name = format!("{index}-{}", token_path(bits)).into_bytes();
        index += 1;
        if flags & 4 != 0 {
            name.push(b'/');
        }
        let mut e = Entry {
            crc: crc32(content),
            local_sizes: (content.len() as u32, content.len() as u32),
            data: content.to_vec(),
            name,
        };
        if flags & 1 != 0 {
            e.crc ^= 1;
            must_fail = true;
        }
        if flags & 2 != 0 {
            e.local_sizes = (u32::MAX, u32::MAX);
            must_fail = true;
        }
        let at = body.len() as u32;
        if flags & 8 != 0 {
            // This entry's data is an inner entry's local header and data: they overlap.
            let inner = Entry {
                name: format!("{index}-inner").into_bytes(),
                crc: crc32(content),
                local_sizes: (content.len() as u32, content.len() as u32),
                data: content.to_vec(),
            };
            index += 1;
            let mut nested = local(&inner);
            nested.extend(&inner.data);
            e.data = nested;
            e.crc = if flags & 1 != 0 { !crc32(&e.data) } else { crc32(&e.data) };
            e.local_sizes = if flags & 2 != 0 {
                (u32::MAX, u32::MAX)
            } else {
                (e.data.len() as u32, e.data.len() as u32)
            };
            let header = local(&e);
            let inner_at = at + header.len() as u32;
            body.extend(header);
            body.extend(&e.data);
            records.push((e, at));
            records.push((inner, inner_at));
            must_fail = true;
            continue;
        }
        body.extend(local(&e));
        body.extend(&e.data);
        records.push((e, at));
    }
    let cd_start = body.len() as u32;
    let mut cd = Vec::new();
    for (e, offset) in &records {
        cd.extend(central(e, *offset));
    }
    body.extend(&cd);
    body.extend(b"PK\x05\x06\0\0\0\0");
    let n = records.len() as u16;
    body.extend(n.to_le_bytes());
    body.extend(n.to_le_bytes());
    body.extend((cd.len() as u32).to_le_bytes());
    body.extend(cd_start.to_le_bytes());
    body.extend([0, 0]);
    let passed = restore_bytes("backup.zip", &body);
    assert!(!(must_fail && passed), "a zip with a bad CRC, local size or overlap passed");
});
