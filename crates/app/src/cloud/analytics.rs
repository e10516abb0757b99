//! Meta's charges summed like Meta's `pricing_analytics`: volume and cost per day or month
//! (in each WABA's time zone) and per country, pricing category, pricing type and tier.

use std::collections::{BTreeMap, HashMap};

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use serde_json::Value;
use wagate_domain::money::Micros;

use super::CloudService;
use crate::accounts::Principal;
use crate::error::{AppError, AppResult};

/// The longest period one analytics request covers.
pub const MAX_ANALYTICS_DAYS: i64 = 93;

/// The time buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// A WABA-local day.
    Daily,
    /// A WABA-local calendar month.
    Monthly,
}

/// What data points are split by (Meta's `dimensions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dimension {
    /// The recipient's country (ISO 3166 alpha-2).
    Country,
    /// `MARKETING`, `UTILITY`, `AUTHENTICATION`, `AUTHENTICATION_INTERNATIONAL`, `SERVICE`,
    /// `REFERRAL_CONVERSION`.
    PricingCategory,
    /// `REGULAR`, `FREE_CUSTOMER_SERVICE`, `FREE_ENTRY_POINT`, `FREE_TIER`.
    PricingType,
    /// The volume tier band (`from:to`).
    Tier,
}

impl Dimension {
    /// Meta's name of the dimension.
    pub fn parse(name: &str) -> Option<Dimension> {
        Some(match name {
            "COUNTRY" => Dimension::Country,
            "PRICING_CATEGORY" => Dimension::PricingCategory,
            "PRICING_TYPE" => Dimension::PricingType,
            "TIER" => Dimension::Tier,
            _ => return None,
        })
    }
}

/// One bucket's totals for one combination of dimension values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPoint {
    /// The bucket's start (WABA-local midnight).
    pub start: Timestamp,
    /// The bucket's end.
    pub end: Timestamp,
    /// Present when split by [`Dimension::Country`] (`None`: a shared calling code).
    pub country: Option<Option<String>>,
    /// Present when split by [`Dimension::PricingCategory`].
    pub pricing_category: Option<String>,
    /// Present when split by [`Dimension::PricingType`].
    pub pricing_type: Option<String>,
    /// Present when split by [`Dimension::Tier`] (`None`: no tier applied).
    pub tier: Option<Option<String>>,
    /// Messages delivered.
    pub volume: u64,
    /// What they cost.
    pub cost: Micros,
}

/// One WABA's data points, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WabaAnalytics {
    /// The WABA.
    pub waba_id: String,
    /// Its data points.
    pub data_points: Vec<DataPoint>,
}

type Key = (
    Timestamp,
    Option<Option<String>>,
    Option<String>,
    Option<String>,
    Option<Option<String>>,
);

/// Meta writes categories and types in capitals with underscores.
fn meta_name(v: &Value) -> String {
    v.as_str()
        .unwrap_or_default()
        .replace('-', "_")
        .to_ascii_uppercase()
}

/// The bucket of `at` in `zone`: its start and end.
fn bucket(
    at: Timestamp,
    zone: &TimeZone,
    granularity: Granularity,
) -> Option<(Timestamp, Timestamp)> {
    let date = at.to_zoned(zone.clone()).date();
    let (first, next) = match granularity {
        Granularity::Daily => (date, date.checked_add(1.day()).ok()?),
        Granularity::Monthly => {
            let first = date.first_of_month();
            (first, first.checked_add(1.month()).ok()?)
        }
    };
    let start = first.to_zoned(zone.clone()).ok()?.timestamp();
    let end = next.to_zoned(zone.clone()).ok()?.timestamp();
    Some((start, end))
}

impl CloudService {
    /// Volume and cost of the messages delivered in `[start, end)`, per WABA, per bucket and
    /// per the chosen dimensions.
    pub async fn analytics(
        &self,
        who: &Principal,
        start: Timestamp,
        end: Timestamp,
        granularity: Granularity,
        dimensions: &[Dimension],
    ) -> AppResult<Vec<WabaAnalytics>> {
        if end <= start {
            return Err(AppError::invalid("end", "must be after start"));
        }
        if end.duration_since(start) > SignedDuration::from_hours(24 * MAX_ANALYTICS_DAYS) {
            return Err(AppError::invalid(
                "end",
                format!("analytics cover at most {MAX_ANALYTICS_DAYS} days"),
            ));
        }
        let by = |d: Dimension| dimensions.contains(&d);
        let priced = self
            .store
            .priced_messages(&who.account.id, start, end)
            .await?;
        let mut zones: HashMap<wagate_domain::ids::LineId, TimeZone> = HashMap::new();
        let mut wabas: BTreeMap<String, BTreeMap<Key, (Timestamp, u64, i64)>> = BTreeMap::new();
        for p in priced {
            let zone = match zones.get(&p.line_id) {
                Some(z) => z.clone(),
                None => {
                    let zone = self
                        .store
                        .cloud_line(&p.line_id)
                        .await?
                        .and_then(|c| TimeZone::get(&c.time_zone).ok())
                        .unwrap_or(TimeZone::UTC);
                    zones.insert(p.line_id.clone(), zone.clone());
                    zone
                }
            };
            let Some((from, to)) = bucket(p.delivered_at, &zone, granularity) else {
                continue;
            };
            let ours: Value = serde_json::from_str(&p.ours).unwrap_or(Value::Null);
            let key: Key = (
                from,
                by(Dimension::Country).then(|| ours["country"].as_str().map(str::to_owned)),
                by(Dimension::PricingCategory).then(|| meta_name(&ours["category"])),
                by(Dimension::PricingType).then(|| meta_name(&ours["type"])),
                by(Dimension::Tier).then(|| ours["tier"].as_str().map(str::to_owned)),
            );
            let entry = wabas
                .entry(p.waba_id.clone())
                .or_default()
                .entry(key)
                .or_insert((to, 0, 0));
            entry.1 += 1;
            entry.2 = entry.2.saturating_add(p.amount.0);
        }
        Ok(wabas
            .into_iter()
            .map(|(waba_id, points)| WabaAnalytics {
                waba_id,
                data_points: points
                    .into_iter()
                    .map(
                        |(
                            (start, country, pricing_category, pricing_type, tier),
                            (end, volume, cost),
                        )| {
                            DataPoint {
                                start,
                                end,
                                country,
                                pricing_category,
                                pricing_type,
                                tier,
                                volume,
                                cost: Micros(cost),
                            }
                        },
                    )
                    .collect(),
            })
            .collect())
    }
}
