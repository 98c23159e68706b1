//! A customer's way through a journey as a pure state machine driven by a clock value: the
//! stored position is always the step to run when it falls due; waits become due times,
//! branches and splits are decided when reached, and the caller performs sends and webhooks.

use serde_json::Value;

use crate::journey::{Condition, JourneyDef, StepKind};

/// Where a customer is: the step to run, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The step's index in the definition.
    pub step: usize,
    /// When it falls due (unix ms).
    pub due_at: i64,
}

/// What the customer sees of their own state, for branches and splits.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Lines in their cart now.
    pub cart_lines: usize,
    /// Their traits.
    pub traits: Value,
    /// A stable number in 0..100 for this customer and entry (random splits).
    pub bucket: u32,
}

/// What to do at a due position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Perform step `.0` (a send or a webhook) now, then call [`after`].
    Act(usize),
    /// Nothing to do until this position falls due.
    Wait(Position),
    /// The journey ends for this customer; the reason.
    End(&'static str),
}

/// Walks from step `from` at time `now`: branches and splits are decided on `facts`, a wait
/// becomes a position due later, and the first send or webhook is returned to perform.
pub fn resolve(def: &JourneyDef, from: Option<usize>, now: i64, facts: &Facts) -> Decision {
    let mut at = from;
    // A checked definition has no cycle, so each step is seen at most once; the bound makes
    // that a guarantee even for an unchecked one.
    for _ in 0..=def.steps.len() {
        let Some(i) = at else { return Decision::End("completed") };
        let Some(step) = def.steps.get(i) else { return Decision::End("completed") };
        match &step.kind {
            StepKind::Wait { seconds } => {
                let Some(due_at) = seconds.checked_mul(1000).and_then(|ms| now.checked_add(ms)) else {
                    return Decision::End("completed");
                };
                return match def.next_of(i) {
                    Some(step) => Decision::Wait(Position { step, due_at }),
                    None => Decision::End("completed"),
                };
            }
            StepKind::Branch { condition, then, otherwise } => {
                let target = if holds(condition, facts) { then } else { otherwise };
                at = def.position_of(target);
            }
            StepKind::Split { percent, then, otherwise } => {
                let target = if facts.bucket < *percent { then } else { otherwise };
                at = def.position_of(target);
            }
            StepKind::Exit => return Decision::End("exit step"),
            StepKind::Send { .. } | StepKind::Webhook { .. } => return Decision::Act(i),
        }
    }
    Decision::End("completed")
}

/// Where the customer goes once step `done` was performed (sent or skipped) at `now`.
pub fn after(def: &JourneyDef, done: usize, now: i64, facts: &Facts) -> Decision {
    match def.next_of(done) {
        Some(next) => resolve(def, Some(next), now, facts),
        None => Decision::End("completed"),
    }
}

/// Where a customer entering (or restarting) at `now` stands.
pub fn enter(def: &JourneyDef, now: i64, facts: &Facts) -> Decision {
    resolve(def, Some(0), now, facts)
}

fn holds(c: &Condition, facts: &Facts) -> bool {
    match c {
        Condition::CartNotEmpty => facts.cart_lines > 0,
        Condition::TraitEquals { name, value } => facts.traits.get(name) == Some(value),
    }
}

/// The idempotency key of one send: journey, version, customer, entry and step.
pub fn send_key(journey: &str, version: i64, customer: &str, entry: i64, step: &str) -> String {
    format!("{journey}/{version}/{customer}/{entry}/{step}")
}

/// A stable bucket in 0..100 for a customer's entry (FNV-1a; no randomness to replay).
pub fn bucket(journey: &str, customer: &str, entry: i64) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in journey.bytes().chain([0]).chain(customer.bytes()).chain(entry.to_le_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % 100) as u32
}
