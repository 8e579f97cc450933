//! `radio.text`: a text message from dispatch to a radio or a talkgroup, sent as SDS-TL
//! through the station's base radio (`AT+CMGS`), answered `done` once the radio took it and,
//! when a delivery report was asked for, with whether it was delivered. The command finds the
//! base radio's driver task in [`RadioLinks`], which every `tetra` device fills at start.

use crate::commands::handlers::{CommandContext, Handler, Outcome, Running};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How long the radio may take to accept a message (it may be behind a poll, or initialising).
pub const ACCEPT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a delivery report is waited for once the radio took the message.
pub const REPORT_TIMEOUT: Duration = Duration::from_secs(30);
/// The most text an SDS-TL message carries: 2047 bits less the 4 header bytes, in bytes.
pub const MAX_TEXT_BYTES: usize = 251;

/// The radio took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The SDS-TL message reference the station gave it (delivery reports name it).
    pub reference: u8,
    /// The radio's own reference from `+CMGS`, if it gave one.
    pub radio_reference: Option<u16>,
    /// `latin1` or `ucs2`.
    pub coding: &'static str,
}

/// A text for the base radio to send, and where its outcome goes.
pub struct SendRequest {
    /// ISSI or group (GSSI), digits.
    pub to: String,
    pub text: String,
    /// Whether to ask for a delivery report.
    pub report: bool,
    pub accepted: oneshot::Sender<Result<Accepted, String>>,
    /// The delivery status (SDS-REPORT), when asked for and it comes.
    pub delivered: Option<oneshot::Sender<u8>>,
}

/// The base radios of the daemon, by device id → their driver task's queue, and the radios
/// their `radios` tables name (so dispatch can text a car's radio or an officer's handheld).
#[derive(Default)]
pub struct RadioLinks {
    radios: Mutex<BTreeMap<String, mpsc::Sender<SendRequest>>>,
    known: Mutex<Vec<KnownRadio>>,
}

/// A radio a base radio's `radios` table names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownRadio {
    /// Its device id in events.
    pub device: String,
    pub issi: String,
    pub officer: Option<String>,
    pub car: Option<String>,
    /// The base radio that reaches it.
    pub base: String,
}

impl RadioLinks {
    /// The base radio `radio` takes texts on `tx`; `radios` is its table of ISSIs.
    pub fn attach(
        &self,
        radio: &str,
        tx: mpsc::Sender<SendRequest>,
        radios: &BTreeMap<String, super::config::RadioEntry>,
    ) {
        self.lock().insert(radio.to_string(), tx);
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.retain(|k| k.base != radio);
        known.extend(radios.iter().map(|(issi, e)| KnownRadio {
            device: e.id.clone().unwrap_or_else(|| format!("issi-{issi}")),
            issi: issi.clone(),
            officer: e.officer.clone(),
            car: e.car.clone(),
            base: radio.to_string(),
        }));
    }

    /// The radios the base radios' tables name.
    pub fn known(&self) -> Vec<KnownRadio> {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The radio `name`, or the only / first one when no name is given.
    pub fn get(&self, name: Option<&str>) -> Result<(String, mpsc::Sender<SendRequest>), String> {
        let radios = self.lock();
        match name {
            Some(n) => radios
                .get(n)
                .map(|tx| (n.to_string(), tx.clone()))
                .ok_or_else(|| {
                    format!(
                        "args.radio {n:?} is not a base radio of this station (it has: {})",
                        radios.keys().cloned().collect::<Vec<_>>().join(", ")
                    )
                }),
            None => radios
                .iter()
                .next()
                .map(|(n, tx)| (n.clone(), tx.clone()))
                .ok_or_else(|| "this station has no base radio".to_string()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, mpsc::Sender<SendRequest>>> {
        self.radios.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The `radio.text` command: `args: {to, text, report?: bool (true), radio?: device id}`.
pub struct TextCommand {
    pub links: Arc<RadioLinks>,
}

/// The command's checked arguments.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    to: String,
    text: String,
    report: bool,
    radio: Option<String>,
}

impl Handler for TextCommand {
    fn name(&self) -> &'static str {
        "radio.text"
    }

    fn run<'a>(&'a self, args: &'a Map<String, Value>, _ctx: &'a CommandContext) -> Running<'a> {
        Box::pin(async move {
            let args = match read_args(args) {
                Ok(a) => a,
                Err(why) => return Outcome::BadArgs(why),
            };
            let (radio, link) = match self.links.get(args.radio.as_deref()) {
                Ok(l) => l,
                Err(why) => return Outcome::BadArgs(why),
            };
            let failed = |reason: String| Outcome::Failed {
                reason,
                result: None,
            };
            let (accepted_tx, accepted) = oneshot::channel();
            let (delivered_tx, delivered) = oneshot::channel();
            let request = SendRequest {
                to: args.to.clone(),
                text: args.text,
                report: args.report,
                accepted: accepted_tx,
                delivered: args.report.then_some(delivered_tx),
            };
            if link.send(request).await.is_err() {
                return failed(format!("base radio {radio} is stopping"));
            }
            let accepted = match tokio::time::timeout(ACCEPT_TIMEOUT, accepted).await {
                Ok(Ok(Ok(a))) => a,
                Ok(Ok(Err(why))) => return failed(format!("{radio} to {}: {why}", args.to)),
                Ok(Err(_)) => return failed(format!("{radio}: the driver dropped the message")),
                Err(_) => {
                    return failed(format!(
                        "{radio} to {}: the radio did not take the message within {} s",
                        args.to,
                        ACCEPT_TIMEOUT.as_secs()
                    ))
                }
            };
            let mut result = json!({
                "radio": radio, "to": args.to, "reference": accepted.reference,
                "radio_reference": accepted.radio_reference, "coding": accepted.coding,
                "accepted": true, "delivered": null,
            });
            if args.report {
                match tokio::time::timeout(REPORT_TIMEOUT, delivered).await {
                    Ok(Ok(status)) => {
                        let ok = stationd_proto::tetra::sds::delivered(status).unwrap_or(false);
                        result["delivered"] = ok.into();
                        result["delivery_status"] = status.into();
                        if !ok {
                            return Outcome::Failed {
                                reason: format!(
                                    "{radio} to {}: not delivered (delivery status 0x{status:02X})",
                                    args.to
                                ),
                                result: Some(result),
                            };
                        }
                    }
                    Ok(Err(_)) => {
                        result["delivery_report"] = "lost: the radio's port closed".into();
                    }
                    Err(_) => {
                        result["delivery_report"] =
                            format!("none within {} s", REPORT_TIMEOUT.as_secs()).into();
                    }
                }
            }
            Outcome::Done(result)
        })
    }
}

fn read_args(args: &Map<String, Value>) -> Result<Args, String> {
    let to = args
        .get("to")
        .and_then(Value::as_str)
        .ok_or("args.to (the ISSI or group id to send to, digits, a string) is required")?;
    let to = stationd_proto::tetra::issi(to)
        .ok_or_else(|| format!("args.to {to:?} is not an ISSI or group id (digits only)"))?;
    let text = args
        .get("text")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .ok_or("args.text (a non-empty string) is required")?;
    if text.chars().any(|c| u32::from(c) > 0xFFFF) {
        return Err(
            "args.text has characters outside UCS-2 (e.g. emoji) that a radio cannot show".into(),
        );
    }
    let bytes = if text.chars().all(|c| u32::from(c) <= 0xFF) {
        text.chars().count()
    } else {
        2 * text.chars().count()
    };
    if bytes > MAX_TEXT_BYTES {
        return Err(format!(
            "args.text is too long for one SDS: at most {MAX_TEXT_BYTES} Latin-1 or {} other characters",
            MAX_TEXT_BYTES / 2
        ));
    }
    let report = match args.get("report") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("args.report must be true or false".into()),
    };
    let radio = match args.get("radio") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err("args.radio must be a base radio's device id".into()),
    };
    Ok(Args {
        to,
        text: text.to_string(),
        report,
        radio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::handlers::args;

    #[test]
    fn arguments_are_checked_before_anything_is_sent() {
        assert_eq!(
            read_args(&args(json!({"to": "1001", "text": "请回电"}))),
            Ok(Args {
                to: "1001".into(),
                text: "请回电".into(),
                report: true,
                radio: None
            })
        );
        assert!(read_args(&args(json!({"text": "x"})))
            .unwrap_err()
            .contains("args.to"));
        assert!(read_args(&args(json!({"to": "10a1", "text": "x"})))
            .unwrap_err()
            .contains("digits"));
        assert!(read_args(&args(json!({"to": "1001", "text": ""}))).is_err());
        assert!(read_args(&args(json!({"to": "1001", "text": "🚓"})))
            .unwrap_err()
            .contains("UCS-2"));
        assert!(
            read_args(&args(json!({"to": "1001", "text": "x".repeat(252)})))
                .unwrap_err()
                .contains("251")
        );
        assert!(read_args(&args(json!({"to": "1001", "text": "很".repeat(126)}))).is_err());
        assert!(read_args(&args(json!({"to": "1001", "text": "很".repeat(125)}))).is_ok());
        assert!(read_args(&args(json!({"to": "1001", "text": "x", "report": 1}))).is_err());
    }
}
