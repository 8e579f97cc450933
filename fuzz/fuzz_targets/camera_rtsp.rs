//! Fuzzes what the RTSP publisher reads from a media server (responses, interleaved packets,
//! the server's own requests, cut anywhere), the SDP restatement and the RTP facts: no panic,
//! bounded memory, and every response's parts readable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stationd_proto::camera::rtsp::{rtp_facts, sdp_for_publish, Codec, Item, Reader};

fuzz_target!(|data: &[u8]| {
    // The first byte chooses where the bytes are cut.
    let step = usize::from(data.first().copied().unwrap_or(1)).max(1);
    let mut reader = Reader::new();
    'feed: for piece in data.chunks(step) {
        reader.push(piece);
        loop {
            match reader.next_item() {
                Ok(Some(Item::Response(r))) => {
                    let _ = (r.cseq(), r.session(), r.headers_named("WWW-Authenticate").count());
                    assert!(r.body.len() <= stationd_proto::camera::rtsp::MAX_BODY);
                }
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    let _ = sdp_for_publish(data, usize::from(step % 3), "stationd cam", "streamid=0");
    for codec in [Codec::H264, Codec::H265, Codec::Intra, Codec::Other] {
        let _ = rtp_facts(data, codec);
    }
});
