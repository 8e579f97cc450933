//! The serial transport every serial driver uses (GPS receivers now, radios later).
//!
//! Opens the configured path (`/dev/ttyS1`, `/dev/serial/by-id/…`, a udev name like
//! `/dev/stationd/gps0`) with the configured line settings, exclusively, so that a second
//! program cannot steal bytes. A read error or EOF (USB unplugged, the other end of a pty
//! closed) means "device gone": the driver reports it and [`Reopener`] retries with capped
//! backoff until the path works again.

use crate::config::SerialSettings;
use std::time::Duration;
use tokio_serial::{DataBits, FlowControl, Parity, SerialPortBuilderExt, SerialStream, StopBits};

/// Opens the port with the configured settings, exclusive access.
pub fn open(s: &SerialSettings) -> std::io::Result<SerialStream> {
    let builder = tokio_serial::new(s.path.to_string_lossy(), s.baud)
        .data_bits(match s.data_bits {
            5 => DataBits::Five,
            6 => DataBits::Six,
            7 => DataBits::Seven,
            _ => DataBits::Eight,
        })
        .parity(match s.parity.as_str() {
            "odd" => Parity::Odd,
            "even" => Parity::Even,
            _ => Parity::None,
        })
        .stop_bits(if s.stop_bits == 2 {
            StopBits::Two
        } else {
            StopBits::One
        })
        .flow_control(match s.flow_control.as_str() {
            "hardware" => FlowControl::Hardware,
            "software" => FlowControl::Software,
            _ => FlowControl::None,
        });
    let mut port = builder.open_native_async().map_err(std::io::Error::from)?;
    // Exclusive (TIOCEXCL): serialport sets it by default; say so explicitly.
    port.set_exclusive(true).map_err(std::io::Error::from)?;
    Ok(port)
}

/// Capped exponential delays between attempts to reopen a port.
#[derive(Debug)]
pub struct Reopener {
    next: Duration,
}

impl Reopener {
    const FIRST: Duration = Duration::from_millis(250);
    const CAP: Duration = Duration::from_secs(10);

    pub fn new() -> Reopener {
        Reopener { next: Self::FIRST }
    }

    /// The delay before the next attempt (doubles up to 10 s).
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(Self::CAP);
        d
    }

    /// The port worked: the next failure starts again from the shortest delay.
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Reopener {
    fn default() -> Self {
        Reopener::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_delays_double_up_to_the_cap_and_reset() {
        let mut r = Reopener::new();
        let d: Vec<u64> = (0..8).map(|_| r.next_delay().as_millis() as u64).collect();
        assert_eq!(d, [250, 500, 1000, 2000, 4000, 8000, 10000, 10000]);
        r.reset();
        assert_eq!(r.next_delay(), Duration::from_millis(250));
    }
}
