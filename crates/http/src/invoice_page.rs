//! An invoice's hosted page and PDF (`hosted_url`, `pdf_url`): public to whoever has the
//! link, like Stripe's hosted invoices, and naming nothing beyond the invoice itself.

use askama::Template;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use wagate_domain::time::rfc3339;
use wagate_store::{InvoiceRecord, InvoiceStatus};

#[derive(Template)]
#[template(path = "invoice/page.html")]
struct PageTemplate<'a> {
    id: &'a str,
    business_name: &'a str,
    status: &'static str,
    status_text: &'static str,
    created_at: String,
    due_at: String,
    paid_at: Option<String>,
    period: Option<String>,
    days: u32,
    day_price: String,
    amount: String,
    currency: &'a str,
    pdf_href: String,
}

fn status_text(i: &InvoiceRecord) -> &'static str {
    match i.status {
        InvoiceStatus::Open => "Open",
        InvoiceStatus::Paid => "Paid",
    }
}

/// The month a postpaid invoice bills, as `2026-01`.
fn period(i: &InvoiceRecord) -> Option<String> {
    i.period_start.map(|p| rfc3339(p)[..7].to_owned())
}

/// The invoice as an HTML page; `token` is its page token (the PDF link is relative to it).
pub fn render_page(i: &InvoiceRecord, business_name: &str, token: &str) -> String {
    PageTemplate {
        id: i.id.as_str(),
        business_name,
        status: i.status.as_str(),
        status_text: status_text(i),
        created_at: rfc3339(i.created_at),
        due_at: rfc3339(i.due_at),
        paid_at: i.paid_at.map(rfc3339),
        period: period(i),
        days: i.days,
        day_price: i.day_price.to_string(),
        amount: i.amount.to_string(),
        currency: &i.currency,
        pdf_href: format!("{token}/pdf"),
    }
    .render()
    // Rendering writes plain strings and numbers into a String: it cannot fail.
    .expect("the invoice page renders")
}

/// Text a base-14 font can show: the PDF's strings are single-byte, so anything outside
/// printable ASCII (a business name in another script) becomes `?` rather than garbage.
fn pdf_text(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| {
            if (' '..='~').contains(&c) {
                c as u8
            } else {
                b'?'
            }
        })
        .collect()
}

/// The invoice as a one-page A4 PDF in Helvetica (a base-14 font: nothing embedded).
pub fn render_pdf(i: &InvoiceRecord, business_name: &str) -> Vec<u8> {
    let mut pdf = Pdf::new();
    let (catalog, tree, page_id, font, bold, content_id) = (
        Ref::new(1),
        Ref::new(2),
        Ref::new(3),
        Ref::new(4),
        Ref::new(5),
        Ref::new(6),
    );
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids([page_id]).count(1);
    let mut page = pdf.page(page_id);
    page.media_box(Rect::new(0.0, 0.0, 595.0, 842.0));
    page.parent(tree);
    page.contents(content_id);
    let mut resources = page.resources();
    let mut fonts = resources.fonts();
    fonts.pair(Name(b"F1"), font);
    fonts.pair(Name(b"F2"), bold);
    fonts.finish();
    resources.finish();
    page.finish();
    pdf.type1_font(font).base_font(Name(b"Helvetica"));
    pdf.type1_font(bold).base_font(Name(b"Helvetica-Bold"));

    let mut lines: Vec<(bool, f32, String)> = vec![
        (true, 20.0, format!("Invoice {}", i.id)),
        (false, 12.0, business_name.to_owned()),
        (false, 12.0, format!("Status: {}", status_text(i))),
        (false, 12.0, format!("Issued: {}", rfc3339(i.created_at))),
        (false, 12.0, format!("Due: {}", rfc3339(i.due_at))),
    ];
    if let Some(paid) = i.paid_at {
        lines.push((false, 12.0, format!("Paid: {}", rfc3339(paid))));
    }
    if let Some(p) = period(i) {
        lines.push((false, 12.0, format!("Usage of: {p}")));
    }
    lines.extend([
        (true, 12.0, "WhatsApp line days".to_owned()),
        (false, 12.0, format!("Days: {}", i.days)),
        (
            false,
            12.0,
            format!("Price per day: {} {}", i.day_price, i.currency),
        ),
        (true, 14.0, format!("Total: {} {}", i.amount, i.currency)),
    ]);
    let mut content = Content::new();
    let mut y = 780.0;
    for (strong, size, text) in &lines {
        content.begin_text();
        content.set_font(Name(if *strong { b"F2" } else { b"F1" }), *size);
        content.next_line(56.0, y);
        content.show(Str(&pdf_text(text)));
        content.end_text();
        y -= size * 1.8;
    }
    pdf.stream(content_id, &content.finish());
    pdf.finish()
}
