//! Body-worn camera footage without I/O: reading who recorded a file and when from its name
//! ([`name`]: the dock's naming pattern, configurable, since GA/T 947 publishes no rule), the
//! media type from its extension, and the evidence index's hash chain ([`chain`]: each entry's
//! content hash and its link to the one before, so an edited or deleted entry shows).

pub mod chain;
pub mod mp4;
pub mod name;

/// The media type of a footage file, from its extension (recorders write MP4 or AVI video,
/// JPEG stills and WAV/AMR audio).
pub fn media_type(ext: &str) -> &'static str {
    match ext.to_ascii_lowercase().as_str() {
        "mp4" | "m4v" => "video/mp4",
        "mov" => "video/quicktime",
        "avi" => "video/x-msvideo",
        "mkv" => "video/x-matroska",
        "ts" => "video/mp2t",
        "3gp" => "video/3gpp",
        "h264" | "264" => "video/h264",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "aac" => "audio/aac",
        "amr" => "audio/amr",
        _ => "application/octet-stream",
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn media_types_by_extension() {
        assert_eq!(super::media_type("MP4"), "video/mp4");
        assert_eq!(super::media_type("jpg"), "image/jpeg");
        assert_eq!(super::media_type("xyz"), "application/octet-stream");
        assert_eq!(super::hex(&[0, 0xab]), "00ab");
    }
}
