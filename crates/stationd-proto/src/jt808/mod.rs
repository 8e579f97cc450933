//! JT/T 808 beyond framing: the pure session of one terminal connection.

mod session;

pub use session::{normalize_phone, Action, KnownTerminal, Notice, Session, SessionConfig, Shared};
