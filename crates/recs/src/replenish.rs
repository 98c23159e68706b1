//! Replenishment: a shopper's own items scored by how often and how recently they bought them,
//! lifted when they are due by their usual repurchase interval ("you buy this about every 3
//! weeks"). Computed from the live purchase history at request time.

/// Intervals past due over which a habit fades to 1/e.
const LAPSE_INTERVALS: f32 = 8.0;

/// One of the shopper's items.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Habit {
    /// The item.
    pub item: u32,
    /// Purchase days decayed by age: how strongly it is part of their shopping.
    pub strength: f32,
    /// Mean days between purchase days, when bought on two days or more.
    pub interval_days: Option<f32>,
    /// Days since the last purchase.
    pub days_since: f32,
    /// Days the shopper kept shopping without buying it: from its last purchase to their last
    /// purchase of anything.
    pub quiet_days: f32,
    /// Purchase days.
    pub days: u32,
}

impl Habit {
    /// Whether the item is due: the usual interval has (nearly) passed since the last purchase.
    pub fn due(&self) -> bool {
        self.interval_days.is_some_and(|i| self.days >= 3 && self.days_since >= 0.8 * i)
    }

    /// How likely they still buy it: 1 until they have shopped for longer than its usual
    /// interval without it, then fading over several intervals (a shopper who switched brands
    /// stops buying the old one). Time they did not shop at all does not count: a customer back
    /// after a long break still has their habits.
    pub fn still_bought(&self) -> f32 {
        match self.interval_days {
            Some(i) => (-(self.quiet_days - i).max(0.0) / (LAPSE_INTERVALS * i + 1.0)).exp(),
            None => 1.0,
        }
    }

    /// The repeat score: strength × [`Habit::still_bought`], lifted by `due_lift` × how overdue
    /// the item is (0 when not yet due, up to 1 at the interval). On the Complete Journey split
    /// a lift lowers NDCG (0.5 → −0.004 on repeats), so the default model uses 0 and shows
    /// dueness in explanations; the lapse raises it (0.5457 → 0.5504).
    pub fn score(&self, due_lift: f32) -> f32 {
        let base = self.strength * self.still_bought();
        match self.interval_days {
            Some(i) if self.days >= 3 && due_lift > 0.0 => {
                let phase = (self.days_since / i.max(1.0)).min(1.0);
                base * (1.0 + due_lift * phase)
            }
            _ => base,
        }
    }
}

/// A shopper's habits as of one day. They change only with the day and with new purchases, so
/// a caller that keeps a shopper between requests keeps these with it instead of sorting the
/// whole history again on every request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DayHabits {
    /// The unix day (UTC) they are for.
    pub day: i64,
    /// Best first, as [`habits`] gives them.
    pub habits: Vec<Habit>,
}

impl DayHabits {
    /// The habits of `purchases` (item, unix seconds) on the day of `now` (unix seconds).
    pub fn at(purchases: &[(u32, i64)], now: i64, half_life_days: f64) -> DayHabits {
        DayHabits { day: now.div_euclid(86_400), habits: habits(purchases, now, half_life_days) }
    }
}

/// The habits of a shopper with `purchases` (item, unix seconds) at time `now`; `half_life_days`
/// sets how fast old purchases fade.
pub fn habits(purchases: &[(u32, i64)], now: i64, half_life_days: f64) -> Vec<Habit> {
    let today = now.div_euclid(86_400);
    // (item, day) sorted once instead of a list per item: this runs on every request.
    let mut days: Vec<(u32, i64)> = purchases.iter().map(|&(item, ts)| (item, ts.div_euclid(86_400))).collect();
    days.sort_unstable();
    days.dedup();
    let last_trip = days.iter().map(|d| d.1).max().unwrap_or(today);
    let mut out: Vec<Habit> = days
        .chunk_by(|a, b| a.0 == b.0)
        .map(|ds| {
            let (item, first, last) = (ds[0].0, ds[0].1, ds[ds.len() - 1].1);
            let strength: f64 = ds.iter().map(|(_, d)| 0.5f64.powf((today - d).max(0) as f64 / half_life_days)).sum();
            let interval_days = (ds.len() >= 2).then(|| (last - first) as f32 / (ds.len() - 1) as f32);
            Habit {
                item,
                strength: strength as f32,
                interval_days,
                days_since: (today - last).max(0) as f32,
                quiet_days: (last_trip - last).max(0) as f32,
                days: ds.len() as u32,
            }
        })
        .collect();
    out.sort_unstable_by(|a, b| b.strength.total_cmp(&a.strength).then(a.item.cmp(&b.item)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    #[test]
    fn a_habit_lapses_only_while_the_shopper_keeps_shopping_without_it() {
        // Milk weekly for a year; coffee weekly for the first half only; then no shopping at all
        // for a year.
        let mut purchases = Vec::new();
        for week in 0..52 {
            purchases.push((1, week * 7 * DAY));
            if week < 26 {
                purchases.push((2, week * 7 * DAY));
            }
        }
        let now = 51 * 7 * DAY + 365 * DAY;
        let h = habits(&purchases, now, 180.0);
        let get = |item| h.iter().find(|x| x.item == item).expect("habit");
        assert_eq!(get(1).still_bought(), 1.0, "a year away does not end the milk habit");
        assert!(get(2).still_bought() < 0.1, "half a year of shopping without coffee does");
        assert!(get(1).score(0.0) > get(2).score(0.0));
    }

    #[test]
    fn a_shopper_answers_from_the_habits_kept_for_the_day_and_computes_another_days() {
        use crate::recommend::Shopper;
        use std::sync::Arc;
        let purchases = vec![(1, 10 * DAY), (1, 17 * DAY), (2, 20 * DAY)];
        // Kept habits that differ from what the purchases give, to see which answered.
        let kept = DayHabits { day: 30, habits: Vec::new() };
        let shopper = Shopper {
            purchases: Arc::new(purchases.clone()),
            habits: Some(Arc::new(kept.clone())),
            personal: true,
            ..Shopper::default()
        };
        assert_eq!(*shopper.habits_at(30 * DAY + 3600, 180.0), kept, "same day: the kept ones");
        let next_day = shopper.habits_at(31 * DAY, 180.0);
        assert_eq!(*next_day, DayHabits::at(&purchases, 31 * DAY, 180.0), "another day: computed");
        assert_eq!(next_day.habits.len(), 2);
    }
}
