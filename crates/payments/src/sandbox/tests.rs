use super::*;

fn account(s: &str) -> AccountId {
    AccountId::parse(s).unwrap()
}

fn store<'a>(acct: &'a AccountId, nonce: &'a str, key: &'a str) -> StoreCardRequest<'a> {
    StoreCardRequest {
        account: acct,
        account_name: "Acme",
        customer_id: None,
        source_id: nonce,
        idempotency_key: key,
    }
}

async fn stored_card(sandbox: &SandboxProcessor, acct: &AccountId) -> StoredCard {
    sandbox
        .store_card(&store(acct, "cnon:card-nonce-ok", "store-1"))
        .await
        .unwrap()
}

fn charge<'a>(acct: &'a AccountId, card: &'a StoredCard, key: &'a str) -> ChargeRequest<'a> {
    ChargeRequest {
        account: acct,
        customer_id: &card.customer_id,
        card_id: &card.card_id,
        amount_cents: 1500,
        currency: "USD",
        idempotency_key: key,
        note: "line_1 renewal",
    }
}

#[tokio::test]
async fn the_ok_nonce_stores_a_visa_ending_1111_for_a_sandbox_customer() {
    let sandbox = SandboxProcessor::new();
    let acct = account("acct_A");
    let card = stored_card(&sandbox, &acct).await;
    assert_eq!(card.customer_id, "sandbox-cust-acct_A");
    assert!(card.card_id.starts_with("ccof:sandbox-"));
    assert_eq!((card.brand.as_str(), card.last4.as_str()), ("VISA", "1111"));
    assert_eq!((card.exp_month, card.exp_year), (12, SANDBOX_CARD_EXP_YEAR));

    let mut again = store(&acct, "cnon:card-nonce-ok", "store-2");
    again.customer_id = Some("cust_existing");
    let second = sandbox.store_card(&again).await.unwrap();
    assert_eq!(second.customer_id, "cust_existing");
    assert_ne!(second.card_id, card.card_id);
}

#[tokio::test]
async fn storing_with_the_same_key_returns_the_same_card() {
    let sandbox = SandboxProcessor::new();
    let acct = account("acct_A");
    let first = stored_card(&sandbox, &acct).await;
    assert_eq!(stored_card(&sandbox, &acct).await, first);
    let other_nonce = sandbox
        .store_card(&store(&acct, "cnon:card-nonce-declined", "store-1"))
        .await;
    assert_eq!(
        other_nonce.unwrap_err().code(),
        Some("IDEMPOTENCY_KEY_REUSED")
    );
}

#[tokio::test]
async fn square_failure_nonces_decline_with_squares_codes() {
    let sandbox = SandboxProcessor::new();
    let acct = account("acct_A");
    let cases = [
        ("cnon:card-nonce-declined", "CARD_DECLINED"),
        ("cnon:card-nonce-rejected-cvv", "CVV_FAILURE"),
        (
            "cnon:card-nonce-rejected-postalcode",
            "ADDRESS_VERIFICATION_FAILURE",
        ),
        ("cnon:card-nonce-rejected-expiration", "INVALID_EXPIRATION"),
    ];
    for (nonce, code) in cases {
        let err = sandbox
            .store_card(&store(&acct, nonce, nonce))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, PaymentError::Declined { code: c, .. } if c == code),
            "{err}"
        );
    }
}

#[tokio::test]
async fn other_nonces_are_invalid_card_data() {
    let sandbox = SandboxProcessor::new();
    let acct = account("acct_A");
    let err = sandbox
        .store_card(&store(&acct, "cnon:whatever", "k"))
        .await
        .unwrap_err();
    assert!(matches!(&err, PaymentError::Invalid { code, .. } if code == "INVALID_CARD_DATA"));
    let used = sandbox
        .store_card(&store(&acct, "cnon:card-nonce-already-used", "k2"))
        .await
        .unwrap_err();
    assert_eq!(used.code(), Some("CARD_TOKEN_USED"));
}

#[tokio::test]
async fn a_repeated_charge_returns_the_first_payment_and_charges_once() {
    let sandbox = SandboxProcessor::new();
    let acct = account("acct_A");
    let card = stored_card(&sandbox, &acct).await;
    let first = sandbox.charge(&charge(&acct, &card, "c1")).await.unwrap();
    assert_eq!((first.amount_cents, first.currency.as_str()), (1500, "USD"));
    let again = sandbox.charge(&charge(&acct, &card, "c1")).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(sandbox.charges(), vec![("c1".to_owned(), 1500)]);
}

#[tokio::test]
async fn fail_next_declines_that_many_new_charges_of_that_account_only() {
    let sandbox = SandboxProcessor::new();
    let (a, b) = (account("acct_A"), account("acct_B"));
    let card_a = stored_card(&sandbox, &a).await;
    let card_b = sandbox
        .store_card(&store(&b, "cnon:card-nonce-ok", "store-b"))
        .await
        .unwrap();
    sandbox.fail_next(&a, 2);

    assert!(sandbox.charge(&charge(&b, &card_b, "b1")).await.is_ok());
    for key in ["a1", "a2"] {
        let err = sandbox.charge(&charge(&a, &card_a, key)).await.unwrap_err();
        assert_eq!(
            err,
            PaymentError::Declined {
                code: "CARD_DECLINED".into(),
                message: "Card declined (sandbox fail_next)".into()
            }
        );
    }
    assert!(sandbox.charge(&charge(&a, &card_a, "a3")).await.is_ok());
    assert_eq!(
        sandbox.charges(),
        vec![("b1".to_owned(), 1500), ("a3".to_owned(), 1500)]
    );
}

#[tokio::test]
async fn repeating_a_declined_charge_neither_consumes_fail_next_nor_charges() {
    let sandbox = SandboxProcessor::new();
    let acct = account("acct_A");
    let card = stored_card(&sandbox, &acct).await;
    sandbox.fail_next(&acct, 1);
    let declined = sandbox
        .charge(&charge(&acct, &card, "d1"))
        .await
        .unwrap_err();

    sandbox.fail_next(&acct, 1);
    assert_eq!(
        sandbox
            .charge(&charge(&acct, &card, "d1"))
            .await
            .unwrap_err(),
        declined
    );
    // The pending decline is still there for the next new key.
    assert!(sandbox.charge(&charge(&acct, &card, "d2")).await.is_err());
    assert!(sandbox.charge(&charge(&acct, &card, "d3")).await.is_ok());
    assert_eq!(sandbox.charges(), vec![("d3".to_owned(), 1500)]);
}

#[tokio::test]
async fn resolve_reports_what_happened_without_charging() {
    let sandbox = SandboxProcessor::new();
    let acct = account("acct_A");
    let card = stored_card(&sandbox, &acct).await;

    assert_eq!(
        sandbox.resolve(&charge(&acct, &card, "r1")).await.unwrap(),
        None
    );
    assert!(sandbox.charges().is_empty());

    let paid = sandbox.charge(&charge(&acct, &card, "r1")).await.unwrap();
    assert_eq!(
        sandbox.resolve(&charge(&acct, &card, "r1")).await.unwrap(),
        Some(paid)
    );

    sandbox.fail_next(&acct, 1);
    let declined = sandbox
        .charge(&charge(&acct, &card, "r2"))
        .await
        .unwrap_err();
    assert_eq!(
        sandbox
            .resolve(&charge(&acct, &card, "r2"))
            .await
            .unwrap_err(),
        declined
    );
    assert_eq!(sandbox.charges().len(), 1);
}

#[tokio::test]
async fn a_key_reused_for_another_amount_is_rejected() {
    let sandbox = SandboxProcessor::new();
    let acct = account("acct_A");
    let card = stored_card(&sandbox, &acct).await;
    sandbox.charge(&charge(&acct, &card, "k")).await.unwrap();
    let mut other = charge(&acct, &card, "k");
    other.amount_cents = 2000;
    assert_eq!(
        sandbox.charge(&other).await.unwrap_err().code(),
        Some("IDEMPOTENCY_KEY_REUSED")
    );
    assert_eq!(
        sandbox.resolve(&other).await.unwrap_err().code(),
        Some("IDEMPOTENCY_KEY_REUSED")
    );
    assert_eq!(sandbox.charges().len(), 1);
}

#[tokio::test]
async fn bad_amounts_currencies_and_disabled_cards_are_invalid() {
    let sandbox = SandboxProcessor::new();
    let acct = account("acct_A");
    let card = stored_card(&sandbox, &acct).await;

    let mut zero = charge(&acct, &card, "z");
    zero.amount_cents = 0;
    assert_eq!(
        sandbox.charge(&zero).await.unwrap_err().code(),
        Some("VALUE_TOO_LOW")
    );
    let mut euro = charge(&acct, &card, "e");
    euro.currency = "eur";
    assert_eq!(
        sandbox.charge(&euro).await.unwrap_err().code(),
        Some("INVALID_VALUE")
    );
    let mut no_key = charge(&acct, &card, "");
    no_key.idempotency_key = "";
    assert!(matches!(
        sandbox.charge(&no_key).await,
        Err(PaymentError::Invalid { .. })
    ));

    sandbox
        .disable_card(&card.customer_id, &card.card_id)
        .await
        .unwrap();
    assert!(sandbox.is_card_disabled(&card.card_id));
    assert_eq!(
        sandbox
            .charge(&charge(&acct, &card, "after-disable"))
            .await
            .unwrap_err()
            .code(),
        Some("NOT_FOUND")
    );
    assert!(sandbox.charges().is_empty());
}

#[tokio::test]
async fn the_sandbox_is_reachable_through_the_trait_object() {
    let processor: std::sync::Arc<dyn PaymentProcessor> =
        std::sync::Arc::new(SandboxProcessor::new());
    let acct = account("acct_A");
    let sandbox = processor.sandbox().expect("sandbox controls");
    sandbox.fail_next(&acct, 1);
    let card = processor
        .store_card(&store(&acct, "cnon:card-nonce-ok", "s"))
        .await
        .unwrap();
    assert!(processor.charge(&charge(&acct, &card, "x")).await.is_err());
}
