//! TETRA for the station's base radio, without I/O: the PEI lines a radio sends over its
//! serial port ([`pei`]), the SDS user data they carry ([`sds`]), and LIP location reports
//! ([`lip`]). The session that drives a radio (init, polls, one command in flight) and the
//! driver come with the rest of issue #11.

pub mod lip;
pub mod pei;
pub mod sds;
