//! `jt808.text`: a text message from dispatch to a car's terminal (0x8300, shown and read
//! aloud), answered with the terminal's own 0x0001 result. The command finds the car's live
//! connection in [`CarLinks`], which every JT/T 808 listener of the daemon fills as terminals
//! authenticate and empties as they leave.

use crate::commands::handlers::{CommandContext, Handler, Outcome, Running};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long the terminal has to answer a text message.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest text, in GBK bytes (a frame body is at most 1023 bytes).
pub const MAX_TEXT_BYTES: usize = 1000;
/// 0x8300 flags: bit 0 emergency, bit 2 terminal display, bit 3 TTS (read aloud).
pub const FLAG_EMERGENCY: u8 = 0x01;
pub const FLAG_DISPLAY: u8 = 0x04;
pub const FLAG_TTS: u8 = 0x08;

/// A text for one terminal, and where its answer goes.
pub struct TextRequest {
    pub flags: u8,
    pub text: String,
    /// The terminal's 0x0001 result (0 success, 1 failure, 2 bad message, 3 unsupported), or
    /// why it could not be sent.
    pub answer: oneshot::Sender<Result<u8, String>>,
}

/// The cars whose terminals are connected and authenticated now, across every JT/T 808
/// listener of the daemon: car id → the connection's queue of texts.
#[derive(Default)]
pub struct CarLinks {
    cars: Mutex<HashMap<String, (u64, mpsc::Sender<TextRequest>)>>,
    next: std::sync::atomic::AtomicU64,
}

impl CarLinks {
    /// A connection of `car` takes texts on `tx` (a newer connection of the same car replaces
    /// an older one). Returns the link's id for [`detach`](Self::detach).
    pub fn attach(&self, car: &str, tx: mpsc::Sender<TextRequest>) -> u64 {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.lock().insert(car.to_string(), (id, tx));
        id
    }

    /// The connection `id` of `car` is gone (unless a newer one took its place).
    pub fn detach(&self, car: &str, id: u64) {
        let mut cars = self.lock();
        if cars.get(car).is_some_and(|(current, _)| *current == id) {
            cars.remove(car);
        }
    }

    /// The queue of `car`'s connection, when its terminal is logged in.
    pub fn get(&self, car: &str) -> Option<mpsc::Sender<TextRequest>> {
        self.lock().get(car).map(|(_, tx)| tx.clone())
    }

    /// Sends `text` to `car`'s terminal with `flags` and waits for its 0x0001: the terminal's
    /// result (0 success, 1 failure, 2 bad message, 3 unsupported), or why there is none.
    pub async fn send_text(&self, car: &str, flags: u8, text: String) -> Result<u8, String> {
        let Some(link) = self.get(car) else {
            return Err(format!(
                "car {car} not connected: its terminal is not logged in to this station"
            ));
        };
        let (answer, answered) = oneshot::channel();
        let request = TextRequest {
            flags,
            text,
            answer,
        };
        if link.send(request).await.is_err() {
            return Err(format!(
                "car {car} not connected: its terminal has just left"
            ));
        }
        match tokio::time::timeout(ANSWER_TIMEOUT, answered).await {
            Ok(Ok(Ok(code))) => Ok(code),
            Ok(Ok(Err(why))) => Err(format!("car {car}: {why}")),
            Ok(Err(_)) => Err(format!(
                "car {car}: the terminal's connection closed before it answered"
            )),
            Err(_) => Err(format!(
                "car {car}: sent, but the terminal did not answer within {} s",
                ANSWER_TIMEOUT.as_secs()
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, mpsc::Sender<TextRequest>)>> {
        self.cars.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `jt808.text` command: `args: {car, text, tts?: bool (true), emergency?: bool (false)}`.
pub struct TextCommand {
    pub links: std::sync::Arc<CarLinks>,
}

impl Handler for TextCommand {
    fn name(&self) -> &'static str {
        "jt808.text"
    }

    fn run<'a>(&'a self, args: &'a Map<String, Value>, _ctx: &'a CommandContext) -> Running<'a> {
        Box::pin(async move {
            let (car, text, flags) = match read_args(args) {
                Ok(a) => a,
                Err(why) => return Outcome::BadArgs(why),
            };
            match self.links.send_text(&car, flags, text).await {
                Ok(0) => Outcome::Done(json!({"car": car, "terminal_result": 0})),
                Ok(code) => Outcome::Failed {
                    reason: format!(
                        "the terminal of car {car} answered {code} ({})",
                        match code {
                            1 => "failure",
                            2 => "bad message",
                            3 => "unsupported",
                            _ => "unknown result",
                        }
                    ),
                    result: Some(json!({"car": car, "terminal_result": code})),
                },
                Err(reason) => Outcome::Failed {
                    reason,
                    result: None,
                },
            }
        })
    }
}

fn read_args(args: &Map<String, Value>) -> Result<(String, String, u8), String> {
    let car = args
        .get("car")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .ok_or("args.car (the car's id, a string) is required")?;
    let text = args
        .get("text")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .ok_or("args.text (a non-empty string) is required")?;
    let (gbk, _, unmappable) = encoding_rs::GBK.encode(text);
    if unmappable {
        return Err("args.text has characters GBK (the terminal's encoding) cannot carry".into());
    }
    if gbk.len() > MAX_TEXT_BYTES {
        return Err(format!(
            "args.text is {} bytes in GBK; a terminal takes at most {MAX_TEXT_BYTES}",
            gbk.len()
        ));
    }
    let flag = |key: &str, default: bool| -> Result<bool, String> {
        match args.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(format!("args.{key} must be true or false")),
        }
    };
    let mut flags = FLAG_DISPLAY;
    if flag("tts", true)? {
        flags |= FLAG_TTS;
    }
    if flag("emergency", false)? {
        flags |= FLAG_EMERGENCY;
    }
    Ok((car.to_string(), text.to_string(), flags))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::handlers::args;

    #[test]
    fn arguments_are_checked_before_anything_is_sent() {
        assert_eq!(
            read_args(&args(json!({"car": "car-02", "text": "请到文化路口"}))),
            Ok((
                "car-02".into(),
                "请到文化路口".into(),
                FLAG_DISPLAY | FLAG_TTS
            ))
        );
        assert_eq!(
            read_args(&args(
                json!({"car": "car-02", "text": "x", "tts": false, "emergency": true})
            ))
            .unwrap()
            .2,
            FLAG_DISPLAY | FLAG_EMERGENCY
        );
        assert!(read_args(&args(json!({"text": "x"})))
            .unwrap_err()
            .contains("args.car"));
        assert!(read_args(&args(json!({"car": "c", "text": " "})))
            .unwrap_err()
            .contains("args.text"));
        assert!(read_args(&args(json!({"car": "c", "text": "🚓"})))
            .unwrap_err()
            .contains("GBK"));
        let long = "很".repeat(501);
        assert!(read_args(&args(json!({"car": "c", "text": long})))
            .unwrap_err()
            .contains("1000"));
        assert!(read_args(&args(json!({"car": "c", "text": "x", "tts": "yes"}))).is_err());
    }

    #[test]
    fn a_newer_connection_of_a_car_replaces_the_older_and_the_older_leaving_keeps_it() {
        let links = CarLinks::default();
        let (a, _ra) = mpsc::channel(1);
        let (b, _rb) = mpsc::channel(1);
        let first = links.attach("car-02", a);
        let second = links.attach("car-02", b.clone());
        links.detach("car-02", first);
        assert!(links.get("car-02").is_some_and(|tx| tx.same_channel(&b)));
        links.detach("car-02", second);
        assert!(links.get("car-02").is_none());
    }
}
