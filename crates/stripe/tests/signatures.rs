//! `Stripe-Signature` verification as Stripe documents it: `t=…,v1=…[,v1=…]`, HMAC-SHA256 of
//! `"{t}.{payload}"` keyed by the endpoint secret, any matching `v1` passes, the timestamp
//! within a tolerance either way.

use proptest::prelude::*;
use wagate_stripe::webhook::signature_v1;
use wagate_stripe::{sign, verify_signature, SignatureError, DEFAULT_TOLERANCE_SECS};

const SECRET: &str = "whsec_test_secret";
const NOW: i64 = 1_750_000_000;
const PAYLOAD: &[u8] = br#"{"id":"evt_1","object":"event","type":"invoice.paid"}"#;

fn verify(payload: &[u8], header: &str) -> Result<(), SignatureError> {
    verify_signature(payload, header, SECRET, NOW, DEFAULT_TOLERANCE_SECS)
}

#[test]
fn a_valid_signature_passes() {
    assert_eq!(verify(PAYLOAD, &sign(PAYLOAD, SECRET, NOW)), Ok(()));
    // Within the tolerance either way.
    assert_eq!(verify(PAYLOAD, &sign(PAYLOAD, SECRET, NOW - 300)), Ok(()));
    assert_eq!(verify(PAYLOAD, &sign(PAYLOAD, SECRET, NOW + 300)), Ok(()));
}

#[test]
fn one_valid_v1_among_several_passes() {
    let good = signature_v1(PAYLOAD, SECRET, NOW);
    let other = signature_v1(PAYLOAD, "whsec_old_secret", NOW);
    let header = format!("t={NOW},v1={other},v1={good},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39");
    assert_eq!(verify(PAYLOAD, &header), Ok(()));
    let header = format!("t={NOW},v1=not-hex,v1={good}");
    assert_eq!(verify(PAYLOAD, &header), Ok(()));
    // Stripe's order is not guaranteed: `t` may come after the signatures.
    assert_eq!(verify(PAYLOAD, &format!("v1={good},t={NOW}")), Ok(()));
    let header = format!("t={NOW},v1={other},v1={other}");
    assert_eq!(verify(PAYLOAD, &header), Err(SignatureError::Mismatch));
}

#[test]
fn a_tampered_payload_fails() {
    let header = sign(PAYLOAD, SECRET, NOW);
    let tampered = String::from_utf8_lossy(PAYLOAD).replace("invoice.paid", "invoice.paie");
    assert_eq!(
        verify(tampered.as_bytes(), &header),
        Err(SignatureError::Mismatch)
    );
    let mut longer = PAYLOAD.to_vec();
    longer.push(b' ');
    assert_eq!(verify(&longer, &header), Err(SignatureError::Mismatch));
}

#[test]
fn a_wrong_secret_fails() {
    let header = sign(PAYLOAD, "whsec_someone_else", NOW);
    assert_eq!(verify(PAYLOAD, &header), Err(SignatureError::Mismatch));
    assert_eq!(
        verify_signature(PAYLOAD, &header, "", NOW, 300),
        Err(SignatureError::EmptySecret)
    );
}

#[test]
fn an_expired_timestamp_fails_even_when_signed_right() {
    let t = NOW - DEFAULT_TOLERANCE_SECS - 1;
    assert_eq!(
        verify(PAYLOAD, &sign(PAYLOAD, SECRET, t)),
        Err(SignatureError::TimestampOutsideTolerance {
            timestamp: t,
            now: NOW,
            tolerance_secs: DEFAULT_TOLERANCE_SECS
        })
    );
}

#[test]
fn a_future_timestamp_beyond_the_tolerance_fails() {
    let t = NOW + DEFAULT_TOLERANCE_SECS + 1;
    assert!(matches!(
        verify(PAYLOAD, &sign(PAYLOAD, SECRET, t)),
        Err(SignatureError::TimestampOutsideTolerance { .. })
    ));
}

#[test]
fn malformed_headers_fail() {
    let good = signature_v1(PAYLOAD, SECRET, NOW);
    for header in [
        String::new(),
        "nonsense".to_owned(),
        format!("v1={good}"),
        format!("t=soon,v1={good}"),
        format!("t={NOW},t={NOW},v1={good}"),
        format!("t={NOW};v1={good}"),
    ] {
        assert!(
            matches!(
                verify(PAYLOAD, &header),
                Err(SignatureError::MalformedHeader(_))
            ),
            "{header:?}"
        );
    }
    assert_eq!(
        verify(PAYLOAD, &format!("t={NOW}")),
        Err(SignatureError::NoSignature)
    );
    assert_eq!(
        verify(PAYLOAD, &format!("t={NOW},v0={good}")),
        Err(SignatureError::NoSignature)
    );
}

proptest! {
    #[test]
    fn sign_then_verify_round_trips(
        payload in proptest::collection::vec(any::<u8>(), 0..2048),
        secret in "[ -~]{1,64}",
        t in 0i64..4_000_000_000,
        skew in -DEFAULT_TOLERANCE_SECS..=DEFAULT_TOLERANCE_SECS,
    ) {
        let header = sign(&payload, &secret, t);
        prop_assert_eq!(
            verify_signature(&payload, &header, &secret, t + skew, DEFAULT_TOLERANCE_SECS),
            Ok(())
        );
        // The same header never verifies another payload.
        let mut other = payload.clone();
        other.push(0);
        prop_assert_eq!(
            verify_signature(&other, &header, &secret, t, DEFAULT_TOLERANCE_SECS),
            Err(SignatureError::Mismatch)
        );
    }
}
