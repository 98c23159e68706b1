//! Segments as data, and their membership kept up as events arrive: conditions over traits,
//! orders (count and spend) and events counted in a time window. [`Membership`] updates one
//! customer per event (and those whose window moved on), and says who entered and who left —
//! the events journeys can start from. [`recompute`] derives the same from the whole history;
//! a property test holds the two equal.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tailor_core::FieldError;

/// The longest event window, in days.
pub const MAX_WINDOW_DAYS: u32 = 730;
const DAY_MS: i64 = 86_400_000;

/// One condition; a segment holds the customers meeting all of its conditions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Condition {
    /// A trait equals a value.
    #[serde(rename_all = "camelCase")]
    Trait {
        /// The trait.
        name: String,
        /// The value.
        equals: Value,
    },
    /// At least `min` events named `event` in the last `withinDays` days.
    #[serde(rename_all = "camelCase")]
    EventCount {
        /// The event name.
        event: String,
        /// The least count (1 or more).
        min: u32,
        /// The window in days (1–730).
        within_days: u32,
    },
    /// At least `min` orders.
    #[serde(rename_all = "camelCase")]
    Orders {
        /// The least count (1 or more).
        min: u32,
    },
    /// Spend of at least `minCents`.
    #[serde(rename_all = "camelCase")]
    Spend {
        /// The least spend in cents (1 or more).
        min_cents: i64,
    },
}

/// A segment definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SegmentDef {
    /// A name people read.
    pub name: String,
    /// All must hold.
    pub conditions: Vec<Condition>,
}

impl SegmentDef {
    /// Checks ranges, naming the field.
    pub fn check(&self) -> Result<(), FieldError> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(FieldError::invalid("name", "a name is 1 to 200 characters"));
        }
        if self.conditions.is_empty() || self.conditions.len() > 32 {
            return Err(FieldError::invalid("conditions", "a segment has 1 to 32 conditions"));
        }
        for (i, c) in self.conditions.iter().enumerate() {
            let f = |n: &str| format!("conditions[{i}].{n}");
            match c {
                Condition::Trait { name, .. } if name.is_empty() => {
                    return Err(FieldError::invalid(f("name"), "a trait name is required"))
                }
                Condition::EventCount { min: 0, .. } | Condition::Orders { min: 0 } => {
                    return Err(FieldError::invalid(f("min"), "at least 1 (0 holds for everyone)"))
                }
                Condition::EventCount { within_days, .. } if !(1..=MAX_WINDOW_DAYS).contains(within_days) => {
                    return Err(FieldError::invalid(f("withinDays"), format!("1 to {MAX_WINDOW_DAYS} days")))
                }
                Condition::Spend { min_cents } if *min_cents < 1 => {
                    return Err(FieldError::invalid(f("minCents"), "at least 1 cent"))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// What a customer did, as segments see it.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    /// A tracked event.
    Event(String),
    /// A trait set.
    Trait(String, Value),
    /// An order of this many cents.
    Order(i64),
}

/// A customer entered or left the segment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    /// Now a member.
    Entered(String),
    /// No longer a member.
    Exited(String),
}

#[derive(Debug, Default, Clone)]
struct Customer {
    traits: BTreeMap<String, Value>,
    orders: u32,
    spend: i64,
    /// Per condition index, the times of its events still inside the window.
    windows: HashMap<usize, VecDeque<i64>>,
}

fn holds(def: &SegmentDef, c: &Customer) -> bool {
    def.conditions.iter().enumerate().all(|(i, cond)| match cond {
        Condition::Trait { name, equals } => c.traits.get(name) == Some(equals),
        Condition::EventCount { min, .. } => c.windows.get(&i).map_or(0, VecDeque::len) >= *min as usize,
        Condition::Orders { min } => c.orders >= *min,
        Condition::Spend { min_cents } => c.spend >= *min_cents,
    })
}

fn window_ms(days: u32) -> i64 {
    i64::from(days) * DAY_MS
}

/// A segment's membership, kept up one fact at a time.
#[derive(Debug, Clone)]
pub struct Membership {
    def: SegmentDef,
    customers: HashMap<String, Customer>,
    members: BTreeSet<String>,
    /// When an event leaves a window: (time it leaves, customer).
    expiries: BinaryHeap<Reverse<(i64, String)>>,
}

impl Membership {
    /// An empty membership of `def`.
    pub fn new(def: SegmentDef) -> Self {
        Membership { def, customers: HashMap::new(), members: BTreeSet::new(), expiries: BinaryHeap::new() }
    }

    /// The members now.
    pub fn members(&self) -> &BTreeSet<String> {
        &self.members
    }

    /// Moves time to `now`: events leave their windows, and the customers concerned are
    /// judged again. Returns who left or entered.
    pub fn advance(&mut self, now: i64) -> Vec<Change> {
        let mut touched = BTreeSet::new();
        while let Some(Reverse((at, who))) = self.expiries.peek().cloned() {
            if at > now {
                break;
            }
            self.expiries.pop();
            touched.insert(who);
        }
        let mut out = Vec::new();
        for who in touched {
            self.prune(&who, now);
            out.extend(self.judge(&who));
        }
        out
    }

    /// Applies one fact about `customer` at `at` (facts come in time order); returns who
    /// entered or left.
    pub fn apply(&mut self, customer: &str, fact: &Fact, at: i64) -> Vec<Change> {
        let mut out = self.advance(at);
        let c = self.customers.entry(customer.to_string()).or_default();
        match fact {
            Fact::Trait(name, v) => {
                c.traits.insert(name.clone(), v.clone());
            }
            Fact::Order(cents) => {
                c.orders = c.orders.saturating_add(1);
                c.spend = c.spend.saturating_add(*cents);
            }
            Fact::Event(name) => {
                for (i, cond) in self.def.conditions.iter().enumerate() {
                    if let Condition::EventCount { event, within_days, .. } = cond {
                        if event == name {
                            c.windows.entry(i).or_default().push_back(at);
                            let leaves = at.saturating_add(window_ms(*within_days));
                            self.expiries.push(Reverse((leaves, customer.to_string())));
                        }
                    }
                }
            }
        }
        self.prune(customer, at);
        out.extend(self.judge(customer));
        out
    }

    fn prune(&mut self, customer: &str, now: i64) {
        let Some(c) = self.customers.get_mut(customer) else { return };
        for (i, times) in c.windows.iter_mut() {
            if let Some(Condition::EventCount { within_days, .. }) = self.def.conditions.get(*i) {
                let w = window_ms(*within_days);
                while times.front().is_some_and(|t| t.saturating_add(w) <= now) {
                    times.pop_front();
                }
            }
        }
    }

    fn judge(&mut self, customer: &str) -> Option<Change> {
        let inside = self.customers.get(customer).is_some_and(|c| holds(&self.def, c));
        match (inside, self.members.contains(customer)) {
            (true, false) => {
                self.members.insert(customer.to_string());
                Some(Change::Entered(customer.to_string()))
            }
            (false, true) => {
                self.members.remove(customer);
                Some(Change::Exited(customer.to_string()))
            }
            _ => None,
        }
    }
}

/// What the store knows of one customer for a segment's conditions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerState {
    /// Their traits (merged over their profiles).
    pub traits: BTreeMap<String, Value>,
    /// Completed orders.
    pub orders: u32,
    /// Spend, in cents.
    pub spend_cents: i64,
    /// Times (unix ms) of their events, by name (those a segment counts; older ones may be left out).
    pub events: HashMap<String, Vec<i64>>,
}

/// Whether a customer in `state` meets every condition of `def` at `now`.
pub fn is_member(def: &SegmentDef, state: &CustomerState, now: i64) -> bool {
    def.conditions.iter().all(|cond| match cond {
        Condition::Trait { name, equals } => state.traits.get(name) == Some(equals),
        Condition::EventCount { event, min, within_days } => {
            let from = now.saturating_sub(window_ms(*within_days));
            let n = state.events.get(event).map_or(0, |ts| ts.iter().filter(|at| **at > from && **at <= now).count());
            n >= *min as usize
        }
        Condition::Orders { min } => state.orders >= *min,
        Condition::Spend { min_cents } => state.spend_cents >= *min_cents,
    })
}

/// The events a segment counts, each with its longest window in days.
pub fn events_counted(def: &SegmentDef) -> BTreeMap<String, u32> {
    let mut out: BTreeMap<String, u32> = BTreeMap::new();
    for c in &def.conditions {
        if let Condition::EventCount { event, within_days, .. } = c {
            let w = out.entry(event.clone()).or_default();
            *w = (*w).max(*within_days);
        }
    }
    out
}

/// The members at `now`, derived from the whole history `(customer, fact, at)` at once.
pub fn recompute(def: &SegmentDef, history: &[(String, Fact, i64)], now: i64) -> BTreeSet<String> {
    let mut by: BTreeMap<&str, CustomerState> = BTreeMap::new();
    for (who, fact, at) in history.iter().filter(|(_, _, at)| *at <= now) {
        let state = by.entry(who.as_str()).or_default();
        match fact {
            Fact::Trait(n, v) => {
                state.traits.insert(n.clone(), v.clone());
            }
            Fact::Order(c) => {
                state.orders = state.orders.saturating_add(1);
                state.spend_cents = state.spend_cents.saturating_add(*c);
            }
            Fact::Event(e) => state.events.entry(e.clone()).or_default().push(*at),
        }
    }
    by.into_iter().filter(|(_, state)| is_member(def, state, now)).map(|(who, _)| who.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn def() -> SegmentDef {
        serde_json::from_value(json!({"name": "Engaged gold", "conditions": [
            {"type": "trait", "name": "tier", "equals": "gold"},
            {"type": "eventCount", "event": "Product Viewed", "min": 2, "withinDays": 2},
            {"type": "orders", "min": 1},
            {"type": "spend", "minCents": 500}
        ]}))
        .expect("def")
    }

    fn fact() -> impl Strategy<Value = Fact> {
        prop_oneof![
            prop::sample::select(vec!["Product Viewed", "Product Added"]).prop_map(|e| Fact::Event(e.to_string())),
            prop::sample::select(vec!["gold", "silver"]).prop_map(|t| Fact::Trait("tier".into(), json!(t))),
            (1i64..800).prop_map(Fact::Order),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// After every fact, the membership kept up incrementally equals the one recomputed
        /// from scratch over the history so far.
        #[test]
        fn incremental_membership_equals_recomputation(
            stream in prop::collection::vec((0u8..6, fact(), 0i64..(DAY_MS / 2)), 1..120),
        ) {
            let def = def();
            let mut m = Membership::new(def.clone());
            let mut history = Vec::new();
            let mut now = 0i64;
            for (who, f, gap) in stream {
                now += gap;
                let who = format!("c{who}");
                m.apply(&who, &f, now);
                history.push((who, f, now));
                prop_assert_eq!(m.members(), &recompute(&def, &history, now));
            }
            // Time alone moves people out of event windows.
            for later in [now + DAY_MS, now + 3 * DAY_MS] {
                m.advance(later);
                prop_assert_eq!(m.members(), &recompute(&def, &history, later));
            }
        }
    }

    #[test]
    fn entries_and_exits_are_reported() {
        let mut m = Membership::new(def());
        assert!(m.apply("a", &Fact::Trait("tier".into(), json!("gold")), 0).is_empty());
        m.apply("a", &Fact::Order(600), 1);
        m.apply("a", &Fact::Event("Product Viewed".into()), 2);
        assert_eq!(m.apply("a", &Fact::Event("Product Viewed".into()), 3), vec![Change::Entered("a".into())]);
        assert_eq!(m.advance(2 + 2 * DAY_MS), vec![Change::Exited("a".into())]);
    }

    #[test]
    fn bad_segments_are_refused_naming_the_field() {
        let mut d = def();
        d.conditions[1] = Condition::EventCount { event: "Product Viewed".into(), min: 0, within_days: 2 };
        assert_eq!(d.check().expect_err("min 0").field, "conditions[1].min");
        d.conditions[1] = Condition::EventCount { event: "Product Viewed".into(), min: 1, within_days: 0 };
        assert_eq!(d.check().expect_err("window").field, "conditions[1].withinDays");
        def().check().expect("valid");
    }
}
