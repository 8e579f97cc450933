//! People and crews at the station, without I/O.
//!
//! - [`crew`]: a crew's readiness (ready, on call, short staffed, car unavailable, off
//!   duty) with its reason.
//! - [`presence`]: who is at work, from signals with their source and time (the latest
//!   decides; the disagreeing ones are kept).
//! - [`rotation`]: the teams' shift cycle — from a start moment and a list of slots, which
//!   teams are on duty, in training or off at any moment.

pub mod crew;
pub mod presence;
pub mod rotation;
