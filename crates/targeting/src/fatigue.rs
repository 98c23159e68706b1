//! How many messages a customer tolerates: a fatigue signal lowers their own weekly cap below
//! the global one. Messages ignored in a row beyond `after` each take one off the cap, and an
//! unsubscribe from any channel recently halves it; never below one, never above the global
//! cap. Pure: the caller counts.

/// What the cap is judged on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals {
    /// The customer's most recent messages in a row with no engagement after them.
    pub ignored_in_a_row: u32,
    /// Unsubscribes (any channel) in the last 30 days.
    pub recent_unsubscribes: u32,
}

/// Messages a customer may ignore in a row before their cap starts to drop.
pub const IGNORED_BEFORE_FATIGUE: u32 = 3;

/// The customer's weekly cap, and why when it is below `global`.
pub fn weekly_cap(global: u32, s: Signals, after: u32) -> (u32, Option<String>) {
    let mut cap = global;
    let mut why = Vec::new();
    if s.ignored_in_a_row >= after && global > 1 {
        let cut = s.ignored_in_a_row - after + 1;
        cap = global.saturating_sub(cut).max(1);
        why.push(format!("{} messages ignored in a row", s.ignored_in_a_row));
    }
    if s.recent_unsubscribes > 0 {
        cap = (cap / 2).max(1);
        why.push(format!("{} unsubscribe(s) in 30 days", s.recent_unsubscribes));
    }
    let cap = cap.clamp(1, global.max(1));
    if cap < global {
        (cap, Some(format!("fatigue: weekly cap {cap} instead of {global} ({})", why.join(", "))))
    } else {
        (cap, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_messages_and_unsubscribes_lower_the_cap_but_never_to_zero() {
        let quiet = Signals::default();
        assert_eq!(weekly_cap(5, quiet, 3), (5, None));
        // Two ignored: still tolerated.
        assert_eq!(weekly_cap(5, Signals { ignored_in_a_row: 2, ..quiet }, 3).0, 5);
        // Three ignored: one off; five: three off.
        assert_eq!(weekly_cap(5, Signals { ignored_in_a_row: 3, ..quiet }, 3).0, 4);
        let (cap, why) = weekly_cap(5, Signals { ignored_in_a_row: 5, ..quiet }, 3);
        assert_eq!(cap, 2);
        assert!(why.expect("why").contains("5 messages ignored in a row"));
        // Many ignored: down to one, not zero.
        assert_eq!(weekly_cap(5, Signals { ignored_in_a_row: 40, ..quiet }, 3).0, 1);
        // An unsubscribe halves it.
        assert_eq!(weekly_cap(6, Signals { recent_unsubscribes: 1, ..quiet }, 3).0, 3);
        assert_eq!(weekly_cap(1, Signals { ignored_in_a_row: 9, recent_unsubscribes: 2 }, 3), (1, None));
    }
}
