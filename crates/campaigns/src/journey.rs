//! A journey as versioned data: what starts it, its steps, what ends it, and its checks. Saving
//! an edit makes a new version; customers already inside finish on the version they entered.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use tailor_core::FieldError;

/// Events a journey can start from (Segment e-commerce events, the loyalty feed, stock and
/// price events).
pub const TRIGGER_EVENTS: &[&str] = &[
    "Product Added",
    "Product Removed",
    "Product Viewed",
    "Checkout Started",
    "Order Completed",
    "Signed Up",
    "points_expiring_soon",
    "tier_at_risk",
    "birthday",
    "back_in_stock",
    "price_drop",
    SEGMENT_ENTERED,
    SEGMENT_EXITED,
];

/// The trigger of a customer entering a segment (`trigger.segment` names it).
pub const SEGMENT_ENTERED: &str = "Segment Entered";
/// The trigger of a customer leaving a segment (`trigger.segment` names it).
pub const SEGMENT_EXITED: &str = "Segment Exited";

/// The most points one grant step may credit.
pub const MAX_GRANT_POINTS: i64 = 100_000;
/// Traits a journey may not set: consent changes only through the customer's own choices.
pub const RESERVED_TRAITS: &[&str] = &["consent"];

/// The longest wait a step may hold, in seconds (a year).
pub const MAX_WAIT_SECONDS: i64 = 366 * 86_400;
/// The most steps a journey may have.
pub const MAX_STEPS: usize = 64;

/// What starts a journey.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Trigger {
    /// The event name (one of [`TRIGGER_EVENTS`]).
    pub event: String,
    /// The segment, for `Segment Entered` and `Segment Exited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
}

/// Whether a customer may enter again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reentry {
    /// Again once their previous entry ended.
    #[default]
    AfterExit,
    /// Only once ever.
    Never,
}

/// A channel a send step uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SendChannel {
    /// E-mail over SMTP (consent `marketing_email`).
    Email,
    /// SMS through the SMS webhook (consent `marketing_sms`).
    Sms,
    /// Push through the push webhook (consent `marketing_push`).
    Push,
    /// An on-site/in-app message (`GET /v1/messages`; consent `personalization`).
    Onsite,
}

impl SendChannel {
    /// The consent purpose a send on this channel needs.
    pub fn purpose(self) -> tailor_core::Purpose {
        use tailor_core::Purpose;
        match self {
            SendChannel::Email => Purpose::MarketingEmail,
            SendChannel::Sms => Purpose::MarketingSms,
            SendChannel::Push => Purpose::MarketingPush,
            SendChannel::Onsite => Purpose::Personalization,
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SendChannel::Email => "email",
            SendChannel::Sms => "sms",
            SendChannel::Push => "push",
            SendChannel::Onsite => "onsite",
        }
    }
}

/// What a send step adds to the message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SendOptions {
    /// A discount on the cart, in percent (1–90), priced by pricing under each item's margin floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discount_percent: Option<u32>,
    /// How many similar in-stock items to suggest (0–10).
    #[serde(default)]
    pub similar: u32,
    /// Channels to choose from per customer (consent, reachability and past engagement decide;
    /// see `tailor_targeting::channel`); empty: always the step's `channel`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<SendChannel>,
}

/// A condition a branch step tests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Condition {
    /// The cart holds at least one line.
    CartNotEmpty,
    /// A trait equals a value.
    #[serde(rename_all = "camelCase")]
    TraitEquals {
        /// The trait's name.
        name: String,
        /// The value.
        value: serde_json::Value,
    },
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum StepKind {
    /// Wait a duration.
    #[serde(rename_all = "camelCase")]
    Wait {
        /// Seconds (1 to a year).
        seconds: i64,
    },
    /// Send a message.
    #[serde(rename_all = "camelCase")]
    Send {
        /// The channel.
        channel: SendChannel,
        /// The message template's id.
        template: String,
        /// Discount and suggestions.
        #[serde(default)]
        options: SendOptions,
    },
    /// Go to `then` when the condition holds, else to `otherwise`.
    #[serde(rename_all = "camelCase")]
    Branch {
        /// The condition.
        condition: Condition,
        /// The step when it holds.
        then: String,
        /// The step when it does not.
        otherwise: String,
    },
    /// A random split: `percent` of customers go to `then`, the rest to `otherwise`.
    #[serde(rename_all = "camelCase")]
    Split {
        /// Share to `then` (1–99).
        percent: u32,
        /// The step for that share.
        then: String,
        /// The step for the rest.
        otherwise: String,
    },
    /// Wait until the customer does `event` (go to `then`) or `seconds` pass without it (go
    /// to `otherwise`).
    #[serde(rename_all = "camelCase")]
    WaitUntil {
        /// The event awaited (one of [`TRIGGER_EVENTS`]).
        event: String,
        /// The timeout in seconds (1 to a year).
        seconds: i64,
        /// The step when the event arrives in time.
        then: String,
        /// The step when the timeout passes first.
        otherwise: String,
    },
    /// Set a trait on the customer's profile (segments and branches see it at once).
    #[serde(rename_all = "camelCase")]
    UpdateTrait {
        /// The trait's name.
        name: String,
        /// Its new value: a string (at most 1,024 bytes), number, boolean or null.
        value: serde_json::Value,
    },
    /// Credit loyalty points, once per journey, version, customer, entry and step.
    #[serde(rename_all = "camelCase")]
    GrantPoints {
        /// Points (1 to [`MAX_GRANT_POINTS`]).
        points: i64,
        /// Why, as the customer's points history shows it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Issue a personal offer through pricing, within its caps per offer and per customer
    /// (personalization consent needed), once per journey, version, customer, entry and step.
    #[serde(rename_all = "camelCase")]
    IssueOffer {
        /// Percent off (1–90).
        percent_off: u32,
        /// Days it stays valid (1–90).
        valid_days: u32,
    },
    /// Call a webhook (HMAC-signed, retried, dead-lettered).
    #[serde(rename_all = "camelCase")]
    Webhook {
        /// An http(s) URL.
        url: String,
    },
    /// Leave the journey.
    Exit,
}

/// One step: an id other steps can name, what it does and the step after it (the next in the
/// list when absent). (No `deny_unknown_fields` here: serde cannot combine it with the
/// flattened kind; each kind refuses unknown fields itself.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Unique within the journey.
    pub id: String,
    /// What it does.
    #[serde(flatten)]
    pub kind: StepKind,
    /// The step after it; default the next in the list (none after the last: the journey ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A journey definition, as a marketer writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JourneyDef {
    /// A name people read.
    pub name: String,
    /// What starts it.
    pub trigger: Trigger,
    /// The steps, run from the first.
    pub steps: Vec<Step>,
    /// Events that end a customer's journey at once (the goal), e.g. `Order Completed`.
    #[serde(default)]
    pub exit_on: Vec<String>,
    /// Events that restart a customer's journey from the first step (e.g. a cart change).
    #[serde(default)]
    pub restart_on: Vec<String>,
    /// Whether a customer may enter again.
    #[serde(default)]
    pub reentry: Reentry,
    /// The share of entrants held out (0–50 percent; default [`DEFAULT_HOLDOUT_PERCENT`]): they
    /// go through the journey without being sent anything, so the report can say what it caused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holdout: Option<f64>,
    /// The event that counts as a conversion in the report; default the first `exitOn` event,
    /// else `Order Completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// How long after entering a goal event counts (1 to 2,160 hours; default 168, a week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution_hours: Option<u32>,
    /// Send each message at the customer's best hour, waiting at most this many hours after
    /// the step falls due (1–168); none: send when due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_hour_within_hours: Option<u32>,
    /// Send only to those the messages will change, by an uplift model's prediction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targeting: Option<Targeting>,
}

/// Whom a journey sends to by predicted uplift (a model trained from a journey's own holdout,
/// `POST /v1/uplift-models`). One rule: `topShare`, or `valuePerConversion` with `costPerMessage`.
/// Entrants in the holdout and in the exploration share are drawn at random first, so the next
/// model learns from a fair sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Targeting {
    /// The uplift model's name.
    pub model: String,
    /// Send to this share (0–1] of customers with the highest predicted uplift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_share: Option<f64>,
    /// Or send where predicted uplift × this value (e.g. a conversion's margin) …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_per_conversion: Option<f64>,
    /// … exceeds the cost of a message (both in major units).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_message: Option<f64>,
    /// The share of entrants (0–50 percent; default 10) sent whatever their uplift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explore_percent: Option<f64>,
}

/// The exploration share when a journey's targeting sets none, in percent.
pub const DEFAULT_EXPLORE_PERCENT: f64 = 10.0;

impl Targeting {
    /// The exploration share in percent.
    pub fn explore_percent(&self) -> f64 {
        self.explore_percent.unwrap_or(DEFAULT_EXPLORE_PERCENT)
    }

    /// Checks the numbers, naming the field.
    fn check(&self) -> Result<(), FieldError> {
        if !is_id(&self.model) {
            return Err(FieldError::invalid("targeting.model", "a model name: letters, digits, '-' or '_'"));
        }
        let in_range = |v: f64, lo: f64, hi: f64| v.is_finite() && v >= lo && v <= hi;
        match (self.top_share, self.value_per_conversion, self.cost_per_message) {
            (Some(share), None, None) => {
                if !(in_range(share, 0.0, 1.0) && share > 0.0) {
                    return Err(FieldError::invalid("targeting.topShare", "a share above 0 and at most 1"));
                }
            }
            (None, Some(value), Some(cost)) => {
                if !(in_range(value, 0.0, 1e6) && value > 0.0) {
                    return Err(FieldError::invalid(
                        "targeting.valuePerConversion",
                        "a value above 0 and at most 1,000,000",
                    ));
                }
                if !in_range(cost, 0.0, 1e6) {
                    return Err(FieldError::invalid("targeting.costPerMessage", "a cost from 0 to 1,000,000"));
                }
            }
            _ => {
                return Err(FieldError::invalid(
                    "targeting",
                    "one rule: topShare, or valuePerConversion with costPerMessage",
                ))
            }
        }
        if self.explore_percent.is_some_and(|e| !in_range(e, 0.0, 50.0)) {
            return Err(FieldError::invalid("targeting.explorePercent", "an exploration share is 0 to 50 percent"));
        }
        Ok(())
    }
}

/// The holdout when a journey sets none, in percent.
pub const DEFAULT_HOLDOUT_PERCENT: f64 = 10.0;
/// The attribution window when a journey sets none, in hours.
pub const DEFAULT_ATTRIBUTION_HOURS: u32 = 168;

/// Where a step leads: the steps it may go to next.
fn successors(steps: &[Step], i: usize) -> Vec<String> {
    let s = &steps[i];
    let default_next = || s.next.clone().or_else(|| steps.get(i + 1).map(|n| n.id.clone()));
    match &s.kind {
        StepKind::Branch { then, otherwise, .. }
        | StepKind::Split { then, otherwise, .. }
        | StepKind::WaitUntil { then, otherwise, .. } => {
            vec![then.clone(), otherwise.clone()]
        }
        StepKind::Exit => Vec::new(),
        _ => default_next().into_iter().collect(),
    }
}

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl JourneyDef {
    /// Checks the definition; `templates` are the ids of the message templates that exist.
    /// Refused, naming the field: an unknown trigger event, no steps or too many, a duplicate
    /// or unknown step id, a cycle, a wait or percentage out of range, an unknown template, a
    /// webhook URL that is not http(s).
    pub fn check(&self, templates: &BTreeSet<String>) -> Result<(), FieldError> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(FieldError::invalid("name", "a name is 1 to 200 characters"));
        }
        if !TRIGGER_EVENTS.contains(&self.trigger.event.as_str()) {
            return Err(FieldError::invalid(
                "trigger.event",
                format!("unknown trigger event '{}'; one of: {}", self.trigger.event, TRIGGER_EVENTS.join(", ")),
            ));
        }
        let by_segment = [SEGMENT_ENTERED, SEGMENT_EXITED].contains(&self.trigger.event.as_str());
        match (&self.trigger.segment, by_segment) {
            (None, true) => {
                return Err(FieldError::invalid("trigger.segment", "a segment trigger names its segment"));
            }
            (Some(_), false) => {
                return Err(FieldError::invalid(
                    "trigger.segment",
                    "only Segment Entered and Segment Exited triggers name a segment",
                ));
            }
            (Some(id), true) if !is_id(id) => {
                return Err(FieldError::invalid("trigger.segment", "a segment id: letters, digits, '-' or '_'"));
            }
            _ => {}
        }
        self.check_measurement()?;
        for (field, list) in [("exitOn", &self.exit_on), ("restartOn", &self.restart_on)] {
            for (i, e) in list.iter().enumerate() {
                if !TRIGGER_EVENTS.contains(&e.as_str()) {
                    return Err(FieldError::invalid(format!("{field}[{i}]"), format!("unknown event '{e}'")));
                }
            }
        }
        if self.steps.is_empty() || self.steps.len() > MAX_STEPS {
            return Err(FieldError::invalid("steps", format!("a journey has 1 to {MAX_STEPS} steps")));
        }
        let mut index = BTreeMap::new();
        for (i, s) in self.steps.iter().enumerate() {
            if !is_id(&s.id) {
                return Err(FieldError::invalid(
                    format!("steps[{i}].id"),
                    "a step id is 1 to 128 letters, digits, '_' or '-'",
                ));
            }
            if index.insert(s.id.as_str(), i).is_some() {
                return Err(FieldError::invalid(format!("steps[{i}].id"), format!("duplicate step id '{}'", s.id)));
            }
        }
        for (i, s) in self.steps.iter().enumerate() {
            self.check_step(i, s, templates)?;
            let targets: Vec<(&str, &String)> = match &s.kind {
                StepKind::Branch { then, otherwise, .. }
                | StepKind::Split { then, otherwise, .. }
                | StepKind::WaitUntil { then, otherwise, .. } => {
                    vec![("then", then), ("otherwise", otherwise)]
                }
                _ => s.next.iter().map(|n| ("next", n)).collect(),
            };
            for (field, target) in targets {
                if !index.contains_key(target.as_str()) {
                    return Err(FieldError::invalid(format!("steps[{i}].{field}"), format!("no step '{target}'")));
                }
            }
        }
        self.check_acyclic(&index)
    }

    fn check_step(&self, i: usize, s: &Step, templates: &BTreeSet<String>) -> Result<(), FieldError> {
        let f = |name: &str| format!("steps[{i}].{name}");
        match &s.kind {
            StepKind::Wait { seconds } if !(1..=MAX_WAIT_SECONDS).contains(seconds) => {
                Err(FieldError::invalid(f("seconds"), format!("a wait is 1 to {MAX_WAIT_SECONDS} seconds")))
            }
            StepKind::Send { template, options, .. } => {
                if !templates.contains(template) {
                    return Err(FieldError::invalid(f("template"), format!("no template '{template}'")));
                }
                if options.discount_percent.is_some_and(|p| !(1..=90).contains(&p)) {
                    return Err(FieldError::invalid(f("options.discountPercent"), "a discount is 1 to 90 percent"));
                }
                if options.similar > 10 {
                    return Err(FieldError::invalid(f("options.similar"), "at most 10 similar items"));
                }
                for (k, c) in options.channels.iter().enumerate() {
                    if options.channels[..k].contains(c) {
                        return Err(FieldError::invalid(
                            f(&format!("options.channels[{k}]")),
                            format!("'{}' is listed twice", c.as_str()),
                        ));
                    }
                }
                Ok(())
            }
            StepKind::Split { percent, .. } if !(1..=99).contains(percent) => {
                Err(FieldError::invalid(f("percent"), "a split sends 1 to 99 percent one way"))
            }
            StepKind::Webhook { url } => check_url(url).map_err(|m| FieldError::invalid(f("url"), m)),
            StepKind::WaitUntil { event, seconds, .. } => {
                if !TRIGGER_EVENTS.contains(&event.as_str()) {
                    return Err(FieldError::invalid(
                        f("event"),
                        format!("unknown event '{event}'; one of: {}", TRIGGER_EVENTS.join(", ")),
                    ));
                }
                if !(1..=MAX_WAIT_SECONDS).contains(seconds) {
                    return Err(FieldError::invalid(
                        f("seconds"),
                        format!("a timeout is 1 to {MAX_WAIT_SECONDS} seconds"),
                    ));
                }
                Ok(())
            }
            StepKind::UpdateTrait { name, value } => {
                let named = !name.trim().is_empty()
                    && name.len() <= 128
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                if !named {
                    return Err(FieldError::invalid(
                        f("name"),
                        "a trait name is 1 to 128 letters, digits, '_', '-' or '.'",
                    ));
                }
                if RESERVED_TRAITS.contains(&name.as_str()) {
                    return Err(FieldError::invalid(
                        f("name"),
                        format!("'{name}' cannot be set by a journey: consent changes only by the customer's choice"),
                    ));
                }
                match value {
                    serde_json::Value::String(v) if v.len() > 1024 => {
                        Err(FieldError::invalid(f("value"), "a trait value is at most 1,024 bytes"))
                    }
                    serde_json::Value::Array(_) | serde_json::Value::Object(_) => {
                        Err(FieldError::invalid(f("value"), "a trait value is a string, number, boolean or null"))
                    }
                    _ => Ok(()),
                }
            }
            StepKind::IssueOffer { percent_off, valid_days } => {
                if !(1..=90).contains(percent_off) {
                    return Err(FieldError::invalid(f("percentOff"), "an offer is 1 to 90 percent off"));
                }
                if !(1..=90).contains(valid_days) {
                    return Err(FieldError::invalid(f("validDays"), "an offer is valid 1 to 90 days"));
                }
                Ok(())
            }
            StepKind::GrantPoints { points, reason } => {
                if !(1..=MAX_GRANT_POINTS).contains(points) {
                    return Err(FieldError::invalid(f("points"), format!("a grant is 1 to {MAX_GRANT_POINTS} points")));
                }
                if reason.as_ref().is_some_and(|r| r.trim().is_empty() || r.len() > 200) {
                    return Err(FieldError::invalid(f("reason"), "a reason is 1 to 200 characters"));
                }
                Ok(())
            }
            StepKind::Branch { condition: Condition::TraitEquals { name, .. }, .. } if name.is_empty() => {
                Err(FieldError::invalid(f("condition.name"), "a trait name is required"))
            }
            _ => Ok(()),
        }
    }

    /// A journey's steps must not loop: a customer would be messaged forever.
    fn check_acyclic(&self, index: &BTreeMap<&str, usize>) -> Result<(), FieldError> {
        // 0 unvisited, 1 on the path, 2 done.
        let mut state = vec![0u8; self.steps.len()];
        fn visit(
            def: &JourneyDef,
            index: &BTreeMap<&str, usize>,
            state: &mut [u8],
            i: usize,
        ) -> Result<(), FieldError> {
            state[i] = 1;
            for next in successors(&def.steps, i) {
                let Some(&j) = index.get(next.as_str()) else { continue };
                match state[j] {
                    1 => {
                        return Err(FieldError::invalid(
                            format!("steps[{i}]"),
                            format!("step '{}' leads back to step '{}': a journey cannot loop", def.steps[i].id, next),
                        ))
                    }
                    0 => visit(def, index, state, j)?,
                    _ => {}
                }
            }
            state[i] = 2;
            Ok(())
        }
        for i in 0..self.steps.len() {
            if state[i] == 0 {
                visit(self, index, &mut state, i)?;
            }
        }
        Ok(())
    }

    /// The holdout share in percent (0–50).
    pub fn holdout_percent(&self) -> f64 {
        self.holdout.unwrap_or(DEFAULT_HOLDOUT_PERCENT)
    }

    /// The event that counts as a conversion.
    pub fn goal_event(&self) -> &str {
        self.goal.as_deref().or(self.exit_on.first().map(String::as_str)).unwrap_or("Order Completed")
    }

    /// The attribution window in hours.
    pub fn attribution_window_hours(&self) -> u32 {
        self.attribution_hours.unwrap_or(DEFAULT_ATTRIBUTION_HOURS)
    }

    /// Checks the measurement and timing fields, naming the field.
    fn check_measurement(&self) -> Result<(), FieldError> {
        if let Some(h) = self.holdout {
            if !h.is_finite() || !(0.0..=50.0).contains(&h) {
                return Err(FieldError::invalid("holdout", "a holdout is 0 to 50 percent of entrants"));
            }
        }
        if let Some(g) = &self.goal {
            if !TRIGGER_EVENTS.contains(&g.as_str()) {
                return Err(FieldError::invalid("goal", format!("unknown event '{g}'")));
            }
        }
        if self.attribution_hours.is_some_and(|h| !(1..=2160).contains(&h)) {
            return Err(FieldError::invalid("attributionHours", "an attribution window is 1 to 2160 hours"));
        }
        if self.best_hour_within_hours.is_some_and(|h| !(1..=168).contains(&h)) {
            return Err(FieldError::invalid("bestHourWithinHours", "a send waits 1 to 168 hours for the best hour"));
        }
        if let Some(t) = &self.targeting {
            t.check()?;
        }
        Ok(())
    }

    /// The index of step `id`.
    pub fn position_of(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// The step after step `i` on its default path (None: the journey ends).
    pub fn next_of(&self, i: usize) -> Option<usize> {
        successors(&self.steps, i).first().and_then(|n| self.position_of(n))
    }
}

/// An http(s) URL with a host, or why not.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| "a webhook URL must start with http:// or https://".to_string())?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.len() > 2048 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a webhook URL needs a host and no spaces (at most 2048 characters)".into());
    }
    Ok(())
}

/// Global guardrails on every send: frequency caps across channels and journeys, and quiet
/// hours in the customer's time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Guardrails {
    /// The most messages a customer gets per day (1–100).
    pub per_day: u32,
    /// The most messages a customer gets per week (1–500).
    pub per_week: u32,
    /// Quiet hours start (local hour, 0–23): no message from then…
    pub quiet_from_hour: u32,
    /// …until this local hour (0–23); equal to the start: no quiet hours.
    pub quiet_until_hour: u32,
    /// The zone when the customer has none (IANA name).
    pub default_time_zone: String,
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            per_day: 2,
            per_week: 5,
            quiet_from_hour: 21,
            quiet_until_hour: 8,
            default_time_zone: "UTC".into(),
        }
    }
}

impl Guardrails {
    /// Checks ranges, naming the field (a cap of 0 would silence every journey: refused).
    pub fn check(&self) -> Result<(), FieldError> {
        if !(1..=100).contains(&self.per_day) {
            return Err(FieldError::invalid("perDay", "a daily cap is 1 to 100 messages"));
        }
        if !(1..=500).contains(&self.per_week) {
            return Err(FieldError::invalid("perWeek", "a weekly cap is 1 to 500 messages"));
        }
        if self.quiet_from_hour > 23 {
            return Err(FieldError::invalid("quietFromHour", "an hour is 0 to 23"));
        }
        if self.quiet_until_hour > 23 {
            return Err(FieldError::invalid("quietUntilHour", "an hour is 0 to 23"));
        }
        if self.default_time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(FieldError::invalid("defaultTimeZone", "an IANA time zone such as Europe/Paris"));
        }
        Ok(())
    }
}
