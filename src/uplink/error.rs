//! Why the link to central failed, typed (`LinkError`, with `is_transient`) and in words a
//! technician can act on.
//!
//! rumqttc's errors say what failed inside the client (`Mqtt state: Mqtt
//! serialization/deserialization error: IO: Connection reset by peer`). The technician reading
//! `stationd status` or the journal wants the cause and where to look: the broker is not
//! listening, the name does not resolve, the login was refused, the certificate does not
//! match. The original text stays in parentheses for whoever debugs further.

use rumqttc::{ConnectReturnCode, ConnectionError, StateError};
use std::io::ErrorKind;

/// Why a connection attempt failed or a session ended. Its text (`Display`) is what the
/// journal, `stationd status` and systemd's STATUS= show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The network or the broker failed (refused, reset, timed out, no route, keep-alive).
    #[error("{0}")]
    Network(String),
    /// The broker accepted the TCP connection but sent no CONNACK in time.
    #[error("no CONNACK within {0}s")]
    NoConnAck(u64),
    /// The broker refused this station's login or client id.
    #[error("{0}")]
    Refused(String),
    /// The TLS handshake failed: certificates, CA or host name.
    #[error("{0}")]
    Tls(String),
    /// This side failed: the outbox could not be read or its writer stopped.
    #[error("{0}")]
    Local(String),
}

impl LinkError {
    /// Whether trying again may work by itself. A refused login or a certificate mismatch
    /// will not heal until someone changes the configuration here or at central: the uplink
    /// keeps retrying (central may fix its side), but logs it as an error to act on.
    pub fn is_transient(&self) -> bool {
        !matches!(self, LinkError::Refused(_) | LinkError::Tls(_))
    }

    /// The same kind of error with its text changed by `f` (e.g. to name what it concerns).
    pub fn reworded(self, f: impl FnOnce(&str) -> String) -> LinkError {
        match self {
            LinkError::Network(t) => LinkError::Network(f(&t)),
            LinkError::NoConnAck(s) => LinkError::Network(f(&format!("no CONNACK within {s}s"))),
            LinkError::Refused(t) => LinkError::Refused(f(&t)),
            LinkError::Tls(t) => LinkError::Tls(f(&t)),
            LinkError::Local(t) => LinkError::Local(f(&t)),
        }
    }

    /// rumqttc's error, with its cause and what to check (`cause: what to check (rumqttc's
    /// own text)`).
    pub fn from_connection(e: &ConnectionError) -> LinkError {
        match e {
            ConnectionError::ConnectionRefused(
                code @ (ConnectReturnCode::BadUserNamePassword
                | ConnectReturnCode::NotAuthorized
                | ConnectReturnCode::BadClientId),
            ) => LinkError::Refused(format!("{} ({e})", refused(*code))),
            ConnectionError::Tls(_) => LinkError::Tls(explain(e)),
            _ => LinkError::Network(explain(e)),
        }
    }
}

/// `cause: what to check (rumqttc's own text)`.
fn explain(e: &ConnectionError) -> String {
    let raw = e.to_string();
    let cause = match e {
        ConnectionError::ConnectionRefused(code) => refused(*code),
        ConnectionError::Tls(_) => {
            "TLS handshake failed: check ca_file (the CA of central's broker), the broker's certificate and host name, and client_cert/client_key".to_string()
        }
        ConnectionError::NetworkTimeout => "network timeout: the broker does not answer (route, firewall, or the broker is overloaded)".to_string(),
        ConnectionError::Io(io) => io_cause(io.kind(), &raw),
        ConnectionError::MqttState(StateError::Io(io)) => io_cause(io.kind(), &raw),
        ConnectionError::MqttState(StateError::AwaitPingResp) => {
            "the broker stopped answering keep-alive pings: the link or the broker hangs".to_string()
        }
        ConnectionError::MqttState(StateError::ConnectionAborted) => cut(),
        _ if looks_cut(&raw) => cut(),
        _ => return raw,
    };
    format!("{cause} ({raw})")
}

fn refused(code: ConnectReturnCode) -> String {
    match code {
        ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized => format!(
            "the broker refused the login ({code:?}): check username and password_file, or the client certificate"
        ),
        ConnectReturnCode::BadClientId => {
            "the broker refused the client id (the station id): ask central whether it is registered".to_string()
        }
        other => format!("the broker refused the connection ({other:?})"),
    }
}

pub(super) fn io_cause(kind: ErrorKind, raw: &str) -> String {
    match kind {
        ErrorKind::ConnectionRefused => {
            "connection refused: nothing listens at the broker's address and port (is the broker up? is the port right?)".to_string()
        }
        ErrorKind::TimedOut => {
            "connection timed out: the broker's address does not answer (route, firewall)".to_string()
        }
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof => cut(),
        _ if raw.contains("failed to lookup address") || raw.contains("Name or service not known") => {
            "cannot resolve the broker's host name (DNS, /etc/hosts)".to_string()
        }
        _ if kind == ErrorKind::HostUnreachable || kind == ErrorKind::NetworkUnreachable => {
            "no route to the broker: check the uplink interface and its routes".to_string()
        }
        _ if looks_cut(raw) => cut(),
        _ => "network error".to_string(),
    }
}

pub(super) fn looks_cut(raw: &str) -> bool {
    [
        "reset by peer",
        "Broken pipe",
        "closed by peer",
        "connection aborted",
    ]
    .iter()
    .any(|s| raw.contains(s))
}

fn cut() -> String {
    "the connection was cut (by the broker or the network)".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_failures_name_their_cause_and_keep_the_original_text() {
        let refused = explain(&ConnectionError::Io(std::io::Error::from(
            ErrorKind::ConnectionRefused,
        )));
        assert!(
            refused.starts_with("connection refused: nothing listens"),
            "{refused}"
        );
        assert!(refused.ends_with("(I/O: connection refused)"), "{refused}");

        let login = explain(&ConnectionError::ConnectionRefused(
            ConnectReturnCode::NotAuthorized,
        ));
        assert!(
            login.contains("refused the login") && login.contains("password_file"),
            "{login}"
        );

        let reset = explain(&ConnectionError::MqttState(StateError::Io(
            std::io::Error::from(ErrorKind::ConnectionReset),
        )));
        assert!(reset.starts_with("the connection was cut"), "{reset}");

        let dns = explain(&ConnectionError::Io(std::io::Error::other(
            "failed to lookup address information: Name or service not known",
        )));
        assert!(
            dns.starts_with("cannot resolve the broker's host name"),
            "{dns}"
        );

        // What it does not know it passes on as it is.
        assert_eq!(
            explain(&ConnectionError::RequestsDone),
            ConnectionError::RequestsDone.to_string()
        );
    }

    #[test]
    fn a_refused_login_or_a_certificate_mismatch_is_not_transient_a_cut_is() {
        let login = LinkError::from_connection(&ConnectionError::ConnectionRefused(
            ConnectReturnCode::BadUserNamePassword,
        ));
        assert!(matches!(login, LinkError::Refused(_)) && !login.is_transient());
        assert!(login.to_string().contains("password_file"), "{login}");
        let busy = LinkError::from_connection(&ConnectionError::ConnectionRefused(
            ConnectReturnCode::ServiceUnavailable,
        ));
        assert!(
            busy.is_transient(),
            "a busy broker may take us later: {busy}"
        );
        let reset = LinkError::from_connection(&ConnectionError::Io(std::io::Error::from(
            ErrorKind::ConnectionReset,
        )));
        assert!(reset.is_transient() && reset.to_string().starts_with("the connection was cut"));
        assert!(LinkError::NoConnAck(10).is_transient());
        assert_eq!(
            LinkError::NoConnAck(10).to_string(),
            "no CONNACK within 10s"
        );
    }
}
