//! A deterministic generator of realistic synthetic traffic, for benchmarks and property
//! tests: many users with skewed activity (a few very active, a long tail), about 30 % user
//! messages (some from ads), replies inside windows, templates of every category, and
//! recipients spread over markets including NANP exceptions and unlisted codes.

use std::io::Write;

use crate::category::TemplateCategory;
use crate::event::{EventKind, Message};
use crate::instant::Instant;
use crate::phone::Phone;

/// What to generate.
#[derive(Clone, Debug)]
pub struct SynthConfig {
    /// Distinct users to draw from (activity is skewed toward low indices).
    pub users: u64,
    /// WABAs (`waba-0`, `waba-1`, …), each with a few business numbers.
    pub wabas: u32,
    /// Business numbers per WABA.
    pub businesses_per_waba: u32,
    /// Time of the first event.
    pub start: Instant,
    /// Average time between events, in milliseconds.
    pub mean_gap_ms: u64,
    /// Seed: the same seed gives the same stream.
    pub seed: u64,
}

impl Default for SynthConfig {
    /// One million users, 8 WABAs, starting 2026-09-28 so that ten million events (50 ms
    /// apart) cross a month end and the 2026-10-01 service change.
    fn default() -> Self {
        SynthConfig {
            users: 1_000_000,
            wabas: 8,
            businesses_per_waba: 4,
            start: Instant::parse("2026-09-28T00:00:00Z").unwrap_or(Instant(0)),
            mean_gap_ms: 50,
            seed: 0x5eed,
        }
    }
}

/// One generated event; `waba` indexes the names from [`waba_name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynthEvent {
    /// Sequence number (the message id of business messages is `m<n>`).
    pub n: u64,
    /// Time.
    pub at: Instant,
    /// WABA index.
    pub waba: u32,
    /// Business number.
    pub business: Phone,
    /// User number.
    pub user: Phone,
    /// What happened.
    pub kind: EventKind,
}

/// The name of the WABA with index `index`.
pub fn waba_name(index: u32) -> String {
    format!("waba-{index}")
}

/// Calling code, subscriber digits, weight (percent): roughly the spread of a global sender.
const MARKETS: [(&str, u32, u32); 16] = [
    ("91", 10, 30),
    ("55", 11, 15),
    ("62", 10, 10),
    ("52", 10, 6),
    ("1", 10, 8),
    ("234", 10, 5),
    ("44", 10, 4),
    ("49", 10, 3),
    ("57", 10, 3),
    ("1809", 7, 2),
    ("7", 10, 2),
    ("20", 10, 3),
    ("966", 9, 3),
    ("974", 8, 1),
    ("299", 6, 1),
    ("254", 9, 4),
];

/// Recent user messages remembered so replies land inside open windows.
const RECENT: usize = 4096;

/// The generator: an iterator of events in time order.
#[derive(Clone, Debug)]
pub struct Generator {
    config: SynthConfig,
    state: u64,
    at: i64,
    n: u64,
    recent: Vec<(u32, Phone, Phone)>,
}

impl Generator {
    /// A generator for `config`.
    pub fn new(config: SynthConfig) -> Generator {
        Generator {
            state: config.seed ^ 0x9e37_79b9_7f4a_7c15,
            at: config.start.0,
            n: 0,
            recent: Vec::with_capacity(RECENT),
            config,
        }
    }

    fn next_u64(&mut self) -> u64 {
        // SplitMix64: tiny, fast and good enough for traffic shapes.
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.state)
    }

    /// A uniform number in `0..bound`.
    fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound.max(1))) >> 64) as u64
    }

    /// A user index, skewed: the cube of a uniform number puts most traffic on few users.
    fn skewed_user(&mut self) -> u64 {
        let r = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((r * r * r) * self.config.users as f64) as u64
    }

    /// The WABA, business and phone of user `index` (fixed per user).
    fn user(&self, index: u64) -> (u32, Phone, Phone) {
        let h = mix(index ^ self.config.seed.rotate_left(17));
        let mut pick = (h % 100) as u32;
        let mut chosen = MARKETS[0];
        for market in MARKETS {
            if pick < market.2 {
                chosen = market;
                break;
            }
            pick -= market.2;
        }
        let (code, digits, _) = chosen;
        let h2 = mix(h);
        // The first subscriber digit is 2–9 so NANP area codes look real.
        let floor = 2 * 10_u64.pow(digits - 1);
        let subscriber = floor + h2 % (4 * floor);
        let text = format!("{code}{subscriber:0width$}", width = digits as usize);
        let user = Phone::parse(&text).unwrap_or_else(|| fallback_phone(index));
        let waba = (mix(h2) % u64::from(self.config.wabas.max(1))) as u32;
        let business_index = (h2 >> 32) % u64::from(self.config.businesses_per_waba.max(1));
        let business = 15_550_000_000 + u64::from(waba) * 100 + business_index;
        let business = Phone::parse(&business.to_string()).unwrap_or_else(|| fallback_phone(0));
        (waba, business, user)
    }
}

fn fallback_phone(index: u64) -> Phone {
    Phone::parse(&format!("99{}", index % 1_000_000_000 + 1_000_000_000)).unwrap_or_else(|| {
        // 12 digits starting with 9 always parse.
        Phone::parse("999999999999").expect("a constant valid number")
    })
}

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Iterator for Generator {
    type Item = SynthEvent;

    fn next(&mut self) -> Option<SynthEvent> {
        let gap = self.below(2 * self.config.mean_gap_ms + 1) as i64 * 1_000_000;
        self.at = self.at.saturating_add(gap);
        self.n += 1;
        let roll = self.below(100);
        let (waba, business, user, kind) = if roll < 30 {
            let index = self.skewed_user();
            let (waba, business, user) = self.user(index);
            if self.recent.len() < RECENT {
                self.recent.push((waba, business, user));
            } else {
                let slot = (self.n % RECENT as u64) as usize;
                self.recent[slot] = (waba, business, user);
            }
            let entry_point = self.below(10) == 0;
            (waba, business, user, EventKind::UserMessage { entry_point })
        } else {
            let pick = self.below(100);
            let to_recent = !self.recent.is_empty() && (pick < 38 || (60..70).contains(&pick));
            let (waba, business, user) = if to_recent {
                let i = self.below(self.recent.len() as u64) as usize;
                self.recent[i]
            } else {
                let index = self.skewed_user();
                self.user(index)
            };
            let message = match pick {
                0..=39 => Message::NonTemplate,
                40..=64 => Message::Template(TemplateCategory::Marketing),
                65..=84 => Message::Template(TemplateCategory::Utility),
                _ => Message::Template(TemplateCategory::Authentication),
            };
            (waba, business, user, EventKind::BusinessMessage(message))
        };
        Some(SynthEvent {
            n: self.n,
            at: Instant(self.at),
            waba,
            business,
            user,
            kind,
        })
    }
}

/// Appends the event as an input line of `wagate rate` (with its newline).
pub fn write_jsonl(event: &SynthEvent, out: &mut Vec<u8>) {
    let ts = event.at.to_timestamp();
    let _ = write!(
        out,
        "{{\"ts\":\"{ts}\",\"waba\":\"waba-{}\",\"business\":\"+{}\",\"user\":\"+{}\"",
        event.waba,
        event.business.as_u64(),
        event.user.as_u64()
    );
    let _ = match event.kind {
        EventKind::UserMessage { entry_point: true } => {
            write!(out, ",\"dir\":\"in\",\"entry\":\"ctwa\"}}")
        }
        EventKind::UserMessage { entry_point: false } => write!(out, ",\"dir\":\"in\"}}"),
        EventKind::BusinessMessage(Message::NonTemplate) => {
            write!(
                out,
                ",\"id\":\"m{}\",\"dir\":\"out\",\"type\":\"text\"}}",
                event.n
            )
        }
        EventKind::BusinessMessage(Message::Template(category)) => {
            let category = match category {
                TemplateCategory::Marketing => "marketing",
                TemplateCategory::Utility => "utility",
                TemplateCategory::Authentication => "authentication",
            };
            write!(
                out,
                ",\"id\":\"m{}\",\"dir\":\"out\",\"type\":\"template\",\"category\":\"{category}\"}}",
                event.n
            )
        }
    };
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_deterministic_ordered_and_mixed() {
        let a: Vec<SynthEvent> = Generator::new(SynthConfig::default())
            .take(20_000)
            .collect();
        let b: Vec<SynthEvent> = Generator::new(SynthConfig::default())
            .take(20_000)
            .collect();
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
        let inbound = a
            .iter()
            .filter(|e| matches!(e.kind, EventKind::UserMessage { .. }))
            .count();
        assert!((5_500..6_500).contains(&inbound), "{inbound} user messages");
        let mut line = Vec::new();
        write_jsonl(&a[0], &mut line);
        assert!(crate::jsonl::parse_line(&line[..line.len() - 1]).is_ok());
    }
}
