//! The wallet's chart: the balance over time and its forecast, as inline SVG drawn on the
//! server (no script, no library). A pure function of its points, so it is unit tested.

use std::fmt::Write as _;

use jiff::Timestamp;
use wagate_domain::money::Micros;

/// One point of the chart: the balance at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartPoint {
    /// When.
    pub at: Timestamp,
    /// The balance then, in micro-units.
    pub micros: i64,
}

/// The drawing area, in SVG user units (the SVG scales to its box).
const W: f64 = 640.0;
const H: f64 = 220.0;
/// Room for the axis labels.
const LEFT: f64 = 64.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 12.0;
const RIGHT: f64 = 12.0;

/// The points of a step line: a balance holds until the next change.
fn steps(points: &[ChartPoint]) -> Vec<ChartPoint> {
    let mut out: Vec<ChartPoint> = Vec::with_capacity(points.len() * 2);
    for p in points {
        if let Some(last) = out.last().copied() {
            if last.micros != p.micros {
                out.push(ChartPoint {
                    at: p.at,
                    micros: last.micros,
                });
            }
        }
        out.push(*p);
    }
    out
}

/// The SVG of the balance (`history`, oldest first, ending now) and of the forecast
/// (`forecast`, starting now), with a title and a description in words so the chart is not
/// the only way to read it.
pub fn balance_chart(history: &[ChartPoint], forecast: &[ChartPoint], currency: &str) -> String {
    let all: Vec<ChartPoint> = history.iter().chain(forecast).copied().collect();
    let mut svg = String::new();
    let (Some(first), Some(last)) = (all.first(), all.last()) else {
        return r#"<svg id="balance-chart" viewBox="0 0 640 220" role="img" aria-label="No balance history yet"></svg>"#.to_owned();
    };
    let t0 = all
        .iter()
        .map(|p| p.at)
        .min()
        .unwrap_or(first.at)
        .as_second() as f64;
    let t1 = all
        .iter()
        .map(|p| p.at)
        .max()
        .unwrap_or(last.at)
        .as_second() as f64;
    let lo = all.iter().map(|p| p.micros).min().unwrap_or(0).min(0) as f64;
    let hi = all
        .iter()
        .map(|p| p.micros)
        .max()
        .unwrap_or(0)
        .max(1_000_000) as f64;
    let span_t = (t1 - t0).max(1.0);
    let span_v = (hi - lo).max(1.0);
    let x = |t: Timestamp| LEFT + (t.as_second() as f64 - t0) / span_t * (W - LEFT - RIGHT);
    let y = |v: i64| TOP + (1.0 - (v as f64 - lo) / span_v) * (H - TOP - BOTTOM);
    let line = |points: &[ChartPoint]| {
        steps(points)
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.at), y(p.micros)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let now = history
        .last()
        .or(forecast.first())
        .copied()
        .unwrap_or(*first);
    let end = forecast.last().copied().unwrap_or(now);
    let money = |m: i64| format!("{} {currency}", Micros(m));
    let day = |t: Timestamp| t.strftime("%Y-%m-%d").to_string();
    let desc = format!(
        "Balance {} on {}; forecast {} on {} after the scheduled line charges (before any top-up).",
        money(now.micros),
        day(now.at),
        money(end.micros),
        day(end.at),
    );
    let _ = write!(
        svg,
        r#"<svg id="balance-chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="chart-title chart-desc" data-balance="{}" data-forecast="{}" data-points="{}">"#,
        now.micros,
        end.micros,
        history.len()
    );
    let _ = write!(
        svg,
        r#"<title id="chart-title">Wallet balance and forecast</title><desc id="chart-desc">{desc}</desc>"#
    );
    // Axes and the value labels of the top, zero and (when below zero) bottom lines.
    let _ = write!(
        svg,
        r#"<g class="axis"><line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{b}"/><line x1="{LEFT}" y1="{b}" x2="{r}" y2="{b}"/>"#,
        b = H - BOTTOM,
        r = W - RIGHT
    );
    let mut ticks = vec![hi as i64, 0];
    if lo < 0.0 {
        ticks.push(lo as i64);
    }
    for v in ticks {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text><line class="grid" x1="{LEFT}" y1="{yy:.1}" x2="{r}" y2="{yy:.1}"/>"#,
            LEFT - 6.0,
            y(v) + 4.0,
            Micros(v),
            yy = y(v),
            r = W - RIGHT
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="{h}" text-anchor="start">{}</text><text x="{r}" y="{h}" text-anchor="end">{}</text></g>"#,
        day(first.at),
        day(end.at),
        h = H - 8.0,
        r = W - RIGHT
    );
    if !history.is_empty() {
        let _ = write!(
            svg,
            r#"<polyline class="history" fill="none" points="{}"/>"#,
            line(history)
        );
    }
    if forecast.len() > 1 {
        let _ = write!(
            svg,
            r#"<polyline class="forecast" fill="none" stroke-dasharray="6 4" points="{}"/>"#,
            line(forecast)
        );
    }
    let _ = write!(
        svg,
        r#"<circle class="now" cx="{:.1}" cy="{:.1}" r="4"/></svg>"#,
        x(now.at),
        y(now.micros)
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(day: i64, dollars: i64) -> ChartPoint {
        ChartPoint {
            at: Timestamp::from_second(1_767_225_600 + day * 86_400).unwrap(),
            micros: dollars * 1_000_000,
        }
    }

    #[test]
    fn an_empty_wallet_draws_an_empty_labelled_chart() {
        let svg = balance_chart(&[], &[], "USD");
        assert!(svg.contains("aria-label=\"No balance history yet\""));
    }

    #[test]
    fn the_chart_describes_the_balance_and_the_forecast_in_words() {
        let history = [p(0, 0), p(1, 50), p(2, 35)];
        let forecast = [p(2, 35), p(20, 15)];
        let svg = balance_chart(&history, &forecast, "USD");
        assert!(svg.contains("Balance 35.00 USD on 2026-01-03"), "{svg}");
        assert!(svg.contains("forecast 15.00 USD on 2026-01-21"), "{svg}");
        assert!(svg.contains(r#"data-balance="35000000""#));
        assert!(svg.contains(r#"data-forecast="15000000""#));
        assert!(svg.contains(r#"class="history""#) && svg.contains(r#"class="forecast""#));
        assert!(svg.contains("<title id=\"chart-title\">"));
    }

    #[test]
    fn a_balance_holds_until_it_changes() {
        let s = steps(&[p(0, 10), p(2, 30), p(3, 30)]);
        assert_eq!(s, vec![p(0, 10), p(2, 10), p(2, 30), p(3, 30)]);
    }

    #[test]
    fn a_forecast_below_zero_gets_its_own_label() {
        let svg = balance_chart(&[p(0, 5)], &[p(0, 5), p(10, -15)], "USD");
        assert!(svg.contains(">-15.00<"), "{svg}");
        assert!(svg.contains(">0.00<"), "{svg}");
    }
}
