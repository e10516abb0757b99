//! Endpoint URLs, and the addresses wagate must never call (SSRF protection).
//!
//! Everything here is pure. A URL is checked in two steps: [`parse_endpoint_url`] (shape) and
//! [`check_literal_host`] (an IP literal or an internal name in the host). A domain name is
//! resolved by the caller, at creation and again at every delivery, and each address it
//! resolves to is checked with [`is_forbidden_ip`], so a DNS change cannot reach inside.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use url::{Host, Url};

/// The longest endpoint URL accepted, in characters.
pub const MAX_URL_LEN: usize = 2048;

/// Why an endpoint URL was refused. `Display` is a message for the API user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidUrl {
    /// Not an absolute URL.
    #[error("the URL is not a valid absolute URL")]
    Malformed,
    /// A scheme other than http or https.
    #[error("the URL must start with http:// or https://")]
    Scheme,
    /// No host to send to.
    #[error("the URL must name a host")]
    NoHost,
    /// A user name or password in the URL.
    #[error("the URL must not contain a user name or password")]
    Credentials,
    /// Longer than [`MAX_URL_LEN`].
    #[error("the URL must be at most 2048 characters long")]
    TooLong,
    /// The host is, or resolves to, a loopback, private, link-local or other internal address.
    #[error(
        "the URL's host is a loopback, private, link-local or other non-public address, \
         which webhooks are never sent to"
    )]
    ForbiddenAddress,
}

/// Parses an endpoint URL: absolute http or https only, a host, no user:password, at most
/// 2048 chars. Returns the url::Url.
///
/// The length limit applies to the text given and to the normalised URL (which percent-encoding
/// can lengthen). This does not judge the host; see [`check_literal_host`].
pub fn parse_endpoint_url(s: &str) -> Result<Url, InvalidUrl> {
    if s.chars().count() > MAX_URL_LEN {
        return Err(InvalidUrl::TooLong);
    }
    let url = Url::parse(s).map_err(|e| match e {
        url::ParseError::EmptyHost => InvalidUrl::NoHost,
        _ => InvalidUrl::Malformed,
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(InvalidUrl::Scheme);
    }
    match url.host_str() {
        None | Some("") => return Err(InvalidUrl::NoHost),
        Some(_) => {}
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InvalidUrl::Credentials);
    }
    if url.as_str().chars().count() > MAX_URL_LEN {
        return Err(InvalidUrl::TooLong);
    }
    Ok(url)
}

/// If the URL's host is an IP literal, checks it; for a domain name returns Ok (the caller
/// resolves it and checks each address with is_forbidden_ip). Also refuses `localhost` and
/// names ending in `.localhost`/`.local`/`.internal` outright.
pub fn check_literal_host(url: &Url) -> Result<(), InvalidUrl> {
    match url.host() {
        None => Err(InvalidUrl::NoHost),
        Some(Host::Ipv4(v4)) => check_ip(IpAddr::V4(v4)),
        Some(Host::Ipv6(v6)) => check_ip(IpAddr::V6(v6)),
        Some(Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            let internal = name.is_empty()
                || name == "localhost"
                || [".localhost", ".local", ".internal"]
                    .iter()
                    .any(|suffix| name.ends_with(suffix));
            if internal {
                Err(InvalidUrl::ForbiddenAddress)
            } else {
                Ok(())
            }
        }
    }
}

fn check_ip(ip: IpAddr) -> Result<(), InvalidUrl> {
    if is_forbidden_ip(ip) {
        Err(InvalidUrl::ForbiddenAddress)
    } else {
        Ok(())
    }
}

/// Whether an address is one a production server must never call: loopback, private (10/8,
/// 172.16/12, 192.168/16), link-local (169.254/16, fe80::/10), unspecified, broadcast,
/// multicast, CGNAT 100.64/10, 0.0.0.0/8, IPv6 unique-local fc00::/7, documentation/benchmark
/// ranges (192.0.2/24, 198.51.100/24, 203.0.113/24, 198.18/15, 2001:db8::/32),
/// IPv4-mapped/compatible IPv6 forms of any of these (::ffff:127.0.0.1), NAT64 64:ff9b::/96
/// embedding a forbidden v4, 6to4 2002::/16 embedding one.
///
/// Also forbidden: IETF protocol assignments 192.0.0/24, reserved 240/4, deprecated site-local
/// fec0::/10, discard-only 100::/64, local-use NAT64 64:ff9b:1::/48, documentation 3fff::/20,
/// and IPv4-translated (::ffff:0:0/96) and Teredo (2001::/32) forms embedding a forbidden v4.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

/// IPv4 ranges a server must never call, as (network, prefix length).
const FORBIDDEN_V4: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),       // "this network", incl. unspecified
    ([10, 0, 0, 0], 8),      // private
    ([100, 64, 0, 0], 10),   // CGNAT
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local (incl. cloud metadata 169.254.169.254)
    ([172, 16, 0, 0], 12),   // private
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation TEST-NET-1
    ([192, 168, 0, 0], 16),  // private
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation TEST-NET-2
    ([203, 0, 113, 0], 24),  // documentation TEST-NET-3
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, incl. broadcast 255.255.255.255
];

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let bits = u32::from(ip);
    FORBIDDEN_V4.iter().any(|(net, len)| {
        let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
        bits & mask == u32::from_be_bytes(*net) & mask
    })
}

/// IPv6 ranges forbidden whatever follows the prefix, as (network, prefix length).
const FORBIDDEN_V6: &[(u128, u32)] = &[
    (0x0100_0000_0000_0000_0000_0000_0000_0000, 64), // discard-only
    (0x0064_ff9b_0001_0000_0000_0000_0000_0000, 48), // local-use NAT64
    (0x2001_0db8_0000_0000_0000_0000_0000_0000, 32), // documentation
    (0x3fff_0000_0000_0000_0000_0000_0000_0000, 20), // documentation (RFC 9637)
    (0xfc00_0000_0000_0000_0000_0000_0000_0000, 7),  // unique-local
    (0xfe80_0000_0000_0000_0000_0000_0000_0000, 10), // link-local
    (0xfec0_0000_0000_0000_0000_0000_0000_0000, 10), // site-local (deprecated)
    (0xff00_0000_0000_0000_0000_0000_0000_0000, 8),  // multicast
];

fn in_v6(bits: u128, net: u128, len: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - len).unwrap_or(0);
    bits & mask == net & mask
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    if ip.is_unspecified() || ip.is_loopback() {
        return true;
    }
    if FORBIDDEN_V6
        .iter()
        .any(|(net, len)| in_v6(bits, *net, *len))
    {
        return true;
    }
    embedded_v4(bits).is_some_and(is_forbidden_v4)
}

/// The IPv4 address an IPv6 address stands for or carries, if it has one.
fn embedded_v4(bits: u128) -> Option<Ipv4Addr> {
    // Truncation is the point: the v4 sits in the low 32 bits (or, for 6to4, bits 80..112).
    let low32 = Ipv4Addr::from(bits as u32);
    if in_v6(bits, 0, 96) // IPv4-compatible ::a.b.c.d
        || in_v6(bits, 0xffff_0000_0000, 96) // IPv4-mapped ::ffff:a.b.c.d
        || in_v6(bits, 0xffff_0000_0000_0000, 96) // IPv4-translated ::ffff:0:a.b.c.d
        || in_v6(bits, 0x0064_ff9b_0000_0000_0000_0000_0000_0000, 96)
    // NAT64
    {
        return Some(low32);
    }
    if in_v6(bits, 0x2002_0000_0000_0000_0000_0000_0000_0000, 16) {
        // 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
        return Some(Ipv4Addr::from((bits >> 80) as u32));
    }
    if in_v6(bits, 0x2001_0000_0000_0000_0000_0000_0000_0000, 32) {
        // Teredo: the client's address is stored inverted in the low 32 bits.
        return Some(Ipv4Addr::from(!(bits as u32)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    #[test]
    fn forbidden_addresses() {
        let forbidden = [
            // IPv4
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "10.255.255.255",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "198.19.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            // IPv6
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "fc00::1",
            "fd12:3456:789a::1",
            "fec0::1",
            "ff02::1",
            "ff05::1:3",
            "2001:db8::1",
            "2001:db8:ffff::1",
            "3fff::1",
            "100::1",
            "64:ff9b:1::a00:1",
            // IPv4-mapped, -compatible and -translated forms of forbidden v4
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "::10.1.2.3",
            "::ffff:0:192.168.0.1",
            // NAT64, 6to4 and Teredo carrying forbidden v4
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "2001:0:4136:e378:8000:63bf:80ff:fffe", // Teredo client 127.0.0.1
        ];
        for s in forbidden {
            assert!(is_forbidden_ip(ip(s)), "{s} should be forbidden");
        }
    }

    #[test]
    fn allowed_addresses() {
        let allowed = [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "9.255.255.255",
            "11.0.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "126.255.255.255",
            "128.0.0.1",
            "169.253.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "192.0.1.1",
            "192.0.3.1",
            "192.167.1.1",
            "192.169.1.1",
            "198.17.255.255",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700:4700::1111",
            "2001:4860:4860::8888",
            "2a00:1450:4001::1",
            "::ffff:8.8.8.8",
            "::ffff:0:1.1.1.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:db9::1",
            "fbff::1",
        ];
        for s in allowed {
            assert!(!is_forbidden_ip(ip(s)), "{s} should be allowed");
        }
    }

    #[test]
    fn endpoint_urls_that_parse() {
        for s in [
            "https://example.com/hook",
            "http://example.com",
            "https://hooks.example.com:8443/a/b?c=d",
            "http://localhost:8080",
            "http://127.0.0.1:9000/hook",
            "https://[::1]/hook",
            "HTTPS://Example.COM/Hook",
        ] {
            assert!(parse_endpoint_url(s).is_ok(), "{s} should parse");
        }
    }

    #[test]
    fn endpoint_urls_that_are_refused() {
        let long = format!("https://example.com/{}", "a".repeat(2048));
        let cases: &[(&str, InvalidUrl)] = &[
            ("", InvalidUrl::Malformed),
            ("example.com/hook", InvalidUrl::Malformed),
            ("/hook", InvalidUrl::Malformed),
            ("https://exa mple.com", InvalidUrl::Malformed),
            ("ftp://example.com/hook", InvalidUrl::Scheme),
            ("file:///etc/passwd", InvalidUrl::Scheme),
            ("mailto:ops@example.com", InvalidUrl::Scheme),
            ("javascript:alert(1)", InvalidUrl::Scheme),
            ("http://", InvalidUrl::NoHost),
            ("https://", InvalidUrl::NoHost),
            (
                "https://user:pass@example.com/hook",
                InvalidUrl::Credentials,
            ),
            ("https://user@example.com/hook", InvalidUrl::Credentials),
            ("https://:pass@example.com/hook", InvalidUrl::Credentials),
            (&long, InvalidUrl::TooLong),
        ];
        for (s, want) in cases {
            assert_eq!(parse_endpoint_url(s).as_ref(), Err(want), "{s:?}");
        }
    }

    #[test]
    fn the_length_limit_is_2048_characters() {
        let prefix = "https://example.com/";
        let exact = format!("{prefix}{}", "a".repeat(2048 - prefix.len()));
        assert!(parse_endpoint_url(&exact).is_ok());
        let over = format!("{exact}a");
        assert_eq!(parse_endpoint_url(&over), Err(InvalidUrl::TooLong));
        // Percent-encoding can push the normalised URL over the limit.
        let grows = format!("{prefix}{}", "é".repeat(2048 - prefix.len()));
        assert_eq!(parse_endpoint_url(&grows), Err(InvalidUrl::TooLong));
    }

    fn host_check(s: &str) -> Result<(), InvalidUrl> {
        check_literal_host(&parse_endpoint_url(s).expect("parses"))
    }

    #[test]
    fn internal_hosts_are_refused() {
        for s in [
            "http://localhost:8080",
            "http://LOCALHOST/",
            "http://localhost./",
            "http://api.localhost/",
            "http://printer.local/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://127.0.0.1/",
            "http://0x7f.1/",
            "http://2130706433/",
            "http://0/",
            "http://10.0.0.5:8080/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
        ] {
            assert_eq!(host_check(s), Err(InvalidUrl::ForbiddenAddress), "{s}");
        }
    }

    #[test]
    fn public_hosts_and_names_pass_the_literal_check() {
        for s in [
            "https://example.com/hook",
            "https://hooks.partner.io:8443/wagate",
            "http://8.8.8.8/",
            "https://[2606:4700:4700::1111]/",
            "https://localhost.example.com/",
            "https://mylocal/",
            "https://internal.example.com/",
        ] {
            assert_eq!(host_check(s), Ok(()), "{s}");
        }
    }

    #[test]
    fn messages_speak_to_the_api_user() {
        assert_eq!(
            InvalidUrl::Scheme.to_string(),
            "the URL must start with http:// or https://"
        );
        assert!(InvalidUrl::ForbiddenAddress.to_string().contains("private"));
    }
}
