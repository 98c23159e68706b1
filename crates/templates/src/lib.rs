//! One brand voice: one template library (minijinja) for every message Tailor writes — journeys
//! now, the assistant later. Brand snippets, product cards, offer and points blocks live in one
//! place (`brand`) and a message is rendered per channel: e-mail HTML and text, SMS within its
//! GSM-7/UCS-2 segment limits, push title and body, chat, in-store note.
//!
//! A template is checked before it is saved: it must parse, and every variable it prints must
//! be one the render context always holds, or be guarded (`| default(...)`, `{% if %}`), so no
//! customer ever gets "Hi ,".

mod builtin;
mod context;
mod sms;

use std::collections::BTreeMap;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use context::{probe_contexts, VARIABLES};
pub use sms::{fit_sms, sms_segments, SmsEncoding};

/// The channels a message is rendered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// E-mail: subject, HTML and text parts.
    Email,
    /// SMS: one text within the segment limit.
    Sms,
    /// Push: title and body.
    Push,
    /// On-site / in-app message.
    Onsite,
    /// A message into the customer's assistant conversation.
    Chat,
    /// A note the store associate's view shows.
    Store,
}

impl Channel {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
            Channel::Onsite => "onsite",
            Channel::Chat => "chat",
            Channel::Store => "store",
        }
    }

    /// The parts a message on this channel has, in order.
    pub fn parts(self) -> &'static [Part] {
        match self {
            Channel::Email => &[Part::Subject, Part::Html, Part::Text],
            Channel::Sms => &[Part::Sms],
            Channel::Push => &[Part::Title, Part::Body],
            Channel::Onsite | Channel::Chat | Channel::Store => &[Part::Body],
        }
    }
}

/// A part of a message template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Part {
    /// E-mail subject.
    Subject,
    /// E-mail HTML body (auto-escaped).
    Html,
    /// E-mail plain-text body.
    Text,
    /// SMS text.
    Sms,
    /// Push title.
    Title,
    /// Push, on-site, chat or in-store body.
    Body,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Subject => "subject",
            Part::Html => "html",
            Part::Text => "text",
            Part::Sms => "sms",
            Part::Title => "title",
            Part::Body => "body",
        }
    }
}

/// A message template: its source per part. Parts a channel does not use may be absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageTemplate {
    /// E-mail subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// E-mail HTML body; may `{% import "brand.html" as brand %}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// E-mail text body; may `{% import "brand.txt" as brand %}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// SMS text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sms: Option<String>,
    /// Push title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Push, on-site, chat or in-store body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl MessageTemplate {
    fn part(&self, part: Part) -> Option<&str> {
        match part {
            Part::Subject => self.subject.as_deref(),
            Part::Html => self.html.as_deref(),
            Part::Text => self.text.as_deref(),
            Part::Sms => self.sms.as_deref(),
            Part::Title => self.title.as_deref(),
            Part::Body => self.body.as_deref(),
        }
    }
}

/// A message rendered for one channel.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rendered {
    /// The channel.
    pub channel: String,
    /// E-mail subject or push title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// E-mail HTML.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// The text: e-mail text part, SMS, push/on-site/chat/in-store body.
    pub text: String,
    /// SMS segments and encoding, for SMS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_segments: Option<u32>,
    /// `gsm7` or `ucs2`, for SMS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_encoding: Option<SmsEncoding>,
}

/// What is wrong with a template, naming the part (`field`) at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TemplateError {
    /// The field path of the part, e.g. `templates.reminder.html`.
    pub field: String,
    /// Why.
    pub message: String,
}

/// The most SMS segments a message may take (longer texts are shortened at a word).
pub const MAX_SMS_SEGMENTS: u32 = 3;
/// The longest template source accepted, in bytes.
pub const MAX_SOURCE_BYTES: usize = 64 * 1024;

/// The template library: brand snippets plus named message templates.
pub struct Library {
    env: Environment<'static>,
    messages: BTreeMap<String, MessageTemplate>,
    /// The top-level variables each message uses, read once when it is added.
    variables: BTreeMap<String, std::collections::BTreeSet<String>>,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library").field("messages", &self.messages.keys().collect::<Vec<_>>()).finish()
    }
}

fn new_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    env.add_filter("money", context::money);
    for (name, source) in builtin::SNIPPETS {
        // The built-in snippets are tested to parse; a failure here is a bug caught by the tests.
        if let Err(e) = env.add_template(name, source) {
            debug_assert!(false, "built-in snippet {name} does not parse: {e}");
        }
    }
    env
}

impl Library {
    /// The brand snippets and the built-in message templates (those the built-in journeys use).
    pub fn builtin() -> Library {
        let mut lib = Library { env: new_env(), messages: BTreeMap::new(), variables: BTreeMap::new() };
        for (id, t) in builtin::messages() {
            // Built-ins are checked by the tests; never refused at run time.
            let _ = lib.insert(&id, t);
        }
        lib
    }

    /// The message templates by id.
    pub fn messages(&self) -> &BTreeMap<String, MessageTemplate> {
        &self.messages
    }

    /// Checks `template` and adds it as `id` (replacing one of that id). Refused, naming the
    /// part: a source that does not parse, is too long, or prints a variable the context may
    /// not hold without a guard.
    pub fn insert(&mut self, id: &str, template: MessageTemplate) -> Result<(), TemplateError> {
        check(&self.env, id, &template)?;
        for part in ALL_PARTS {
            if let Some(src) = template.part(part) {
                let name = source_name(id, part);
                self.env.add_template_owned(name, src.to_string()).map_err(|e| TemplateError {
                    field: format!("templates.{id}.{}", part.name()),
                    message: e.to_string(),
                })?;
            }
        }
        let used = ALL_PARTS
            .iter()
            .filter_map(|part| {
                self.env.get_template(&source_name(id, *part)).ok().filter(|_| template.part(*part).is_some())
            })
            .flat_map(|t| t.undeclared_variables(false))
            .collect();
        self.variables.insert(id.to_string(), used);
        self.messages.insert(id.to_string(), template);
        Ok(())
    }

    /// Renders message `id` for `channel` with `ctx` (see [`VARIABLES`]).
    pub fn render(&self, id: &str, channel: Channel, ctx: &Value) -> Result<Rendered, TemplateError> {
        let t = self
            .messages
            .get(id)
            .ok_or_else(|| TemplateError { field: "template".into(), message: format!("no template '{id}'") })?;
        let mut out = Rendered { channel: channel.as_str().to_string(), ..Rendered::default() };
        for &part in channel.parts() {
            if t.part(part).is_none() {
                return Err(TemplateError {
                    field: format!("templates.{id}.{}", part.name()),
                    message: format!("the template has no {} part for the {} channel", part.name(), channel.as_str()),
                });
            }
            let text = self.render_part(id, part, ctx)?;
            match part {
                Part::Subject | Part::Title => out.subject = Some(one_line(&text)),
                Part::Html => out.html = Some(text),
                Part::Text | Part::Body => out.text = text.trim().to_string(),
                Part::Sms => {
                    let (text, encoding, segments) = fit_sms(&one_line(&text), MAX_SMS_SEGMENTS);
                    out.text = text;
                    out.sms_encoding = Some(encoding);
                    out.sms_segments = Some(segments);
                }
            }
        }
        Ok(out)
    }

    /// Whether any part of message `id` uses the top-level variable `name` (e.g. `cart`): a
    /// message that shows the cart is not sent for an empty one, a welcome message is.
    pub fn shows(&self, id: &str, name: &str) -> bool {
        self.variables.get(id).is_some_and(|used| used.contains(name))
    }

    fn render_part(&self, id: &str, part: Part, ctx: &Value) -> Result<String, TemplateError> {
        let field = || format!("templates.{id}.{}", part.name());
        let tmpl = self
            .env
            .get_template(&source_name(id, part))
            .map_err(|e| TemplateError { field: field(), message: e.to_string() })?;
        tmpl.render(ctx).map_err(|e| TemplateError { field: field(), message: describe(&e) })
    }
}

const ALL_PARTS: [Part; 6] = [Part::Subject, Part::Html, Part::Text, Part::Sms, Part::Title, Part::Body];

fn source_name(id: &str, part: Part) -> String {
    match part {
        Part::Html => format!("{id}/html.html"),
        p => format!("{id}/{}.txt", p.name()),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn describe(e: &minijinja::Error) -> String {
    let mut s = e.to_string();
    if let Some(d) = e.detail() {
        if !s.contains(d) {
            s = format!("{s}: {d}");
        }
    }
    s
}

/// Checks a template without adding it: each part parses and renders under strict undefined
/// behaviour with the sparsest context a customer can have (only the variables always present)
/// and with a full one, and prints nothing blank where a variable stood.
pub fn check(env: &Environment<'static>, id: &str, t: &MessageTemplate) -> Result<(), TemplateError> {
    if id.is_empty() || id.len() > 128 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(TemplateError {
            field: "id".into(),
            message: "a template id is 1 to 128 letters, digits, '_' or '-'".into(),
        });
    }
    let mut env = env.clone();
    let mut any = false;
    for part in ALL_PARTS {
        let Some(src) = t.part(part) else { continue };
        any = true;
        let field = format!("templates.{id}.{}", part.name());
        if src.len() > MAX_SOURCE_BYTES {
            return Err(TemplateError { field, message: format!("longer than {MAX_SOURCE_BYTES} bytes") });
        }
        let name = source_name(id, part);
        env.add_template_owned(name.clone(), src.to_string())
            .map_err(|e| TemplateError { field: field.clone(), message: describe(&e) })?;
        let tmpl =
            env.get_template(&name).map_err(|e| TemplateError { field: field.clone(), message: describe(&e) })?;
        for (label, ctx) in probe_contexts() {
            let out = tmpl.render(&ctx).map_err(|e| TemplateError {
                field: field.clone(),
                message: format!(
                    "{} (with {label}): print only variables every customer has, or guard it with \
                     `| default(\"…\")` or `{{% if … %}}`",
                    describe(&e)
                ),
            })?;
            if out.trim().is_empty() {
                return Err(TemplateError { field: field.clone(), message: format!("renders empty (with {label})") });
            }
        }
    }
    if !any {
        return Err(TemplateError { field: format!("templates.{id}"), message: "the template has no part".into() });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
