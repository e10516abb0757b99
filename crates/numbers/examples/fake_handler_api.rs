//! Runs the local fake of a handler_api provider by hand, to try wagate's numbers offline
//! against the real adapter:
//!
//! ```sh
//! cargo run -p wagate-numbers --features fake --example fake_handler_api
//! # then, in another shell, with the URL it prints:
//! WAGATE_NUMBERS_HANDLER_API_URL=http://127.0.0.1:PORT \
//! WAGATE_NUMBERS_HANDLER_API_KEY=fake-handler-api-key wagate serve --sandbox
//! ```
//!
//! It sells WhatsApp and Telegram numbers in GB, US and DE. Type `<number> <code>` and Enter
//! to deliver a code to the activation of that number.

use wagate_numbers::fake::{FakeHandlerApi, FAKE_API_KEY};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let fake = FakeHandlerApi::start().await?;
    for (country, cost) in [("16", 0.45), ("187", 0.60), ("43", 0.52)] {
        fake.set_offer(country, "wa", cost, 25);
        fake.set_offer(country, "tg", cost * 0.8, 25);
    }
    println!(
        "fake handler_api provider at {} (key {FAKE_API_KEY})",
        fake.url
    );
    println!("deliver a code: type `<number> <code>` and Enter");
    // Standard input is read on a blocking thread; the fake serves on the runtime meanwhile.
    let typed = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        for line in std::io::stdin().lines() {
            let line = line?;
            let mut parts = line.split_whitespace();
            match (parts.next(), parts.next()) {
                (Some(number), Some(code)) if fake.deliver_code(number, code) => {
                    println!("delivered {code} to {number}")
                }
                (Some(number), Some(_)) => println!("no activation holds {number}"),
                _ => println!("type `<number> <code>`"),
            }
        }
        Ok(())
    });
    typed.await.map_err(std::io::Error::other)?
}
