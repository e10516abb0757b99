//! The handler_api client against the local fake: the protocol's whole round trip.

use wagate_numbers::fake::{FakeHandlerApi, FAKE_API_KEY};
use wagate_numbers::{ActivationStatus, HandlerApiClient, HandlerApiError, SetStatus};

#[tokio::test]
async fn a_number_is_bought_gets_its_code_and_is_completed() {
    let fake = FakeHandlerApi::start().await.expect("fake starts");
    fake.set_offer("16", "wa", 0.5, 1);
    let client = HandlerApiClient::new(&fake.url, FAKE_API_KEY).expect("valid base");

    let prices = client.get_prices("wa", "16").await.expect("prices");
    assert_eq!(prices.len(), 1);
    assert_eq!((prices[0].cost, prices[0].count), (0.5, 1));

    let a = client.get_number("wa", "16").await.expect("a number");
    assert_eq!(
        client.get_status(&a.id).await,
        Ok(ActivationStatus::WaitCode)
    );
    assert_eq!(
        client.get_number("wa", "16").await,
        Err(HandlerApiError::NoNumbers),
        "the one in stock was sold"
    );
    assert!(fake.deliver_code(&a.number, "482913"));
    assert_eq!(
        client.get_status(&a.id).await,
        Ok(ActivationStatus::Ok("482913".into()))
    );
    client
        .set_status(&a.id, SetStatus::Complete)
        .await
        .expect("completed");
    assert_eq!(
        client.set_status(&a.id, SetStatus::Cancel).await,
        Err(HandlerApiError::Refused("BAD_STATUS".into())),
        "no cancel after the code"
    );
}

#[tokio::test]
async fn a_cancel_returns_the_number_and_the_money() {
    let fake = FakeHandlerApi::start().await.expect("fake starts");
    fake.set_offer("16", "wa", 2.0, 1);
    fake.set_balance(3.0);
    let client = HandlerApiClient::new(&fake.url, FAKE_API_KEY).expect("valid base");
    let a = client.get_number("wa", "16").await.expect("a number");
    assert_eq!(fake.balance(), 1.0);
    client
        .set_status(&a.id, SetStatus::Cancel)
        .await
        .expect("canceled");
    assert_eq!(fake.balance(), 3.0);
    assert_eq!(
        client.get_status(&a.id).await,
        Ok(ActivationStatus::Canceled)
    );
    fake.set_balance(1.0);
    assert_eq!(
        client.get_number("wa", "16").await,
        Err(HandlerApiError::NoBalance)
    );
    assert_eq!(
        client.get_status("999").await,
        Err(HandlerApiError::NoActivation)
    );
}

#[tokio::test]
async fn a_wrong_key_and_an_unreachable_provider_are_told_apart() {
    let fake = FakeHandlerApi::start().await.expect("fake starts");
    let wrong = HandlerApiClient::new(&fake.url, "nope").expect("valid base");
    assert_eq!(
        wrong.get_prices("wa", "16").await,
        Err(HandlerApiError::BadKey)
    );
    let gone = HandlerApiClient::new("http://127.0.0.1:9", FAKE_API_KEY).expect("valid base");
    assert!(matches!(
        gone.get_prices("wa", "16").await,
        Err(HandlerApiError::Unavailable(_))
    ));
    assert!(HandlerApiClient::new("ftp://x", "k").is_err());
}
