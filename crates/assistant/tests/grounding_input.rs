//! Property tests of the grounding check and the generator's tokenizer pieces on any input.
//! Short by default (for CI); longer with `TAILOR_FUZZ_CASES`, e.g.
//! `TAILOR_FUZZ_CASES=200000 cargo nextest run -p tailor-assistant --test grounding_input --release`.

use proptest::prelude::*;
use tailor_assistant::generate::{grounding, Facts, Ungrounded};

fn cases() -> u32 {
    std::env::var("TAILOR_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 $€.,:;/#%'\\-\u{301}\u{0}\t\n中😀]{0,120}",
        proptest::collection::vec(
            prop_oneof![
                Just("3.49"),
                Just("1,250"),
                Just("five"),
                Just("points"),
                Just("oat milk"),
                Just("$"),
                Just("."),
                Just(",")
            ],
            0..20
        )
        .prop_map(|v| v.join(" ")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Any draft is checked without a panic; each number found is a piece of the draft.
    #[test]
    fn any_draft_is_checked(draft in text(), template in text(), value in text()) {
        let facts = Facts::new().with("fact", &value).guard_names([value.clone()]);
        let _ = grounding::check(&draft, &template, &facts);
        for n in grounding::numbers(&draft) {
            prop_assert!(draft.contains(&n.text));
            prop_assert!(!n.value.is_empty());
        }
    }

    /// A template is always grounded against itself, and a number that is neither a fact nor in
    /// the template is always refused.
    #[test]
    fn the_template_passes_and_an_added_number_does_not(template in text(), extra in 0u32..100_000) {
        let facts = Facts::new().with("price", "3.49");
        if !template.trim().is_empty() {
            prop_assert_eq!(grounding::check(&template, &template, &facts), Ok(()));
        }
        let known: Vec<String> = grounding::numbers(&template).into_iter().map(|n| n.value).collect();
        let added = extra.to_string();
        if !known.contains(&added) && added != "3.49" {
            let draft = format!("{template} Only {added} left!");
            prop_assert_eq!(grounding::check(&draft, &template, &facts), Err(Ungrounded::Number { text: added }));
        }
    }
}
