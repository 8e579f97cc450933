//! stationd's protocols without I/O: bytes in, events out.
//!
//! - [`codec`]: framers and parsers of the devices' wire protocols (JSON lines, NMEA 0183,
//!   JT/T 808), resynchronising after garbage, bounded in memory; each has a fuzz target.
//! - [`event`]: the `Event` a driver produces and the contract's envelope (docs/CONTRACT.md).
//! - [`gps`]: report by exception and the GNSS receiver's health, shared by the position
//!   drivers.
//! - [`command`]: commands from dispatch — parsing, the canonical form a signature covers,
//!   Ed25519 verification against dispatch's keys, the expiry checks.
//! - [`device_clock`]: whether a device's own timestamp can stand as `ts`.
//! - [`jt808`]: the pure session of one JT/T 808 terminal connection.
//! - [`tetra`]: the base radio's PEI lines, SDS user data, LIP location reports and the radio
//!   session.
//! - [`footage`]: body-worn camera files — the dock's naming pattern, media types, the
//!   evidence index's hash chain.
//! - [`camera`]: IP cameras — snapshots' JPEG headers, the RTSP publisher's wire that pushes
//!   a camera's video to central.
//! - [`staffing`]: the teams' shift rotation (who is on duty, training, off at a moment).
//! - [`sim`]: the device side — what terminals and receivers send — for the demo, the tests
//!   and the benchmark.
//!
//! No sockets, no tasks, no clock reads, no randomness, no logging: the daemon (the `stationd`
//! crate) owns those and hands in what these need.

pub mod camera;
pub mod codec;
pub mod command;
pub mod device_clock;
pub mod dispatch;
pub mod event;
pub mod footage;
pub mod gps;
pub mod jt808;
pub mod sim;
pub mod staffing;
pub mod tetra;
