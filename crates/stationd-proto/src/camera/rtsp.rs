//! The RTSP publisher's wire (RFC 2326, the parts a publisher needs): the requests it writes
//! (ANNOUNCE, SETUP with `mode=record`, RECORD, GET_PARAMETER, TEARDOWN), what it reads back
//! on the same TCP connection — responses and `$`-framed interleaved packets (RTCP receiver
//! reports from the media server) mixed in any order — the camera's SDP restated for ANNOUNCE,
//! and the two facts about an RTP packet a relay needs without decoding: does it start a
//! keyframe, does it end a frame.
//!
//! The reading side is a push parser: bytes in as they arrive, items out, bounded (a head of at
//! most [`MAX_HEAD`] bytes, a body of at most [`MAX_BODY`]), and it never panics on garbage.
//! retina reads the camera; nothing in the tree publishes, so this is ours (decision 0012).

use std::fmt::Write as _;

/// The longest status line plus headers accepted from a server.
pub const MAX_HEAD: usize = 16 * 1024;
/// The longest response body accepted (an RTSP answer to a publisher carries none or a little).
pub const MAX_BODY: usize = 64 * 1024;

/// A request to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(method: &'static str, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Request {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Request {
        self.headers
            .push(("Content-Type".into(), content_type.to_string()));
        self.body = body;
        self
    }

    /// The request's bytes, numbered `cseq`.
    pub fn encode(&self, cseq: u32) -> Vec<u8> {
        let mut head = format!("{} {} RTSP/1.0\r\nCSeq: {cseq}\r\n", self.method, self.url);
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if !self.body.is_empty() {
            let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

/// A response from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header of that name, in order (a server may send several `WWW-Authenticate`).
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn cseq(&self) -> Option<u32> {
        self.header("CSeq")?.trim().parse().ok()
    }

    /// The `Session` header's id and its timeout in seconds (RFC 2326 12.37; 60 when unsaid).
    pub fn session(&self) -> Option<(String, u64)> {
        let value = self.header("Session")?;
        let mut parts = value.split(';');
        let id = parts.next()?.trim().to_string();
        if id.is_empty() {
            return None;
        }
        let timeout = parts
            .filter_map(|p| p.trim().strip_prefix("timeout="))
            .find_map(|t| t.trim().parse().ok())
            .unwrap_or(60);
        Some((id, timeout))
    }
}

/// What the server sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Response(Response),
    /// A `$`-framed packet on `channel` (RTCP from the server, usually).
    Interleaved {
        channel: u8,
        data: Vec<u8>,
    },
    /// A request from the server (some send GET_PARAMETER or OPTIONS as keepalives): its
    /// method and CSeq, to be answered.
    Request {
        method: String,
        cseq: Option<u32>,
    },
}

/// Why the connection's bytes cannot be read further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The first line is neither a status line, a request line nor `$`.
    NotRtsp(String),
    HeadTooLong,
    BodyTooLong(usize),
    BadHeader(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotRtsp(line) => write!(f, "the server did not answer in RTSP: {line:?}"),
            ReadError::HeadTooLong => write!(f, "an RTSP head longer than {MAX_HEAD} bytes"),
            ReadError::BodyTooLong(n) => {
                write!(f, "an RTSP body of {n} bytes (at most {MAX_BODY})")
            }
            ReadError::BadHeader(line) => write!(f, "an unreadable RTSP header: {line:?}"),
        }
    }
}

impl std::error::Error for ReadError {}

/// Reads what the server sends, as it arrives.
#[derive(Debug, Default)]
pub struct Reader {
    buf: Vec<u8>,
    failed: bool,
}

impl Reader {
    pub fn new() -> Reader {
        Reader::default()
    }

    /// Bytes as they came off the connection.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole item, `Ok(None)` when more bytes are needed. After an error the
    /// connection is not RTSP any more: every later call returns the same kind of error.
    pub fn next_item(&mut self) -> Result<Option<Item>, ReadError> {
        if self.failed {
            return Err(ReadError::NotRtsp("(after an earlier error)".into()));
        }
        let out = self.parse();
        if out.is_err() {
            self.failed = true;
            self.buf.clear();
        }
        out
    }

    fn parse(&mut self) -> Result<Option<Item>, ReadError> {
        let Some(&first) = self.buf.first() else {
            return Ok(None);
        };
        if first == b'$' {
            if self.buf.len() < 4 {
                return Ok(None);
            }
            let channel = self.buf[1];
            let len = usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]]));
            if self.buf.len() < 4 + len {
                return Ok(None);
            }
            let data = self.buf[4..4 + len].to_vec();
            self.buf.drain(..4 + len);
            return Ok(Some(Item::Interleaved { channel, data }));
        }
        let Some(head_end) = find(&self.buf, b"\r\n\r\n") else {
            if self.buf.len() > MAX_HEAD {
                return Err(ReadError::HeadTooLong);
            }
            // A line that cannot start RTSP is refused early, not after 16 KiB of garbage.
            if self.buf.len() >= 5
                && !self.buf.starts_with(b"RTSP/")
                && !starts_like_request(&self.buf)
            {
                return Err(ReadError::NotRtsp(first_line(&self.buf)));
            }
            return Ok(None);
        };
        if head_end > MAX_HEAD {
            return Err(ReadError::HeadTooLong);
        }
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let start = lines.next().unwrap_or_default().to_string();
        let mut headers = Vec::new();
        for line in lines {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| ReadError::BadHeader(line.chars().take(80).collect()))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        let body_len = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
            .map(|(_, v)| {
                v.parse::<usize>()
                    .map_err(|_| ReadError::BadHeader(format!("Content-Length: {v}")))
            })
            .transpose()?
            .unwrap_or(0);
        if body_len > MAX_BODY {
            return Err(ReadError::BodyTooLong(body_len));
        }
        let total = head_end + 4 + body_len;
        if self.buf.len() < total {
            return Ok(None);
        }
        let body = self.buf[head_end + 4..total].to_vec();
        self.buf.drain(..total);
        if let Some(rest) = start.strip_prefix("RTSP/") {
            // RTSP/1.0 200 OK
            let mut parts = rest.splitn(3, ' ');
            let _version = parts.next();
            let status = parts
                .next()
                .and_then(|s| s.parse::<u16>().ok())
                .filter(|s| (100..1000).contains(s))
                .ok_or_else(|| ReadError::NotRtsp(start.chars().take(80).collect()))?;
            let reason = parts.next().unwrap_or_default().to_string();
            return Ok(Some(Item::Response(Response {
                status,
                reason,
                headers,
                body,
            })));
        }
        let mut parts = start.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(method), Some(_url), Some("RTSP/1.0")) if is_token(method) => {
                let cseq = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case("CSeq"))
                    .and_then(|(_, v)| v.parse().ok());
                Ok(Some(Item::Request {
                    method: method.to_string(),
                    cseq,
                }))
            }
            _ => Err(ReadError::NotRtsp(start.chars().take(80).collect())),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn first_line(buf: &[u8]) -> String {
    let end = buf
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end.min(80)]).into_owned()
}

fn starts_like_request(buf: &[u8]) -> bool {
    let word: Vec<u8> = buf.iter().take_while(|&&b| b != b' ').copied().collect();
    !word.is_empty() && word.iter().all(|b| b.is_ascii_uppercase() || *b == b'_')
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
}

/// `200 OK` to a request the server sent (a keepalive of its own), numbered as it was.
pub fn ok_response(cseq: Option<u32>) -> Vec<u8> {
    format!("RTSP/1.0 200 OK\r\nCSeq: {}\r\n\r\n", cseq.unwrap_or(0)).into_bytes()
}

/// The 4-byte header of an interleaved packet on `channel` (RFC 2326 10.12).
pub fn interleaved_header(channel: u8, len: usize) -> Option<[u8; 4]> {
    let len = u16::try_from(len).ok()?;
    let [hi, lo] = len.to_be_bytes();
    Some([b'$', channel, hi, lo])
}

/// The camera's SDP restated for ANNOUNCE: a session part of our own (the camera's origin and
/// connection lines name the camera's addresses, which mean nothing at central) and the
/// camera's `media`-th media section (its `m=` line, `b=`, `rtpmap`, `fmtp` — the codec's
/// parameter sets — and `framerate` kept as they are), with its control URL replaced by
/// `control` (what the publisher SETUPs). `None` if the SDP has no such section.
pub fn sdp_for_publish(
    camera_sdp: &[u8],
    media: usize,
    name: &str,
    control: &str,
) -> Option<String> {
    let text = String::from_utf8_lossy(camera_sdp);
    let mut sections: Vec<Vec<&str>> = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if line.starts_with("m=") {
            sections.push(vec![line]);
        } else if let Some(section) = sections.last_mut() {
            section.push(line);
        }
    }
    let section = sections.get(media)?;
    let m = section.first()?;
    // m=video 0 RTP/AVP 96: the port is the publisher's to choose (0: over the connection).
    let mut fields = m.split(' ');
    let (kind, _port, proto) = (fields.next()?, fields.next()?, fields.next()?);
    let formats: Vec<&str> = fields.collect();
    if formats.is_empty() {
        return None;
    }
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    let mut out = format!(
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns={name}\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n{kind} 0 {proto} {}\r\n",
        formats.join(" ")
    );
    for line in &section[1..] {
        let keep = line.starts_with("b=")
            || line.starts_with("a=rtpmap:")
            || line.starts_with("a=fmtp:")
            || line.starts_with("a=framerate:")
            || line.starts_with("a=x-dimensions:");
        if keep {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    let _ = write!(out, "a=control:{control}\r\na=sendonly\r\n");
    Some(out)
}

/// Which codec's rules tell a keyframe in an RTP payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
    /// Every frame stands alone (MJPEG).
    Intra,
    /// Unknown: no frame is known to be a keyframe.
    Other,
}

impl Codec {
    /// From the SDP's encoding name (`H264`, `H265`/`HEVC`, `JPEG`), case-insensitive.
    pub fn from_encoding(name: &str) -> Codec {
        match name.to_ascii_lowercase().as_str() {
            "h264" => Codec::H264,
            "h265" | "hevc" => Codec::H265,
            "jpeg" => Codec::Intra,
            _ => Codec::Other,
        }
    }
}

/// The parts of an RTP packet a relay looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpFacts {
    /// The marker bit: the last packet of a video frame (RFC 6184 5.1, RFC 7798 4.1).
    pub ends_frame: bool,
    /// The payload begins a keyframe (an IDR/IRAP slice or the parameter sets that lead one).
    pub starts_keyframe: bool,
}

/// The relay's rule for which packets go out, with its counts: nothing before the first
/// keyframe (what central gets first must decode); when the queue to the server is full, that
/// packet and everything up to the next keyframe are dropped (a frame with a hole in it only
/// smears at central). The caller asks [`FrameGate::admit`], tries to queue what is admitted,
/// and says how it went ([`FrameGate::sent`] or [`FrameGate::overflowed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameGate {
    dropping: bool,
    /// Whether a keyframe has started the relay.
    pub started: bool,
    /// Whole frames sent (their last packet, with the marker bit, went out).
    pub frames: u64,
    pub keyframes: u64,
    pub packets: u64,
    /// RTP bytes sent.
    pub bytes: u64,
    /// Dropped after the relay started (what came before the first keyframe is not counted).
    pub dropped_frames: u64,
    pub dropped_packets: u64,
}

impl Default for FrameGate {
    fn default() -> FrameGate {
        FrameGate {
            dropping: true,
            started: false,
            frames: 0,
            keyframes: 0,
            packets: 0,
            bytes: 0,
            dropped_frames: 0,
            dropped_packets: 0,
        }
    }
}

impl FrameGate {
    /// Whether this packet should be queued; a packet not admitted is counted as dropped.
    pub fn admit(&mut self, facts: RtpFacts) -> bool {
        if self.dropping && facts.starts_keyframe {
            self.dropping = false;
            self.started = true;
        }
        if self.dropping && self.started {
            self.dropped_packets += 1;
            self.dropped_frames += u64::from(facts.ends_frame);
        }
        !self.dropping
    }

    /// The admitted packet was queued.
    pub fn sent(&mut self, facts: RtpFacts, len: usize) {
        self.packets += 1;
        self.bytes += len as u64;
        self.frames += u64::from(facts.ends_frame);
        self.keyframes += u64::from(facts.starts_keyframe);
    }

    /// The admitted packet found the queue full: dropped, and so is the rest up to the next
    /// keyframe.
    pub fn overflowed(&mut self, facts: RtpFacts) {
        self.dropping = true;
        self.dropped_packets += 1;
        self.dropped_frames += u64::from(facts.ends_frame);
    }
}

/// What `packet` (a whole RTP packet, header included) says, or `None` if it is not RTP.
pub fn rtp_facts(packet: &[u8], codec: Codec) -> Option<RtpFacts> {
    let payload = rtp_payload(packet)?;
    Some(RtpFacts {
        ends_frame: packet[1] & 0x80 != 0,
        starts_keyframe: starts_keyframe(payload, codec),
    })
}

/// The payload of an RTP packet: after the fixed header, the CSRCs, an extension, and before
/// any padding.
pub fn rtp_payload(packet: &[u8]) -> Option<&[u8]> {
    if packet.len() < 12 || packet[0] >> 6 != 2 {
        return None;
    }
    let csrc = usize::from(packet[0] & 0x0F) * 4;
    let mut start = 12 + csrc;
    if packet[0] & 0x10 != 0 {
        let ext = packet.get(start + 2..start + 4)?;
        start += 4 + usize::from(u16::from_be_bytes([ext[0], ext[1]])) * 4;
    }
    let mut end = packet.len();
    if packet[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*packet.last()?))?;
    }
    packet.get(start..end)
}

fn starts_keyframe(payload: &[u8], codec: Codec) -> bool {
    match codec {
        Codec::Intra => true,
        Codec::Other => false,
        Codec::H264 => {
            let Some(&first) = payload.first() else {
                return false;
            };
            let key = |t: u8| t == 5 || t == 7;
            match first & 0x1F {
                // STAP-A: 16-bit size, then the NAL unit, repeated.
                24 => {
                    aggregated(&payload[1..]).any(|nal| nal.first().is_some_and(|b| key(b & 0x1F)))
                }
                // FU-A: the start fragment of an IDR slice.
                28 => payload
                    .get(1)
                    .is_some_and(|fu| fu & 0x80 != 0 && key(fu & 0x1F)),
                t => key(t),
            }
        }
        Codec::H265 => {
            if payload.len() < 2 {
                return false;
            }
            // IRAP slices (BLA, IDR, CRA: 16..=21) and VPS/SPS (32, 33).
            let key = |t: u8| (16..=21).contains(&t) || t == 32 || t == 33;
            match (payload[0] >> 1) & 0x3F {
                // AP: 16-bit size, then the NAL unit (2-byte header), repeated.
                48 => aggregated(&payload[2..])
                    .any(|nal| nal.first().is_some_and(|b| key((b >> 1) & 0x3F))),
                // FU: the start fragment.
                49 => payload
                    .get(2)
                    .is_some_and(|fu| fu & 0x80 != 0 && key(fu & 0x3F)),
                t => key(t),
            }
        }
    }
}

/// The NAL units of an aggregation packet's body (16-bit size prefixes); stops at the first
/// size that runs past the end.
fn aggregated(mut body: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let size = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
        let nal = body.get(2..2 + size)?;
        body = &body[2 + size..];
        Some(nal)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_written_with_cseq_and_length() {
        let r = Request::new("ANNOUNCE", "rtsp://central/live/cam")
            .header("Authorization", "Basic x")
            .body("application/sdp", b"v=0\r\n".to_vec());
        assert_eq!(
            String::from_utf8(r.encode(3)).unwrap(),
            "ANNOUNCE rtsp://central/live/cam RTSP/1.0\r\nCSeq: 3\r\nAuthorization: Basic x\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n"
        );
    }

    #[test]
    fn responses_and_interleaved_packets_come_apart_however_the_bytes_are_cut() {
        let mut wire = b"RTSP/1.0 200 OK\r\nCSeq: 4\r\nSession: 12AB;timeout=30\r\nContent-Length: 3\r\n\r\nabc".to_vec();
        wire.extend([b'$', 1, 0, 2, 0xAA, 0xBB]);
        wire.extend(b"GET_PARAMETER rtsp://x RTSP/1.0\r\nCSeq: 9\r\n\r\n");
        wire.extend(b"RTSP/1.0 401 Unauthorized\r\nCSeq: 5\r\nWWW-Authenticate: Digest realm=\"r\"\r\nWWW-Authenticate: Basic realm=\"r\"\r\n\r\n");
        for step in [1, 2, 7, wire.len()] {
            let mut r = Reader::new();
            let mut items = Vec::new();
            for piece in wire.chunks(step) {
                r.push(piece);
                while let Some(item) = r.next_item().unwrap() {
                    items.push(item);
                }
            }
            assert_eq!(items.len(), 4, "step {step}");
            let Item::Response(ok) = &items[0] else {
                panic!()
            };
            assert_eq!(
                (ok.status, ok.cseq(), ok.body.as_slice()),
                (200, Some(4), &b"abc"[..])
            );
            assert_eq!(ok.session(), Some(("12AB".into(), 30)));
            assert_eq!(
                items[1],
                Item::Interleaved {
                    channel: 1,
                    data: vec![0xAA, 0xBB]
                }
            );
            assert_eq!(
                items[2],
                Item::Request {
                    method: "GET_PARAMETER".into(),
                    cseq: Some(9)
                }
            );
            let Item::Response(denied) = &items[3] else {
                panic!()
            };
            assert_eq!(denied.headers_named("www-authenticate").count(), 2);
        }
    }

    #[test]
    fn garbage_and_oversize_are_errors_not_waits() {
        let mut r = Reader::new();
        r.push(b"HTTP/1.1 400 Bad Request\r\n");
        assert!(matches!(r.next_item(), Err(ReadError::NotRtsp(_))));
        assert!(r.next_item().is_err(), "stays failed");
        let mut r = Reader::new();
        r.push(b"RTSP/1.0 200 OK\r\nContent-Length: 999999\r\n\r\n");
        assert_eq!(r.next_item(), Err(ReadError::BodyTooLong(999_999)));
        let mut r = Reader::new();
        r.push(b"RTSP/1.0 200 OK\r\nX: ");
        r.push(&vec![b'a'; MAX_HEAD]);
        assert_eq!(r.next_item(), Err(ReadError::HeadTooLong));
        let mut r = Reader::new();
        r.push(b"RTSP/1.0 abc OK\r\n\r\n");
        assert!(r.next_item().is_err());
    }

    /// The SDP GStreamer's RTSP server gave for its H.264 test camera.
    const CAMERA_SDP: &str = "v=0\r\no=- 1188340656180883 1 IN IP4 192.168.1.64\r\ns=Session streamed with GStreamer\r\ni=rtsp-server\r\nt=0 0\r\na=tool:GStreamer\r\na=type:broadcast\r\na=range:npt=now-\r\na=control:rtsp://192.168.1.64:554/cam1\r\nm=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 H264/90000\r\na=framerate:25\r\na=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LAHtoCgL/lwFqDAwNSgAAAMACAAAAwGUeLF1,aM4yyA==;profile-level-id=42C01E\r\na=control:stream=0\r\na=ts-refclk:local\r\na=mediaclk:sender\r\nm=audio 0 RTP/AVP 0\r\na=control:stream=1\r\n";

    #[test]
    fn the_camera_sdp_is_restated_with_its_codec_lines_and_our_control() {
        let sdp =
            sdp_for_publish(CAMERA_SDP.as_bytes(), 0, "stationd cam-gate", "streamid=0").unwrap();
        assert_eq!(
            sdp,
            "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=stationd cam-gate\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=framerate:25\r\na=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0LAHtoCgL/lwFqDAwNSgAAAMACAAAAwGUeLF1,aM4yyA==;profile-level-id=42C01E\r\na=control:streamid=0\r\na=sendonly\r\n"
        );
        assert!(sdp_for_publish(CAMERA_SDP.as_bytes(), 1, "x", "s")
            .unwrap()
            .contains("m=audio 0 RTP/AVP 0"));
        assert_eq!(sdp_for_publish(CAMERA_SDP.as_bytes(), 2, "x", "s"), None);
        assert_eq!(sdp_for_publish(b"garbage", 0, "x", "s"), None);
    }

    fn rtp(marker: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![
            0x80,
            96 | if marker { 0x80 } else { 0 },
            0,
            1,
            0,
            0,
            0,
            9,
            1,
            2,
            3,
            4,
        ];
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn the_gate_starts_at_a_keyframe_and_after_an_overflow_waits_for_the_next() {
        let p = |key, end| RtpFacts {
            starts_keyframe: key,
            ends_frame: end,
        };
        let mut g = FrameGate::default();
        // Before the first keyframe: not admitted, not counted as a loss.
        assert!(!g.admit(p(false, true)));
        assert_eq!((g.started, g.dropped_frames), (false, 0));
        // A keyframe of two packets, then a P frame: all out.
        for f in [p(true, false), p(false, true), p(false, true)] {
            assert!(g.admit(f));
            g.sent(f, 1000);
        }
        assert_eq!((g.frames, g.keyframes, g.packets, g.bytes), (2, 1, 3, 3000));
        // The queue is full mid-frame: that packet and the rest until the next keyframe drop.
        assert!(g.admit(p(false, false)));
        g.overflowed(p(false, false));
        assert!(!g.admit(p(false, true)));
        assert!(!g.admit(p(false, true)));
        assert_eq!((g.dropped_packets, g.dropped_frames), (3, 2));
        assert!(g.admit(p(true, true)), "the next keyframe goes out");
        g.sent(p(true, true), 500);
        assert_eq!((g.frames, g.keyframes), (3, 2));
    }

    #[test]
    fn keyframes_and_frame_ends_are_told_from_the_rtp_payload() {
        let h264 = Codec::H264;
        let facts = |p: &[u8], m| rtp_facts(&rtp(m, p), h264).unwrap();
        assert!(facts(&[0x65, 0x88], true).starts_keyframe, "IDR slice");
        assert!(
            facts(&[0x67, 0x42], false).starts_keyframe,
            "SPS leads a keyframe"
        );
        assert!(!facts(&[0x41, 0x9A], true).starts_keyframe, "P slice");
        assert!(facts(&[0x41, 0x9A], true).ends_frame);
        assert!(!facts(&[0x41, 0x9A], false).ends_frame);
        assert!(
            facts(&[0x7C, 0x85, 0], false).starts_keyframe,
            "FU-A start of IDR"
        );
        assert!(
            !facts(&[0x7C, 0x05, 0], false).starts_keyframe,
            "FU-A middle of IDR"
        );
        assert!(
            facts(&[0x78, 0, 2, 0x67, 0x42, 0, 1, 0x68], false).starts_keyframe,
            "STAP-A with SPS"
        );
        assert!(
            !facts(&[0x78, 0, 9, 0x67], false).starts_keyframe,
            "STAP-A cut short"
        );
        // H.265: IDR_W_RADL (19), a trailing picture (1), FU start of CRA (21).
        let h265 = |p: &[u8]| {
            rtp_facts(&rtp(false, p), Codec::H265)
                .unwrap()
                .starts_keyframe
        };
        assert!(h265(&[19 << 1, 1]));
        assert!(!h265(&[1 << 1, 1]));
        assert!(h265(&[49 << 1, 1, 0x80 | 21]));
        assert!(
            rtp_facts(&rtp(false, &[0xFF, 0xD8]), Codec::Intra)
                .unwrap()
                .starts_keyframe
        );
        assert_eq!(rtp_facts(&[0x40; 20], h264), None, "version 1 is not RTP");
        // Padding and an extension are skipped.
        let mut p = rtp(false, &[]);
        p[0] |= 0x30;
        p.extend([0xBE, 0xDE, 0, 1, 9, 9, 9, 9, 0x65, 0, 0, 3]);
        assert_eq!(rtp_payload(&p), Some(&[0x65][..]));
        assert!(rtp_facts(&p, h264).unwrap().starts_keyframe);
    }
}
