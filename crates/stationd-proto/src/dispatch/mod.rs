//! Dispatch without I/O: what the station box decides between central's order and the crew.
//!
//! - [`arrival`]: has the crew arrived at the incident — inside a radius, with hysteresis
//!   against GNSS jitter and a minimum dwell — and the response time, distance driven and
//!   positions on the way.
//! - [`choose`]: "the nearest ready crew of this station": which car, and why, from each car's
//!   readiness and latest position.
//! - [`figures`]: the station's response-time figures (median, p90) and closure shares.

pub mod arrival;
pub mod choose;
pub mod figures;
