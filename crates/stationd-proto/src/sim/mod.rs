//! The device side of the protocols, for simulators: the demo's simulated station, the
//! integration tests' terminals and receivers, and the benchmark build what devices send
//! through these instead of hand-built copies. Encoders only; the wire framing (escaping,
//! checksums) is the codecs' own (`codec::jt808::encode`).

pub mod jt808;
pub mod nmea;
pub mod tetra;
