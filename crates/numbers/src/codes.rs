//! wagate's names in the handler_api protocol's codes. The protocol names services by short
//! codes and countries by the provider's own numbers; these are the ones the protocol's
//! published tables use for the services and countries wagate offers. A name missing here
//! has no offer at a handler_api provider.

/// `(wagate service, protocol code)`.
const SERVICES: &[(&str, &str)] = &[
    ("whatsapp", "wa"),
    ("telegram", "tg"),
    ("google", "go"),
    ("facebook", "fb"),
    ("instagram", "ig"),
    ("viber", "vi"),
    ("signal", "bw"),
    ("microsoft", "mm"),
    ("openai", "dr"),
    ("any", "ot"),
];

/// `(ISO 3166 alpha-2, protocol number)`.
const COUNTRIES: &[(&str, &str)] = &[
    ("RU", "0"),
    ("UA", "1"),
    ("KZ", "2"),
    ("CN", "3"),
    ("PH", "4"),
    ("ID", "6"),
    ("KE", "8"),
    ("BR", "73"),
    ("GB", "16"),
    ("NL", "48"),
    ("DE", "43"),
    ("FR", "78"),
    ("ES", "56"),
    ("IT", "86"),
    ("PL", "15"),
    ("IN", "22"),
    ("US", "187"),
    ("CA", "36"),
    ("MX", "54"),
];

/// The protocol's code of a wagate service name.
pub fn service_code(service: &str) -> Option<&'static str> {
    SERVICES
        .iter()
        .find(|(s, _)| *s == service)
        .map(|(_, c)| *c)
}

/// The protocol's number of an ISO country.
pub fn country_code(country: &str) -> Option<&'static str> {
    COUNTRIES
        .iter()
        .find(|(c, _)| *c == country)
        .map(|(_, n)| *n)
}

/// The services wagate knows (the price list and order accept these).
pub fn services() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().map(|(s, _)| *s)
}

/// The countries wagate knows.
pub fn countries() -> impl Iterator<Item = &'static str> {
    COUNTRIES.iter().map(|(c, _)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_the_protocol_codes() {
        assert_eq!(service_code("whatsapp"), Some("wa"));
        assert_eq!(country_code("GB"), Some("16"));
        assert_eq!(service_code("nope"), None);
        assert_eq!(country_code("gb"), None, "ISO codes are upper case");
        assert!(services().any(|s| s == "telegram"));
        assert!(countries().any(|c| c == "US"));
    }
}
