//! Send time per customer: the hour of day a customer engages and buys, from their own history
//! shrunk toward their segment's pattern when that history is short. Hours are local to the
//! customer (the caller converts with their time zone); quiet hours and caps are applied after,
//! by the scheduler.

/// Hours in a day.
pub const HOURS: usize = 24;

/// When a customer acts: counts per local hour of day.
#[derive(Debug, Clone, PartialEq)]
pub struct HourProfile {
    counts: [f64; HOURS],
    total: f64,
}

impl Default for HourProfile {
    fn default() -> Self {
        HourProfile { counts: [0.0; HOURS], total: 0.0 }
    }
}

impl HourProfile {
    /// Records an engagement or purchase at a local hour (0–23; other values are ignored).
    pub fn record(&mut self, hour: u32, weight: f64) {
        if let Some(c) = self.counts.get_mut(hour as usize) {
            if weight.is_finite() && weight > 0.0 {
                *c += weight;
                self.total += weight;
            }
        }
    }

    /// How many engagements were recorded (weighted).
    pub fn total(&self) -> f64 {
        self.total
    }

    /// Adds another profile's counts (e.g. a segment's members).
    pub fn add(&mut self, other: &HourProfile) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        self.total += other.total;
    }

    /// Share of the profile per hour; uniform when empty.
    pub fn shares(&self) -> [f64; HOURS] {
        if self.total <= 0.0 {
            return [1.0 / HOURS as f64; HOURS];
        }
        self.counts.map(|c| c / self.total)
    }
}

/// The chosen hour and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SendHour {
    /// Local hour of day, 0–23.
    pub hour: u32,
    /// The customer's own weight in the choice (0: segment pattern only, near 1: their history).
    pub own_weight: f64,
    /// The estimated share of the customer's activity within an hour of the chosen one.
    pub window_share: f64,
}

/// Chooses the hour whose ±1 h window holds most of the customer's activity, their shares
/// mixed with the segment's as `n / (n + prior_strength)` for `n` own engagements.
pub fn choose_hour(own: &HourProfile, segment: &HourProfile, prior_strength: f64) -> SendHour {
    let n = own.total();
    let own_weight = if n > 0.0 { n / (n + prior_strength.max(0.0)) } else { 0.0 };
    let (mine, theirs) = (own.shares(), segment.shares());
    let mixed: Vec<f64> = (0..HOURS).map(|h| own_weight * mine[h] + (1.0 - own_weight) * theirs[h]).collect();
    let window = |h: usize| mixed[(h + HOURS - 1) % HOURS] + mixed[h] + mixed[(h + 1) % HOURS];
    // The centre counts double so a single busy hour wins over its neighbours.
    let centred = |h: usize| window(h) + mixed[h];
    let best = (0..HOURS).max_by(|&a, &b| centred(a).total_cmp(&centred(b)).then(b.cmp(&a))).unwrap_or(0);
    SendHour { hour: best as u32, own_weight, window_share: window(best) }
}

/// Like [`choose_hour`], but only among the hours where `allowed` holds (outside quiet hours);
/// None when no hour is allowed.
pub fn choose_allowed_hour(
    own: &HourProfile,
    segment: &HourProfile,
    prior_strength: f64,
    allowed: &[bool; HOURS],
) -> Option<SendHour> {
    let n = own.total();
    let own_weight = if n > 0.0 { n / (n + prior_strength.max(0.0)) } else { 0.0 };
    let (mine, theirs) = (own.shares(), segment.shares());
    let mixed: Vec<f64> = (0..HOURS).map(|h| own_weight * mine[h] + (1.0 - own_weight) * theirs[h]).collect();
    let window = |h: usize| mixed[(h + HOURS - 1) % HOURS] + mixed[h] + mixed[(h + 1) % HOURS];
    let centred = |h: usize| window(h) + mixed[h];
    let best = (0..HOURS).filter(|&h| allowed[h]).max_by(|&a, &b| centred(a).total_cmp(&centred(b)).then(b.cmp(&a)))?;
    Some(SendHour { hour: best as u32, own_weight, window_share: window(best) })
}

/// Whether two hours of day are within one hour of each other (around midnight too).
pub fn within_an_hour(a: u32, b: u32) -> bool {
    let d = a.abs_diff(b) % HOURS as u32;
    d.min(HOURS as u32 - d) <= 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_customer_with_history_gets_their_hour_and_a_new_one_their_segments() {
        let mut segment = HourProfile::default();
        for _ in 0..100 {
            segment.record(18, 1.0);
        }
        let mut morning_shopper = HourProfile::default();
        let new_customer = HourProfile::default();
        for _ in 0..12 {
            morning_shopper.record(9, 1.0);
        }
        assert_eq!(choose_hour(&morning_shopper, &segment, 4.0).hour, 9);
        assert_eq!(choose_hour(&new_customer, &segment, 4.0).hour, 18);
        // One visit at 9 is not enough to overrule a strong segment pattern.
        let mut once = HourProfile::default();
        once.record(9, 1.0);
        let pick = choose_hour(&once, &segment, 4.0);
        assert_eq!(pick.hour, 18);
        assert!((pick.own_weight - 0.2).abs() < 1e-9);
        assert!(within_an_hour(23, 0) && within_an_hour(5, 6) && !within_an_hour(5, 7));
    }
}
