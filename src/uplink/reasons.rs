//! MQTT 5's reason codes in words: what an MQTT 5 broker said, and what to check.
//!
//! A 3.1.1 broker says little: a CONNACK return code, or it closes the connection without a
//! word. An MQTT 5 broker says why it refused the login, a publish or the command
//! subscription, and why it ends a session. The technician reading the journal or `stationd
//! status` gets the cause, what to check, and the code (`not authorized (0x87): …`); the
//! broker's own reason string, when it sends one, follows in quotes.

use super::error::LinkError;
use rumqttc::v5::mqttbytes::v5::{
    ConnectReturnCode, DisconnectReasonCode, PubAckReason, SubscribeReasonCode,
};
use rumqttc::v5::{ConnectionError, StateError};

/// `words (0xNN): what to check`, and the broker's reason string in quotes when it gave one.
fn said(words: &str, code: u8, check: &str, reason_string: Option<&str>) -> String {
    let mut text = format!("{words} (0x{code:02X})");
    if !check.is_empty() {
        text.push_str(": ");
        text.push_str(check);
    }
    if let Some(r) = reason_string.filter(|r| !r.is_empty()) {
        text.push_str(&format!(" (the broker says {r:?})"));
    }
    text
}

const CHECK_LOGIN: &str =
    "check username and password_file, or the client certificate, against the broker's accounts";
const CHECK_ACL: &str =
    "the broker's access rules (ACL) do not let this station use its topics; ask central to allow <topic_prefix>/<station id>/#";
const CHECK_ID: &str =
    "the broker does not accept the client id (stationd-<station id>): ask central whether this station is registered";
const CHECK_BUSY: &str = "the broker is overloaded or restarting; the station retries";
const CHECK_SIZE: &str =
    "a message is larger than the broker allows; ask central to raise its maximum packet size";

/// A CONNACK refusing the connection.
pub fn connack(code: ConnectReturnCode) -> LinkError {
    use ConnectReturnCode as C;
    let refused = |words: &str, n: u8, check: &str| LinkError::Refused(said(words, n, check, None));
    let transient =
        |words: &str, n: u8, check: &str| LinkError::Network(said(words, n, check, None));
    match code {
        C::BadUserNamePassword => refused("the broker refused the login: bad user name or password", 0x86, CHECK_LOGIN),
        C::NotAuthorized => refused("the broker refused the login: not authorized", 0x87, CHECK_LOGIN),
        C::BadAuthenticationMethod => refused("the broker refused the login: bad authentication method", 0x8C, CHECK_LOGIN),
        C::ClientIdentifierNotValid | C::BadClientId => refused("the broker refused the client id", 0x85, CHECK_ID),
        C::Banned => refused("the broker has banned this client", 0x8A, "ask central why this station is banned"),
        C::UnsupportedProtocolVersion | C::RefusedProtocolVersion => refused(
            "the broker does not speak MQTT 5",
            0x84,
            "write mqtt:// (or mqtts://) for this broker instead of mqtt5://",
        ),
        C::ServerUnavailable | C::ServiceUnavailable => transient("the broker is unavailable", 0x88, CHECK_BUSY),
        C::ServerBusy => transient("the broker is busy", 0x89, CHECK_BUSY),
        C::ConnectionRateExceeded => transient(
            "the broker refuses connections this fast",
            0x9F,
            "too many stations connect at once; the station backs off and retries",
        ),
        C::QuotaExceeded => transient("the broker's quota for this client is exceeded", 0x97, CHECK_BUSY),
        C::UseAnotherServer => refused(
            "the broker asks this station to use another server",
            0x9C,
            "ask central which broker to list in `brokers`",
        ),
        C::ServerMoved => refused(
            "the broker has moved",
            0x9D,
            "ask central for its new address and change `brokers`",
        ),
        C::PacketTooLarge => refused("the broker refused the CONNECT as too large", 0x95, CHECK_SIZE),
        C::MalformedPacket => transient("the broker found the CONNECT malformed", 0x81, ""),
        C::ProtocolError => transient("the broker saw a protocol error in the CONNECT", 0x82, ""),
        C::ImplementationSpecificError => transient("the broker refused the connection (its own reason)", 0x83, ""),
        C::UnspecifiedError => transient("the broker refused the connection without a reason", 0x80, ""),
        C::TopicNameInvalid => refused("the broker refused the last will's topic", 0x90, CHECK_ACL),
        C::PayloadFormatInvalid => transient("the broker refused the last will's payload format", 0x99, ""),
        C::RetainNotSupported => refused(
            "the broker does not support retained messages",
            0x9A,
            "the station's status and state topics are retained; central's broker must allow retain",
        ),
        C::QoSNotSupported => refused(
            "the broker does not support QoS 1",
            0x9B,
            "the station publishes with QoS 1; central's broker must allow it",
        ),
        C::Success => LinkError::Network("the broker's CONNACK said success and failure at once".into()),
    }
}

/// A DISCONNECT the broker sent to end the session.
pub fn disconnect(code: DisconnectReasonCode, reason_string: Option<&str>) -> LinkError {
    use DisconnectReasonCode as D;
    let n = code as u8;
    let refused =
        |words: &str, check: &str| LinkError::Refused(said(words, n, check, reason_string));
    let transient =
        |words: &str, check: &str| LinkError::Network(said(words, n, check, reason_string));
    match code {
        D::SessionTakenOver => transient(
            "another client connected with this station's client id and took the session over",
            "two boxes configured with the same station id? (stationd-<station id> must be unique)",
        ),
        D::ServerShuttingDown => transient(
            "the broker is shutting down",
            "the station reconnects, to the next broker if there is one",
        ),
        D::ServerBusy => transient("the broker is busy", CHECK_BUSY),
        D::KeepAliveTimeout => transient(
            "the broker heard nothing from this station within the keep-alive",
            "the link stalls; check the uplink, or raise keep_alive_secs",
        ),
        D::NotAuthorized => refused("the broker ended the session: not authorized", CHECK_ACL),
        D::AdministrativeAction => transient("an administrator at central ended this session", ""),
        D::MessageRateTooHigh => transient(
            "the broker ended the session: messages too fast",
            "lower the replay's rate (replay_max_bytes_per_s) or ask central for a higher limit",
        ),
        D::QuotaExceeded => transient("the broker ended the session: quota exceeded", CHECK_BUSY),
        D::PacketTooLarge => refused(
            "the broker ended the session: a message too large",
            CHECK_SIZE,
        ),
        D::ReceiveMaximumExceeded => transient(
            "the broker ended the session: more messages in flight than it allows",
            "lower `window` in [uplink]",
        ),
        D::UseAnotherServer => refused(
            "the broker asks this station to use another server",
            "ask central which broker to list in `brokers`",
        ),
        D::ServerMoved => refused(
            "the broker has moved",
            "ask central for its new address and change `brokers`",
        ),
        D::MaximumConnectTime => transient("the broker's maximum connection time was reached", ""),
        D::ConnectionRateExceeded => transient(
            "the broker ended the session: connections too fast",
            CHECK_BUSY,
        ),
        D::TopicNameInvalid | D::TopicFilterInvalid => refused(
            "the broker ended the session: a topic it does not accept",
            CHECK_ACL,
        ),
        D::RetainNotSupported => refused(
            "the broker does not support retained messages",
            "central's broker must allow retain",
        ),
        D::QoSNotSupported => refused(
            "the broker does not support QoS 1",
            "central's broker must allow it",
        ),
        D::NormalDisconnection | D::DisconnectWithWillMessage => {
            transient("the broker closed the session", "")
        }
        _ => transient("the broker ended the session", ""),
    }
}

/// A PUBACK's reason: None when the broker took the message (also when nobody subscribes).
pub fn puback(reason: PubAckReason, reason_string: Option<&str>) -> Option<LinkError> {
    use PubAckReason as P;
    let refused = |words: &str, n: u8, check: &str| {
        Some(LinkError::Refused(said(words, n, check, reason_string)))
    };
    let transient = |words: &str, n: u8, check: &str| {
        Some(LinkError::Network(said(words, n, check, reason_string)))
    };
    match reason {
        P::Success | P::NoMatchingSubscribers => None,
        P::NotAuthorized => refused("not authorized to publish there", 0x87, CHECK_ACL),
        P::TopicNameInvalid => refused("the topic name is not accepted", 0x90, CHECK_ACL),
        P::PayloadFormatInvalid => refused(
            "the payload is not what its format indicator says",
            0x99,
            "",
        ),
        P::QuotaExceeded => transient("the broker's quota is exceeded", 0x97, CHECK_BUSY),
        P::PacketIdentifierInUse => transient("the packet id is in use", 0x91, ""),
        P::ImplementationSpecificError => {
            transient("the broker refused it (its own reason)", 0x83, "")
        }
        P::UnspecifiedError => transient("the broker refused it without a reason", 0x80, ""),
    }
}

/// A SUBACK's code for the command subscription: None when it was granted.
pub fn suback(code: &SubscribeReasonCode) -> Option<String> {
    use SubscribeReasonCode as S;
    let (words, n, check) = match code {
        S::Success(_) => return None,
        S::NotAuthorized => ("not authorized to subscribe", 0x87, CHECK_ACL),
        S::TopicFilterInvalid => ("the topic filter is not accepted", 0x8F, CHECK_ACL),
        S::QuotaExceeded => ("the broker's quota is exceeded", 0x97, CHECK_BUSY),
        S::WildcardSubscriptionsNotSupported => (
            "the broker does not allow wildcard subscriptions",
            0xA2,
            "the station subscribes to <topic_prefix>/<station id>/cmd/+; central's broker must allow it",
        ),
        S::ImplementationSpecific => ("the broker refused it (its own reason)", 0x83, ""),
        S::PkidInUse => ("the packet id is in use", 0x91, ""),
        S::SharedSubscriptionsNotSupported => ("shared subscriptions are not supported", 0x9E, ""),
        S::SubscriptionIdNotSupported => ("subscription ids are not supported", 0xA1, ""),
        S::Unspecified | S::Failure => ("the broker refused it without a reason", 0x80, ""),
    };
    Some(said(words, n, check, None))
}

/// rumqttc's MQTT 5 connection error, with its cause and what to check.
pub fn connection_error(e: &ConnectionError) -> LinkError {
    match e {
        ConnectionError::ConnectionRefused(code) => connack(*code),
        ConnectionError::MqttState(StateError::ConnFail { reason }) => connack(*reason),
        ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code,
            reason_string,
        }) => disconnect(*reason_code, reason_string.as_deref()),
        ConnectionError::MqttState(StateError::OutgoingPacketTooLarge { pkt_size, max }) => {
            LinkError::Refused(format!(
                "a message of {pkt_size} bytes is larger than the broker's maximum packet size of {max} bytes: {CHECK_SIZE}"
            ))
        }
        ConnectionError::Tls(_) => LinkError::Tls(format!(
            "TLS handshake failed: check ca_file (the CA of central's broker), the broker's certificate and host name, and client_cert/client_key ({e})"
        )),
        ConnectionError::Io(io) | ConnectionError::MqttState(StateError::Io(io)) => {
            let raw = e.to_string();
            LinkError::Network(format!("{} ({raw})", super::error::io_cause(io.kind(), &raw)))
        }
        ConnectionError::Timeout(_) => LinkError::Network(format!(
            "network timeout: the broker does not answer (route, firewall, or the broker is overloaded) ({e})"
        )),
        ConnectionError::MqttState(StateError::AwaitPingResp) => LinkError::Network(format!(
            "the broker stopped answering keep-alive pings: the link or the broker hangs ({e})"
        )),
        ConnectionError::MqttState(StateError::ConnectionAborted) => LinkError::Network(format!(
            "the connection was cut (by the broker or the network) ({e})"
        )),
        _ if super::error::looks_cut(&e.to_string()) => LinkError::Network(format!(
            "the connection was cut (by the broker or the network) ({e})"
        )),
        _ => LinkError::Network(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_why_and_what_to_check_with_the_code() {
        let e = puback(PubAckReason::NotAuthorized, None).unwrap();
        assert!(matches!(e, LinkError::Refused(_)) && !e.is_transient());
        assert_eq!(
            e.to_string(),
            format!("not authorized to publish there (0x87): {CHECK_ACL}")
        );
        assert!(puback(PubAckReason::NoMatchingSubscribers, None).is_none());
        let quota = puback(PubAckReason::QuotaExceeded, Some("slow down")).unwrap();
        assert!(quota.is_transient());
        assert!(
            quota
                .to_string()
                .ends_with("(the broker says \"slow down\")"),
            "{quota}"
        );

        let login = connack(ConnectReturnCode::BadUserNamePassword);
        assert!(!login.is_transient());
        assert!(
            login.to_string().contains("(0x86)") && login.to_string().contains("password_file")
        );
        assert!(connack(ConnectReturnCode::ServerBusy).is_transient());
        assert!(connack(ConnectReturnCode::UnsupportedProtocolVersion)
            .to_string()
            .contains("mqtt://"));

        let taken = disconnect(DisconnectReasonCode::SessionTakenOver, None);
        assert!(taken.is_transient());
        assert!(taken
            .to_string()
            .starts_with("another client connected with this station's client id"));
        assert!(taken.to_string().contains("(0x8E)"));
        assert!(disconnect(DisconnectReasonCode::NotAuthorized, None)
            .to_string()
            .contains("ACL"));

        assert!(suback(&SubscribeReasonCode::Success(
            rumqttc::v5::mqttbytes::QoS::AtLeastOnce
        ))
        .is_none());
        assert!(suback(&SubscribeReasonCode::NotAuthorized)
            .unwrap()
            .contains("(0x87)"));
    }

    #[test]
    fn connection_errors_keep_the_v311_explanations() {
        let refused = connection_error(&ConnectionError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert!(
            refused
                .to_string()
                .starts_with("connection refused: nothing listens"),
            "{refused}"
        );
        let server = connection_error(&ConnectionError::MqttState(StateError::ServerDisconnect {
            reason_code: DisconnectReasonCode::ServerShuttingDown,
            reason_string: Some("maintenance".into()),
        }));
        assert_eq!(
            server.to_string(),
            "the broker is shutting down (0x8B): the station reconnects, to the next broker if there is one (the broker says \"maintenance\")"
        );
    }
}
