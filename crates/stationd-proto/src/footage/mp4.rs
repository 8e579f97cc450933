//! When an MP4/MOV recording started, from its own metadata (ISO/IEC 14496-12): the movie
//! header box (`mvhd`, inside `moov`) holds the creation time in seconds since 1904-01-01 UTC.
//! Used when a file's name does not say. Without I/O: the caller reads box headers (16 bytes
//! each, seeking over the payloads: `moov` is often at the end of a long recording) and then
//! the `moov` payload, bounded.

/// A box header: the payload's length (None: to the end of the file) and type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxHeader {
    pub kind: [u8; 4],
    /// Bytes of the header itself (8, or 16 with a 64-bit size).
    pub header_len: u64,
    /// Bytes of the payload, or None when the box runs to the end of the file.
    pub payload_len: Option<u64>,
}

/// Reads a box header from the first bytes at a box boundary (at least 16 when available).
pub fn box_header(bytes: &[u8]) -> Option<BoxHeader> {
    let size = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?);
    let kind: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
    let (header_len, total) = match size {
        0 => (8, None),
        1 => {
            let large = u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?);
            (16, Some(large))
        }
        n => (8, Some(u64::from(n))),
    };
    let payload_len = match total {
        None => None,
        Some(t) if t >= header_len => Some(t - header_len),
        Some(_) => return None,
    };
    Some(BoxHeader {
        kind,
        header_len,
        payload_len,
    })
}

/// Seconds between 1904-01-01 and 1970-01-01.
const MAC_EPOCH_OFFSET: i64 = 2_082_844_800;

/// The creation time (Unix ms) in a `moov` payload's `mvhd`, if it has one that is set.
pub fn created_ms(moov: &[u8]) -> Option<i64> {
    let mut rest = moov;
    while rest.len() >= 8 {
        let h = box_header(rest)?;
        let start = usize::try_from(h.header_len).ok()?;
        let len = match h.payload_len {
            Some(l) => usize::try_from(l).ok()?,
            None => rest.len().checked_sub(start)?,
        };
        let payload = rest.get(start..start.checked_add(len)?)?;
        if &h.kind == b"mvhd" {
            let version = *payload.first()?;
            let secs = match version {
                0 => i64::from(u32::from_be_bytes(payload.get(4..8)?.try_into().ok()?)),
                1 => {
                    i64::try_from(u64::from_be_bytes(payload.get(4..12)?.try_into().ok()?)).ok()?
                }
                _ => return None,
            };
            // 0 is "not set" (many encoders leave it); before 1970 is not a recording.
            return (secs > MAC_EPOCH_OFFSET)
                .then(|| (secs - MAC_EPOCH_OFFSET).saturating_mul(1000));
        }
        rest = &rest[start + len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut b = ((payload.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend(kind);
        b.extend(payload);
        b
    }

    fn mvhd(version: u8, secs: u64) -> Vec<u8> {
        let mut p = vec![version, 0, 0, 0];
        if version == 0 {
            p.extend((secs as u32).to_be_bytes());
            p.extend([0u8; 4 + 4 + 4]);
        } else {
            p.extend(secs.to_be_bytes());
            p.extend([0u8; 8 + 4 + 8]);
        }
        p.extend([0u8; 80]);
        mp4_box(b"mvhd", &p)
    }

    #[test]
    fn the_creation_time_of_version_0_and_1_headers() {
        // 2026-12-01T00:15:02Z.
        let unix = 1_796_084_102i64;
        let secs = (unix + MAC_EPOCH_OFFSET) as u64;
        for v in [0, 1] {
            let mut moov = mp4_box(b"udta", b"xx");
            moov.extend(mvhd(v, secs));
            moov.extend(mp4_box(b"trak", &[0; 20]));
            assert_eq!(created_ms(&moov), Some(unix * 1000), "version {v}");
        }
        assert_eq!(created_ms(&mvhd(0, 0)), None, "unset");
        assert_eq!(created_ms(&mp4_box(b"trak", &[0; 20])), None);
        assert_eq!(
            created_ms(&[0, 0, 0, 9, b'm', b'v', b'h', b'd']),
            None,
            "cut short"
        );
    }

    #[test]
    fn box_headers_with_32_and_64_bit_sizes_and_to_the_end() {
        let h = box_header(&[0, 0, 0, 24, b'f', b't', b'y', b'p']).unwrap();
        assert_eq!(
            (h.kind, h.header_len, h.payload_len),
            (*b"ftyp", 8, Some(16))
        );
        let mut large = vec![0, 0, 0, 1, b'm', b'd', b'a', b't'];
        large.extend((5u64 << 32).to_be_bytes());
        assert_eq!(
            box_header(&large).unwrap().payload_len,
            Some((5 << 32) - 16)
        );
        assert_eq!(
            box_header(&[0, 0, 0, 0, b'm', b'd', b'a', b't'])
                .unwrap()
                .payload_len,
            None
        );
        assert_eq!(
            box_header(&[0, 0, 0, 4, b'b', b'a', b'd', b'!']),
            None,
            "smaller than its header"
        );
    }
}
