use std::time::Duration;

use wagate_app::connector::ConnectorEvent;
use wagate_domain::ids::LineId;
use wagate_domain::line::{BlockedReason, MessageStatus};
use whatsapp_rust::types::events::{
    ClientOutdated, ConnectFailure, ConnectFailureReason, Connected, Disconnected, Event,
    LoggedOut, PairError, PairSuccess, PairingQrCode, PairingQrCodesExhausted, Receipt, ServerAck,
    StreamReplaced, TempBanReason, TemporaryBan,
};
use whatsapp_rust::types::message::MessageSource;
use whatsapp_rust::types::presence::ReceiptType;
use whatsapp_rust::wacore::net::DisconnectReason;
use whatsapp_rust::Jid;

use super::{LineMachine, Step, NACK_RATE_LIMIT_WAIT_SECS};

fn pair_success(phone: &str) -> Event {
    Event::PairSuccess(
        PairSuccess::builder()
            .id(Jid::pn_device(phone, 12))
            .lid(Jid::new("100000012345678", whatsapp_rust::Server::Lid))
            .business_name(String::new())
            .platform("android".into())
            .build(),
    )
}

fn connected() -> Event {
    Event::Connected(Connected::builder().build())
}

fn disconnected() -> Event {
    Event::Disconnected(
        Disconnected::builder()
            .reason(DisconnectReason::ReadError("connection reset".into()))
            .build(),
    )
}

fn logged_out(reason: ConnectFailureReason) -> Event {
    Event::LoggedOut(
        LoggedOut::builder()
            .on_connect(false)
            .reason(reason)
            .build(),
    )
}

fn emitted(steps: &[Step]) -> Vec<ConnectorEvent> {
    steps
        .iter()
        .filter_map(|s| match s {
            Step::Emit(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn qr_codes_are_kept_as_the_crate_rotates_them() {
    let line = LineId::generate();
    let mut m = LineMachine::new(false);
    let qr = Event::PairingQrCode(
        PairingQrCode::builder()
            .code("2@abc,def,ghi,jkl".into())
            .timeout(Duration::from_secs(60))
            .build(),
    );
    assert_eq!(
        m.step(&line, &qr),
        vec![Step::Qr {
            code: "2@abc,def,ghi,jkl".into(),
            timeout: Duration::from_secs(60)
        }]
    );
    let exhausted = Event::PairingQrCodesExhausted(
        PairingQrCodesExhausted::builder()
            .disconnected(true)
            .build(),
    );
    assert_eq!(
        m.step(&line, &exhausted),
        vec![Step::Stop { forget: false }]
    );
}

#[test]
fn a_pairing_is_reported_as_scanned_once_the_connection_is_up() {
    let line = LineId::generate();
    let mut m = LineMachine::new(false);
    // Nothing yet at pair success: the line can only send after the first connect.
    assert_eq!(m.step(&line, &pair_success("5511987650001")), vec![]);
    let steps = m.step(&line, &connected());
    assert_eq!(
        emitted(&steps),
        vec![ConnectorEvent::Scanned {
            line: line.clone(),
            phone_number: "+5511987650001".into(),
            calling: None
        }]
    );
    assert!(steps.contains(&Step::Up));
    // A later reconnect is not a second scan.
    assert_eq!(emitted(&m.step(&line, &connected())), vec![]);
}

#[test]
fn a_failed_pairing_leaves_the_line_pending() {
    let line = LineId::generate();
    let mut m = LineMachine::new(false);
    let error = Event::PairError(
        PairError::builder()
            .id(Jid::pn("5511987650001"))
            .lid(Jid::new("1", whatsapp_rust::Server::Lid))
            .business_name(String::new())
            .platform(String::new())
            .error("bad signature".into())
            .build(),
    );
    assert_eq!(m.step(&line, &error), vec![]);
    assert_eq!(emitted(&m.step(&line, &connected())), vec![]);
    // Drops of a line nobody linked are nobody's business.
    assert_eq!(m.step(&line, &disconnected()), vec![Step::Down]);
}

#[test]
fn transient_disconnects_drop_a_linked_line_once_per_outage() {
    let line = LineId::generate();
    let mut m = LineMachine::new(true);
    let dropped = vec![ConnectorEvent::Dropped { line: line.clone() }];
    assert_eq!(emitted(&m.step(&line, &disconnected())), dropped);
    assert_eq!(emitted(&m.step(&line, &disconnected())), vec![]);
    for reason in [
        ConnectFailureReason::Generic,
        ConnectFailureReason::InternalServerError,
        ConnectFailureReason::ServiceUnavailable,
        ConnectFailureReason::Unknown(999),
    ] {
        let failure = Event::ConnectFailure(ConnectFailure::builder().reason(reason).build());
        assert_eq!(emitted(&m.step(&line, &failure)), vec![]);
    }
    m.step(&line, &connected());
    let failure = Event::ConnectFailure(
        ConnectFailure::builder()
            .reason(ConnectFailureReason::ServiceUnavailable)
            .build(),
    );
    assert_eq!(emitted(&m.step(&line, &failure)), dropped);
}

#[test]
fn failures_with_their_own_events_are_not_drops() {
    let line = LineId::generate();
    for reason in [
        ConnectFailureReason::LoggedOut,
        ConnectFailureReason::TempBanned,
        ConnectFailureReason::ClientOutdated,
        ConnectFailureReason::AccountLocked,
    ] {
        let mut m = LineMachine::new(true);
        let failure = Event::ConnectFailure(ConnectFailure::builder().reason(reason).build());
        assert_eq!(m.step(&line, &failure), vec![]);
    }
}

#[test]
fn an_unlink_from_the_phone_logs_the_line_out_and_forgets_the_session() {
    let line = LineId::generate();
    for reason in [
        ConnectFailureReason::LoggedOut,
        ConnectFailureReason::UnknownLogout,
    ] {
        let mut m = LineMachine::new(true);
        let steps = m.step(&line, &logged_out(reason));
        assert_eq!(
            emitted(&steps),
            vec![ConnectorEvent::LoggedOut { line: line.clone() }]
        );
        assert!(steps.contains(&Step::Stop { forget: true }));
        // The next drop is not reported: the line is not linked any more.
        assert_eq!(emitted(&m.step(&line, &disconnected())), vec![]);
    }
}

#[test]
fn a_locked_account_is_banned() {
    let line = LineId::generate();
    let mut m = LineMachine::new(true);
    let steps = m.step(&line, &logged_out(ConnectFailureReason::AccountLocked));
    assert_eq!(
        emitted(&steps),
        vec![ConnectorEvent::Blocked {
            line: line.clone(),
            reason: BlockedReason::Banned
        }]
    );
    assert!(steps.contains(&Step::Stop { forget: true }));
}

#[test]
fn a_temporary_ban_blocks_the_line_until_it_connects_again() {
    let line = LineId::generate();
    let mut m = LineMachine::new(true);
    let ban = Event::TemporaryBan(
        TemporaryBan::builder()
            .code(TempBanReason::SentToTooManyPeople)
            .expire(whatsapp_rust::wacore::chrono::TimeDelta::hours(1))
            .build(),
    );
    assert_eq!(
        emitted(&m.step(&line, &ban)),
        vec![ConnectorEvent::Blocked {
            line: line.clone(),
            reason: BlockedReason::TemporarilyBanned
        }]
    );
    // The same ban again, and the drops while it lasts, say nothing new.
    assert_eq!(emitted(&m.step(&line, &ban)), vec![]);
    assert_eq!(emitted(&m.step(&line, &disconnected())), vec![]);
    assert_eq!(
        emitted(&m.step(&line, &connected())),
        vec![ConnectorEvent::Unblocked { line: line.clone() }]
    );
}

#[test]
fn an_outdated_client_blocks_the_line_and_alerts_the_operator() {
    let line = LineId::generate();
    let mut m = LineMachine::new(true);
    let steps = m.step(
        &line,
        &Event::ClientOutdated(ClientOutdated::builder().build()),
    );
    assert_eq!(
        emitted(&steps),
        vec![ConnectorEvent::Blocked {
            line: line.clone(),
            reason: BlockedReason::ClientOutdated
        }]
    );
    assert!(steps.contains(&Step::Outdated));
    assert!(!steps.contains(&Step::Replaced));
    assert!(steps.contains(&Step::Stop { forget: false }));
}

#[test]
fn a_replaced_stream_stops_the_client_without_fighting_back() {
    let line = LineId::generate();
    let mut m = LineMachine::new(true);
    let steps = m.step(
        &line,
        &Event::StreamReplaced(StreamReplaced::builder().build()),
    );
    assert_eq!(
        emitted(&steps),
        vec![ConnectorEvent::Dropped { line: line.clone() }]
    );
    assert!(steps.contains(&Step::Replaced));
    assert!(steps.contains(&Step::Stop { forget: false }));
}

fn receipt(kind: ReceiptType, group: bool) -> Event {
    let source = MessageSource {
        chat: Jid::pn("5511987650002"),
        sender: Jid::pn("5511987650002"),
        is_group: group,
        ..Default::default()
    };
    Event::Receipt(
        Receipt::builder()
            .source(source)
            .message_ids(vec!["3EB0AA".into(), "3EB0BB".into()])
            .timestamp(
                whatsapp_rust::wacore::chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap(),
            )
            .r#type(kind)
            .offline(false)
            .build(),
    )
}

#[test]
fn receipts_become_delivered_and_read() {
    let line = LineId::generate();
    let mut m = LineMachine::new(true);
    let ids = vec!["3EB0AA".to_owned(), "3EB0BB".to_owned()];
    for (kind, status) in [
        (ReceiptType::Delivered, MessageStatus::Delivered),
        (ReceiptType::Read, MessageStatus::Read),
        (ReceiptType::Played, MessageStatus::Read),
    ] {
        assert_eq!(
            m.step(&line, &receipt(kind, false)),
            vec![Step::Receipts {
                ids: ids.clone(),
                status
            }]
        );
    }
    // Our own other devices reading, retries and group receipts are not statuses.
    for kind in [
        ReceiptType::ReadSelf,
        ReceiptType::Retry,
        ReceiptType::Sender,
    ] {
        assert_eq!(m.step(&line, &receipt(kind, false)), vec![]);
    }
    assert_eq!(m.step(&line, &receipt(ReceiptType::Read, true)), vec![]);
}

#[test]
fn a_rate_limit_nack_fails_the_message_and_pauses_the_line() {
    let line = LineId::generate();
    let mut m = LineMachine::new(true);
    let nack = Event::ServerAck(
        ServerAck::builder()
            .id("3EB0AB".into())
            .class("message".into())
            .error("429".into())
            .build(),
    );
    assert_eq!(
        m.step(&line, &nack),
        vec![
            Step::Refused {
                id: "3EB0AB".into(),
                error: "whatsapp_rate_limited".into()
            },
            Step::Emit(ConnectorEvent::RateLimited {
                line: line.clone(),
                retry_after_seconds: NACK_RATE_LIMIT_WAIT_SECS,
            }),
        ]
    );
}

#[test]
fn a_nack_fails_the_message() {
    let line = LineId::generate();
    let mut m = LineMachine::new(true);
    let nack = Event::ServerAck(
        ServerAck::builder()
            .id("3EB0AA".into())
            .class("message".into())
            .error("479".into())
            .build(),
    );
    assert_eq!(
        m.step(&line, &nack),
        vec![Step::Refused {
            id: "3EB0AA".into(),
            error: "whatsapp_refused_479".into()
        }]
    );
    let ack = Event::ServerAck(
        ServerAck::builder()
            .id("3EB0AA".into())
            .class("message".into())
            .build(),
    );
    assert_eq!(m.step(&line, &ack), vec![]);
}
