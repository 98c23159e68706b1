//! Channel per customer: among the channels a customer consented to and can be reached on,
//! the one most likely to get a response, by Thompson sampling on a Beta-Bernoulli model of
//! "a message on this channel was followed by an engagement" per customer and channel, shrunk
//! toward the whole population's rate on that channel. A channel a customer never got a
//! message on draws from the population's prior, so it gets its chance; one they keep ignoring
//! fades. Pure: the caller reads consents, addresses and history and passes a seeded generator.

use rand::Rng;

/// One channel as seen for one customer.
#[derive(Debug, Clone, PartialEq)]
pub struct Arm {
    /// The channel's name (`email`, `sms`, `push`, `onsite`).
    pub name: String,
    /// Whether the customer grants this channel's consent purpose now.
    pub consent: bool,
    /// Whether the customer can be reached on it (an address, a phone, a push token, the app).
    pub reachable: bool,
    /// Messages this customer got on the channel.
    pub sends: u32,
    /// Of those, how many were followed by an engagement (open, click, reply, purchase).
    pub engaged: u32,
    /// Messages on the channel across all customers.
    pub population_sends: u64,
    /// Of those, how many were followed by an engagement.
    pub population_engaged: u64,
}

/// What was chosen and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// The index of the chosen arm; None when no channel is allowed.
    pub chosen: Option<usize>,
    /// Each arm's posterior mean engagement rate (None when not allowed).
    pub means: Vec<Option<f64>>,
    /// Each arm's draw (None when not allowed).
    pub draws: Vec<Option<f64>>,
    /// Why this channel, in words (no personal data).
    pub explanation: String,
}

/// How many pseudo-messages the population's rate is worth in a customer's prior.
pub const PRIOR_STRENGTH: f64 = 2.0;

/// The population's rate on a channel, with a uniform half-count either way.
fn population_rate(a: &Arm) -> f64 {
    (a.population_engaged as f64 + 1.0) / (a.population_sends as f64 + 2.0)
}

/// The posterior Beta parameters of an arm.
pub fn posterior(a: &Arm, prior_strength: f64) -> (f64, f64) {
    let p = population_rate(a).clamp(1e-3, 1.0 - 1e-3);
    let m = prior_strength.max(1e-3);
    let engaged = a.engaged.min(a.sends);
    (m * p + f64::from(engaged), m * (1.0 - p) + f64::from(a.sends - engaged))
}

/// Chooses a channel among `arms` by one Thompson draw each from `rng`.
pub fn choose(arms: &[Arm], prior_strength: f64, rng: &mut impl Rng) -> Choice {
    let mut means = Vec::with_capacity(arms.len());
    let mut draws = Vec::with_capacity(arms.len());
    let mut reasons = Vec::new();
    for a in arms {
        if !a.consent {
            reasons.push(format!("{}: no consent", a.name));
            means.push(None);
            draws.push(None);
            continue;
        }
        if !a.reachable {
            reasons.push(format!("{}: not reachable", a.name));
            means.push(None);
            draws.push(None);
            continue;
        }
        let (alpha, beta) = posterior(a, prior_strength);
        let mean = alpha / (alpha + beta);
        let draw = sample_beta(alpha, beta, rng);
        reasons.push(format!(
            "{}: {} of {} messages engaged, expected {:.0}% (population {:.0}%), drew {:.2}",
            a.name,
            a.engaged.min(a.sends),
            a.sends,
            mean * 100.0,
            population_rate(a) * 100.0,
            draw
        ));
        means.push(Some(mean));
        draws.push(Some(draw));
    }
    let chosen =
        draws.iter().enumerate().filter_map(|(i, d)| d.map(|d| (i, d))).max_by(|a, b| a.1.total_cmp(&b.1)).map(|x| x.0);
    let explanation = match chosen {
        Some(i) => {
            let best_mean = means.iter().flatten().copied().fold(f64::MIN, f64::max);
            let kind = if means[i] == Some(best_mean) { "most likely to engage" } else { "exploring" };
            format!("{} ({kind}) — {}", arms[i].name, reasons.join("; "))
        }
        None => format!("no channel allowed — {}", reasons.join("; ")),
    };
    Choice { chosen, means, draws, explanation }
}

/// A standard normal draw (Box–Muller).
fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A Gamma(shape, 1) draw (Marsaglia and Tsang, 2000; shape < 1 boosted by U^(1/shape)).
fn gamma(shape: f64, rng: &mut impl Rng) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
        return gamma(shape + 1.0, rng) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    // Accepts with probability above 0.95 per try; the bound only guards a broken generator.
    for _ in 0..1000 {
        let x = normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
    d
}

/// A Beta(alpha, beta) draw.
pub fn sample_beta(alpha: f64, beta: f64, rng: &mut impl Rng) -> f64 {
    let x = gamma(alpha.max(1e-6), rng);
    let y = gamma(beta.max(1e-6), rng);
    if x + y <= 0.0 {
        0.5
    } else {
        x / (x + y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn arm(name: &str, consent: bool) -> Arm {
        Arm {
            name: name.into(),
            consent,
            reachable: true,
            sends: 0,
            engaged: 0,
            population_sends: 0,
            population_engaged: 0,
        }
    }

    /// Customers who answer only SMS: after a few messages each, nearly every choice is SMS;
    /// one without SMS consent is never sent SMS.
    #[test]
    fn customers_who_engage_only_by_sms_converge_to_sms_and_consent_holds() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(17);
        let names = ["email", "sms", "push"];
        // 50 customers; the last 10 have no SMS consent.
        let mut arms: Vec<Vec<Arm>> =
            (0..50).map(|c| names.iter().map(|n| arm(n, *n != "sms" || c < 40)).collect()).collect();
        let mut late_sms = 0;
        let mut late_total = 0;
        for round in 0..30 {
            let (mut pop_sends, mut pop_engaged) = ([0u64; 3], [0u64; 3]);
            for a in &arms {
                for (k, x) in a.iter().enumerate() {
                    pop_sends[k] += u64::from(x.sends);
                    pop_engaged[k] += u64::from(x.engaged);
                }
            }
            for (c, a) in arms.iter_mut().enumerate() {
                for (k, x) in a.iter_mut().enumerate() {
                    x.population_sends = pop_sends[k];
                    x.population_engaged = pop_engaged[k];
                }
                let choice = choose(a, PRIOR_STRENGTH, &mut rng);
                let k = choice.chosen.expect("a channel");
                assert!(!(c >= 40 && names[k] == "sms"), "SMS without consent: {}", choice.explanation);
                a[k].sends += 1;
                if names[k] == "sms" {
                    a[k].engaged += 1;
                }
                if round >= 20 && c < 40 {
                    late_total += 1;
                    late_sms += usize::from(names[k] == "sms");
                }
            }
        }
        assert!(late_sms * 100 >= late_total * 95, "{late_sms} of {late_total} late choices were SMS");
    }

    #[test]
    fn a_new_channel_gets_a_chance_and_nothing_is_chosen_without_consent() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut email = arm("email", true);
        email.sends = 6;
        email.engaged = 1;
        email.population_sends = 1000;
        email.population_engaged = 150;
        let fresh = arm("push", true);
        let picks =
            (0..200).filter(|_| choose(&[email.clone(), fresh.clone()], 2.0, &mut rng).chosen == Some(1)).count();
        assert!(picks > 20, "a channel never tried is explored ({picks} of 200)");
        let none = choose(&[arm("sms", false), Arm { reachable: false, ..arm("push", true) }], 2.0, &mut rng);
        assert_eq!(none.chosen, None);
        assert!(none.explanation.contains("sms: no consent") && none.explanation.contains("push: not reachable"));
    }

    #[test]
    fn beta_draws_have_the_right_mean() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for (a, b) in [(0.5, 0.5), (2.0, 8.0), (30.0, 3.0)] {
            let m = (0..20_000).map(|_| sample_beta(a, b, &mut rng)).sum::<f64>() / 20_000.0;
            assert!((m - a / (a + b)).abs() < 0.01, "Beta({a},{b}) mean {m}");
        }
    }
}
