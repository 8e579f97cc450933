//! A snapshot's first bytes: whether it is a JPEG and its pixel size, read from the frame
//! header (SOFn) without decoding anything. A camera that answers its snapshot URL with an
//! HTML error page or a truncated image must be told apart from a picture before the bytes go
//! to central as evidence.

/// Width and height of a JPEG, or `None` if `data` is not a JPEG or ends before its frame
/// header. Reads only marker segments (bounded by `data`); never panics.
pub fn dimensions(data: &[u8]) -> Option<(u16, u16)> {
    if !is_jpeg(data) {
        return None;
    }
    let mut i = 2;
    loop {
        // Markers may be padded with any number of 0xFF fill bytes.
        if *data.get(i)? != 0xFF {
            return None;
        }
        while *data.get(i)? == 0xFF {
            i += 1;
        }
        let marker = *data.get(i)?;
        i += 1;
        match marker {
            // Standalone markers: no length.
            0x01 | 0xD0..=0xD7 => continue,
            // End of image or start of scan before any frame header: no size to be had.
            0xD9 | 0xDA => return None,
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([*data.get(i)?, *data.get(i + 1)?]));
        if len < 2 {
            return None;
        }
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            let h = u16::from_be_bytes([*data.get(i + 3)?, *data.get(i + 4)?]);
            let w = u16::from_be_bytes([*data.get(i + 5)?, *data.get(i + 6)?]);
            return Some((w, h));
        }
        i += len;
    }
}

/// Starts with a JPEG's start-of-image marker (and the next marker's 0xFF).
pub fn is_jpeg(data: &[u8]) -> bool {
    data.starts_with(&[0xFF, 0xD8, 0xFF])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, an APP0 (JFIF) segment, SOF0 for 1920x1080, then SOS.
    fn jpeg(sof: u8) -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        v.extend([0xFF, 0xE0, 0x00, 0x10]);
        v.extend(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        v.extend([
            0xFF, 0xFF, sof, 0x00, 0x11, 0x08, 0x04, 0x38, 0x07, 0x80, 0x03,
        ]);
        v.extend([0; 9]);
        v.extend([0xFF, 0xDA, 0x00, 0x02]);
        v
    }

    #[test]
    fn the_frame_header_gives_the_size() {
        assert_eq!(dimensions(&jpeg(0xC0)), Some((1920, 1080)));
        assert_eq!(dimensions(&jpeg(0xC2)), Some((1920, 1080)), "progressive");
    }

    #[test]
    fn what_is_not_a_whole_jpeg_header_has_no_size() {
        assert_eq!(dimensions(b"<html>401 Unauthorized</html>"), None);
        assert_eq!(dimensions(&jpeg(0xC4)), None, "a DHT is not a frame header");
        let whole = jpeg(0xC0);
        // The width's last byte is at 29: any shorter prefix has no size, any longer one has it.
        for cut in 0..whole.len() {
            let want = (cut >= 30).then_some((1920, 1080));
            assert_eq!(dimensions(&whole[..cut]), want, "cut at {cut}");
        }
        assert_eq!(dimensions(&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x00]), None);
    }
}
