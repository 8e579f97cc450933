//! A JT/T 808 vehicle terminal speaking the real protocol over TCP (the protocol crate's
//! simulator bodies, framed and sent), for the tests that need a car to log in.

use stationd::codec::jt808::{encode, Edition, Frame, FrameDecoder};
use stationd::sim::jt808 as sim;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A vehicle terminal.
pub struct Terminal {
    pub stream: TcpStream,
    phone: String,
    edition: Edition,
    serial: u16,
    decoder: FrameDecoder,
    inbox: Vec<Frame>,
}

impl Terminal {
    pub fn connect(port: u16, phone: &str, edition: Edition) -> Terminal {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Terminal {
            stream,
            phone: phone.into(),
            edition,
            serial: 0,
            decoder: FrameDecoder::new(),
            inbox: Vec::new(),
        }
    }

    pub fn send(&mut self, msg_id: u16, body: &[u8]) -> u16 {
        self.serial += 1;
        let wire = encode(msg_id, self.edition, &self.phone, self.serial, body);
        self.stream.write_all(&wire).unwrap();
        self.serial
    }

    /// The next frame from the platform; None when the connection closed.
    pub fn recv(&mut self) -> Option<Frame> {
        let mut buf = [0u8; 2048];
        while self.inbox.is_empty() {
            let n = self.stream.read(&mut buf).ok()?;
            if n == 0 {
                return None;
            }
            let inbox = &mut self.inbox;
            self.decoder.push(&buf[..n], |f| {
                inbox.push(f.expect("the platform sends valid frames"))
            });
        }
        Some(self.inbox.remove(0))
    }

    /// Sends and returns the platform's 0x8001 result for it.
    pub fn request(&mut self, msg_id: u16, body: &[u8]) -> u8 {
        let serial = self.send(msg_id, body);
        let f = self.recv().expect("an answer");
        assert_eq!(
            f.header.msg_id, 0x8001,
            "general response expected for 0x{msg_id:04X}"
        );
        assert_eq!(
            u16::from_be_bytes([f.body[0], f.body[1]]),
            serial,
            "answers the right serial"
        );
        assert_eq!(u16::from_be_bytes([f.body[2], f.body[3]]), msg_id);
        f.body[4]
    }

    /// 0x0100 → (result, code).
    pub fn register(&mut self, plate: &str) -> (u8, String) {
        let b = sim::Registration {
            maker: b"SIMUL",
            model: b"PATROL-T1",
            plate,
            ..Default::default()
        }
        .body(self.edition);
        let serial = self.send(0x0100, &b);
        let f = self.recv().expect("a register answer");
        assert_eq!(f.header.msg_id, 0x8100);
        assert_eq!(u16::from_be_bytes([f.body[0], f.body[1]]), serial);
        (
            f.body[2],
            String::from_utf8_lossy(&f.body[3..]).into_owned(),
        )
    }

    pub fn authenticate(&mut self, code: &str) -> u8 {
        self.request(0x0102, &sim::authentication(self.edition, code.as_bytes()))
    }

    pub fn online(port: u16, phone: &str, edition: Edition) -> Terminal {
        let mut t = Terminal::connect(port, phone, edition);
        let (r, code) = t.register("鲁A12345");
        assert_eq!(r, 0);
        assert_eq!(t.authenticate(&code), 0);
        t
    }
}
