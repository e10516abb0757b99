//! The QR code of the connect page, as inline SVG.
//!
//! Rendered server-side so the page needs no script library and the code is sharp at any
//! size: one SVG unit is one QR module, and CSS scales it to the screen.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use sha2::{Digest, Sha256};

/// The payload as an inline `<svg>` element (no XML prolog, so it can sit inside HTML).
///
/// It carries a `viewBox` and no fixed width or height: the page's CSS sizes it (full width,
/// at most about 320 px). A payload too long for any QR code gives an empty frame and a
/// warning in the log; connector payloads are far below that limit.
pub fn qr_svg(payload: &str) -> String {
    // M recovers from some glare on a screen; L only when the payload would not fit otherwise.
    let code = QrCode::with_error_correction_level(payload, EcLevel::M)
        .or_else(|_| QrCode::with_error_correction_level(payload, EcLevel::L));
    let code = match code {
        Ok(code) => code,
        Err(err) => {
            tracing::warn!(error = %err, len = payload.len(), "QR payload cannot be encoded");
            return inline_svg_tag("0 0 1 1") + "</svg>";
        }
    };
    let document = code
        .render::<svg::Color>()
        .module_dimensions(1, 1)
        .quiet_zone(true)
        .dark_color(svg::Color("#000"))
        .light_color(svg::Color("#fff"))
        .build();
    responsive(&document)
}

/// A short, stable fingerprint of the payload: the page replaces its QR only when this changes.
pub(crate) fn qr_version(payload: &str) -> String {
    hex::encode(&Sha256::digest(payload.as_bytes())[..8])
}

/// The renderer writes a standalone SVG document with a fixed pixel size; keep its drawing but
/// swap its prolog and root tag for an inline, scalable one.
fn responsive(document: &str) -> String {
    let start = document.find("<svg").unwrap_or(0);
    let rest = &document[start..];
    let open_end = rest.find('>').map_or(rest.len(), |i| i + 1);
    let (open, body) = rest.split_at(open_end);
    let view_box = attribute(open, "viewBox").unwrap_or("0 0 1 1");
    inline_svg_tag(view_box) + body
}

fn inline_svg_tag(view_box: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="{view_box}" shape-rendering="crispEdges" role="img" aria-label="WhatsApp link code">"#
    )
}

/// The value of `name="…"` inside one tag.
fn attribute<'t>(tag: &'t str, name: &str) -> Option<&'t str> {
    let key = format!(" {name}=\"");
    let from = tag.find(&key)? + key.len();
    let len = tag[from..].find('"')?;
    Some(&tag[from..from + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str = "2@Vm9pY2UgYW5kIGRhdGEsIHRoZSBzYW1lIGxpbmU=,Ym9keQ==,c2lnbmF0dXJl,a2V5";

    #[test]
    fn the_svg_is_inline_and_scalable() {
        let svg = qr_svg(PAYLOAD);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(!svg.contains("<?xml"));
        assert!(svg.ends_with("</svg>"));
        let open = &svg[..svg.find('>').unwrap()];
        assert!(open.contains("viewBox=\"0 0 "), "{open}");
        assert!(
            !open.contains(" width="),
            "a fixed width would defeat the CSS: {open}"
        );
        assert!(!open.contains(" height="), "{open}");
    }

    #[test]
    fn the_svg_draws_the_modules() {
        let svg = qr_svg(PAYLOAD);
        assert!(svg.contains("<rect"), "the light background");
        let path = attribute(&svg[svg.find("<path").unwrap()..], "d").unwrap();
        assert!(path.len() > 100, "dark modules are drawn: {path}");
    }

    #[test]
    fn different_payloads_draw_different_codes() {
        assert_ne!(qr_svg(PAYLOAD), qr_svg("2@another,payload"));
        assert_eq!(qr_svg(PAYLOAD), qr_svg(PAYLOAD));
    }

    #[test]
    fn a_payload_too_long_for_a_qr_code_gives_an_empty_frame() {
        let svg = qr_svg(&"x".repeat(5000));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(!svg.contains("<path"));
    }

    #[test]
    fn the_version_is_short_and_follows_the_payload() {
        assert_eq!(qr_version(PAYLOAD).len(), 16);
        assert_eq!(qr_version(PAYLOAD), qr_version(PAYLOAD));
        assert_ne!(qr_version(PAYLOAD), qr_version("2@another,payload"));
    }
}
