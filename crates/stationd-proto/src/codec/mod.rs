//! Sans-I/O protocol codecs: bytes in, events out. No sockets, no tokio, no clocks that
//! cannot be handed in. Each codec has unit tests beside it and a fuzz target in `fuzz/`.

pub mod jsonl;
pub mod jt808;
pub mod nmea;
