//! The shopper's situation: time of day and week, season, and the weather at their store. Items
//! that sell unusually well in a situation are ranked for it at training time, so serving only
//! looks a list up.

use serde::{Deserialize, Serialize};

use crate::content::{words, Content};

/// Part of the day, in the store's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Daypart {
    /// 05:00–11:00.
    Morning,
    /// 11:00–16:00.
    Midday,
    /// 16:00–21:00.
    Evening,
    /// 21:00–05:00.
    Night,
}

/// Season (northern hemisphere by month).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Season {
    /// December–February.
    Winter,
    /// March–May.
    Spring,
    /// June–August.
    Summer,
    /// September–November.
    Autumn,
}

/// Weather conditions a store can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Weather {
    /// Rain or showers.
    Rain,
    /// Snow or sleet.
    Snow,
    /// Hot (about 27 °C or more).
    Hot,
    /// Cold (about 5 °C or less).
    Cold,
    /// Clear or mild: nothing in particular.
    Clear,
}

impl Weather {
    /// All conditions, in a fixed order.
    pub const ALL: [Weather; 5] = [Weather::Rain, Weather::Snow, Weather::Hot, Weather::Cold, Weather::Clear];

    /// The API name.
    pub fn name(self) -> &'static str {
        match self {
            Weather::Rain => "rain",
            Weather::Snow => "snow",
            Weather::Hot => "hot",
            Weather::Cold => "cold",
            Weather::Clear => "clear",
        }
    }

    /// Parses an API name.
    pub fn parse(s: &str) -> Option<Weather> {
        Weather::ALL.into_iter().find(|w| w.name() == s.trim().to_lowercase())
    }

    /// Words of products this weather lifts (matched against title and categories).
    pub fn keywords(self) -> &'static [&'static str] {
        match self {
            Weather::Rain => &["umbrella", "umbrellas", "soup", "soups", "tea", "cocoa", "poncho", "broth"],
            Weather::Snow => &["soup", "soups", "broth", "cocoa", "chili", "salt", "shovel", "stew"],
            Weather::Hot => &["ice", "cream", "water", "popsicle", "popsicles", "lemonade", "sunscreen", "charcoal"],
            Weather::Cold => &["soup", "soups", "broth", "chili", "cocoa", "tea", "oatmeal", "stew"],
            Weather::Clear => &[],
        }
    }
}

/// When a shopper is shopping, in local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    /// Part of the day.
    pub daypart: Daypart,
    /// Saturday or Sunday.
    pub weekend: bool,
    /// Season.
    pub season: Season,
}

/// Days since 1970-01-01 → (year, month 1–12, day).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl Moment {
    /// The moment of unix time `ts` (seconds) at a UTC offset.
    pub fn at(ts: i64, utc_offset_secs: i64) -> Moment {
        let local = ts + utc_offset_secs;
        let days = local.div_euclid(86_400);
        let hour = local.rem_euclid(86_400) / 3600;
        let daypart = match hour {
            5..=10 => Daypart::Morning,
            11..=15 => Daypart::Midday,
            16..=20 => Daypart::Evening,
            _ => Daypart::Night,
        };
        // 1970-01-01 was a Thursday: day 2 and 3 of the week are Saturday and Sunday.
        let weekend = matches!(days.rem_euclid(7), 2 | 3);
        let season = match civil(days).1 {
            12 | 1 | 2 => Season::Winter,
            3..=5 => Season::Spring,
            6..=8 => Season::Summer,
            _ => Season::Autumn,
        };
        Moment { daypart, weekend, season }
    }

    fn slot(self) -> usize {
        (self.daypart as usize) * 8 + usize::from(self.weekend) * 4 + self.season as usize
    }

    /// Words for an explanation, e.g. "weekend evenings in winter".
    pub fn describe(self) -> String {
        let part = match self.daypart {
            Daypart::Morning => "mornings",
            Daypart::Midday => "middays",
            Daypart::Evening => "evenings",
            Daypart::Night => "nights",
        };
        let week = if self.weekend { "weekend" } else { "weekday" };
        let season = match self.season {
            Season::Winter => "winter",
            Season::Spring => "spring",
            Season::Summer => "summer",
            Season::Autumn => "autumn",
        };
        format!("{week} {part} in {season}")
    }
}

/// Items to show for each moment and each weather, ranked at training time.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Situations {
    /// For each of the 32 moments: items selling unusually well then, with a score in 0–1.
    pub moments: Vec<Vec<(u32, f32)>>,
    /// For each weather (in `Weather::ALL` order): items it lifts, by popularity, score 0–1.
    pub weather: Vec<Vec<(u32, f32)>>,
}

/// Smoothing: an item's share of a moment is pulled toward the overall share by this many sales.
const PRIOR: f32 = 30.0;
/// Items kept per list.
const KEEP: usize = 300;

fn normalized(mut v: Vec<(u32, f32)>) -> Vec<(u32, f32)> {
    v.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v.truncate(KEEP);
    v.shrink_to_fit();
    let max = v.first().map_or(1.0, |x| x.1).max(1e-9);
    v.iter_mut().for_each(|x| x.1 /= max);
    v
}

impl Situations {
    /// Learns from purchases `(item, unix seconds)` of `items` items; `popularity` ranks weather
    /// items; `content` supplies the text the weather keywords match.
    pub fn learn(
        purchases: impl Iterator<Item = (u32, i64)>,
        items: usize,
        popularity: &[f32],
        content: &Content,
    ) -> Situations {
        let mut counts = vec![[0f32; 32]; items];
        let mut totals = [0f32; 32];
        for (i, ts) in purchases {
            let s = Moment::at(ts, 0).slot();
            counts[i as usize][s] += 1.0;
            totals[s] += 1.0;
        }
        let all: f32 = totals.iter().sum::<f32>().max(1.0);
        let moments = (0..32)
            .map(|s| {
                let share = totals[s] / all;
                if share == 0.0 {
                    return Vec::new();
                }
                let lifted = counts.iter().enumerate().filter_map(|(i, c)| {
                    let n: f32 = c.iter().sum();
                    let lift = ((c[s] + PRIOR * share) / (n + PRIOR)) / share;
                    // Lift matters only for items that sell: weigh it by the moment's sales.
                    (lift > 1.1 && c[s] >= 3.0).then(|| (i as u32, (lift - 1.0) * c[s].ln_1p()))
                });
                normalized(lifted.collect())
            })
            .collect();
        let weather = Weather::ALL
            .iter()
            .map(|w| {
                let keys = w.keywords();
                if keys.is_empty() || content.text.is_empty() {
                    return Vec::new();
                }
                let hits = content.text.iter().enumerate().filter_map(|(i, t)| {
                    let matched = words(t).any(|word| keys.contains(&word.as_str()));
                    matched.then(|| (i as u32, popularity.get(i).copied().unwrap_or(0.0) + 1e-3))
                });
                normalized(hits.collect())
            })
            .collect();
        Situations { moments, weather }
    }

    /// Items for a moment.
    pub fn for_moment(&self, m: Moment) -> &[(u32, f32)] {
        self.moments.get(m.slot()).map_or(&[], Vec::as_slice)
    }

    /// Items for a weather.
    pub fn for_weather(&self, w: Weather) -> &[(u32, f32)] {
        let i = Weather::ALL.iter().position(|x| *x == w).unwrap_or(0);
        self.weather.get(i).map_or(&[], Vec::as_slice)
    }
}
