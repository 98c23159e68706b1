//! A customer's way through a journey as a pure state machine driven by a clock value: the
//! stored position is the step to run when it falls due; waits become due times, branches and
//! splits are decided when reached, and the caller performs sends, webhooks, trait updates and
//! grants. Two positions are waits themselves: a customer at a `waitUntil` step is waiting for
//! its event until the timeout falls due, and a customer at a `wait` step (stored there only
//! when a wait leads to another wait) goes on once it falls due. [`due`] reads a position.

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
                    // A wait before another wait: the position stays here (see `due`).
                    Some(next) if is_wait(def, next) => Decision::Wait(Position { step: i, due_at }),
                    Some(step) => Decision::Wait(Position { step, due_at }),
                    None => Decision::End("completed"),
                };
            }
            StepKind::WaitUntil { seconds, .. } => {
                let Some(due_at) = seconds.checked_mul(1000).and_then(|ms| now.checked_add(ms)) else {
                    return Decision::End("completed");
                };
                return Decision::Wait(Position { step: i, due_at });
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
            StepKind::Send { .. }
            | StepKind::Webhook { .. }
            | StepKind::UpdateTrait { .. }
            | StepKind::GrantPoints { .. }
            | StepKind::IssueOffer { .. } => return Decision::Act(i),
        }
    }
    Decision::End("completed")
}

fn is_wait(def: &JourneyDef, i: usize) -> bool {
    matches!(def.steps.get(i).map(|s| &s.kind), Some(StepKind::Wait { .. } | StepKind::WaitUntil { .. }))
}

/// What a stored position does when it falls due at `now`: at a `waitUntil` step the event did
/// not come in time (the `otherwise` step follows); at a `wait` step the wait is over (its next
/// step follows); anywhere else the step runs.
pub fn due(def: &JourneyDef, at: Option<usize>, now: i64, facts: &Facts) -> Decision {
    match at.and_then(|i| def.steps.get(i).map(|s| (i, &s.kind))) {
        Some((_, StepKind::WaitUntil { otherwise, .. })) => resolve(def, def.position_of(otherwise), now, facts),
        Some((i, StepKind::Wait { .. })) => match def.next_of(i) {
            Some(next) => resolve(def, Some(next), now, facts),
            None => Decision::End("completed"),
        },
        _ => resolve(def, at, now, facts),
    }
}

/// Whether a stored position at `at` is waiting for an event (a `waitUntil` step).
pub fn waiting_for(def: &JourneyDef, at: Option<usize>) -> Option<&str> {
    match at.and_then(|i| def.steps.get(i)).map(|s| &s.kind) {
        Some(StepKind::WaitUntil { event, .. }) => Some(event),
        _ => None,
    }
}

/// Where a customer arriving at step `step` at `now` is stored, without facts about them: a
/// wait becomes its due time; any other step is due now (branches are decided when it fires).
pub fn arrive(def: &JourneyDef, step: usize, now: i64) -> Decision {
    if is_wait(def, step) {
        resolve(def, Some(step), now, &Facts::default())
    } else if step < def.steps.len() {
        Decision::Wait(Position { step, due_at: now })
    } else {
        Decision::End("completed")
    }
}

/// Where a customer waiting at `at` goes when they do `event` at `now`, when that is what the
/// step awaits and its timeout has not passed (`due_at` is the position's due time).
pub fn on_event(def: &JourneyDef, at: Option<usize>, due_at: i64, event: &str, now: i64) -> Option<Decision> {
    let Some(StepKind::WaitUntil { event: awaited, then, .. }) = at.and_then(|i| def.steps.get(i)).map(|s| &s.kind)
    else {
        return None;
    };
    if awaited != event || now > due_at {
        return None;
    }
    Some(match def.position_of(then) {
        Some(next) => arrive(def, next, now),
        None => Decision::End("completed"),
    })
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
