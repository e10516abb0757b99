use super::*;

fn config(url: &str) -> SquareConfig {
    SquareConfig::new(url, "EAAAsecret-token", "LOC1")
}

#[test]
fn debug_output_never_shows_the_access_token() {
    let cfg = config(SQUARE_SANDBOX_URL);
    assert!(!format!("{cfg:?}").contains("secret"));
    let processor = SquareProcessor::new(cfg).unwrap();
    assert!(!format!("{processor:?}").contains("secret"));
}

#[test]
fn base_urls_must_be_https_except_on_loopback() {
    assert!(SquareProcessor::new(config(SQUARE_PRODUCTION_URL)).is_ok());
    assert!(SquareProcessor::new(config("http://127.0.0.1:9999")).is_ok());
    assert!(SquareProcessor::new(config("http://localhost:9999/")).is_ok());
    assert!(matches!(
        SquareProcessor::new(config("http://connect.squareup.com")),
        Err(SquareConfigError::BaseUrl { .. })
    ));
    assert!(SquareProcessor::new(config("ftp://x")).is_err());
    assert!(SquareProcessor::new(config("nonsense")).is_err());
}

#[test]
fn empty_settings_are_refused() {
    let mut cfg = config(SQUARE_SANDBOX_URL);
    cfg.access_token = String::new();
    assert!(matches!(
        SquareProcessor::new(cfg),
        Err(SquareConfigError::Setting("access_token"))
    ));
    let mut cfg = config(SQUARE_SANDBOX_URL);
    cfg.location_id = " ".into();
    assert!(SquareProcessor::new(cfg).is_err());
    let mut cfg = config(SQUARE_SANDBOX_URL);
    cfg.timeout = Duration::ZERO;
    assert!(matches!(
        SquareProcessor::new(cfg),
        Err(SquareConfigError::Timeout)
    ));
}

#[test]
fn endpoints_join_and_encode_path_segments() {
    let p = SquareProcessor::new(config("https://example.test/")).unwrap();
    assert_eq!(
        p.endpoint(&["v2", "cards", "ccof:a/b", "disable"]).as_str(),
        "https://example.test/v2/cards/ccof:a%2Fb/disable"
    );
}

#[test]
fn truncation_respects_characters() {
    assert_eq!(truncate("héllo", 2), "hé");
    assert_eq!(truncate("abc", 40), "abc");
}
