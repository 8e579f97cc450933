//! IP cameras: what the daemon reads from a camera's answers and writes to central's media
//! server, without I/O.
//!
//! - [`jpeg`]: is a snapshot a JPEG, and of what size (the SOF header).
//! - [`rtsp`]: the RTSP publisher's wire — requests written, responses and interleaved RTP
//!   read back, the camera's SDP restated for ANNOUNCE, keyframes and frame ends in RTP.

pub mod jpeg;
pub mod rtsp;
