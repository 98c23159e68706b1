use serde_json::json;

use super::*;

#[test]
fn builtins_parse_and_render_on_every_channel() {
    let lib = Library::builtin();
    assert_eq!(lib.messages().len(), 11);
    for (label, ctx) in probe_contexts() {
        for id in lib.messages().keys() {
            for ch in [Channel::Email, Channel::Sms, Channel::Push] {
                let r = lib.render(id, ch, &ctx).unwrap_or_else(|e| panic!("{id} {ch:?} {label}: {e}"));
                assert!(!r.text.is_empty(), "{id} {ch:?}");
            }
        }
    }
}

#[test]
fn a_message_shows_the_cart_only_when_its_template_uses_it() {
    let lib = Library::builtin();
    assert!(lib.shows("cart_reminder", "cart"), "the cart is in the body");
    assert!(lib.shows("cart_discount", "cart"));
    assert!(!lib.shows("welcome", "cart"), "a welcome goes out with an empty cart");
    assert!(lib.shows("welcome", "brand"));
    assert!(!lib.shows("no-such-template", "cart"));
}

#[test]
fn email_html_escapes_and_text_does_not() {
    let lib = Library::builtin();
    let (_, mut ctx) = probe_contexts().remove(1);
    ctx["cart"]["items"][0]["name"] = json!("<b>Fish & Chips</b>");
    let r = lib.render("cart_reminder", Channel::Email, &ctx).expect("render");
    let html = r.html.expect("html");
    assert!(html.contains("&lt;b&gt;Fish &amp; Chips&lt;&#x2f;b&gt;"), "{html}");
    assert!(r.text.contains("<b>Fish & Chips</b> (instead of Plantains, sold out): 2 x $0.98"), "{}", r.text);
    assert!(r.text.contains("Hi Sam,"));
    assert_eq!(r.subject.as_deref(), Some("Sam, your cart at Tailor is waiting"));
}

#[test]
fn a_missing_first_name_falls_back() {
    let lib = Library::builtin();
    let (_, ctx) = probe_contexts().remove(0);
    let r = lib.render("cart_reminder", Channel::Email, &ctx).expect("render");
    assert!(r.text.starts_with("Hi there,"), "{}", r.text);
}

#[test]
fn an_undefined_or_unguarded_variable_is_refused_naming_the_part() {
    let mut lib = Library::builtin();
    let bad = MessageTemplate { subject: Some("Hi {{ customer.firstName }}".into()), ..Default::default() };
    let e = lib.insert("promo", bad).expect_err("refused");
    assert_eq!(e.field, "templates.promo.subject");
    assert!(e.message.contains("default"), "{}", e.message);
    let bad = MessageTemplate { body: Some("{{ customer.nickname | upper }}".into()), ..Default::default() };
    assert_eq!(lib.insert("promo", bad).expect_err("refused").field, "templates.promo.body");
    let bad = MessageTemplate { html: Some("{% if %}".into()), ..Default::default() };
    assert_eq!(lib.insert("promo", bad).expect_err("refused").field, "templates.promo.html");
    let empty = MessageTemplate {
        sms: Some("{% if offer is defined %}{{ offer.percent }}{% endif %}".into()),
        ..Default::default()
    };
    assert!(lib.insert("promo", empty).expect_err("refused").message.contains("empty"));
    assert!(!lib.messages().contains_key("promo"), "nothing half-saved");
    let good =
        MessageTemplate { sms: Some("Hi {{ customer.firstName | default('there') }}".into()), ..Default::default() };
    lib.insert("promo", good).expect("accepted");
}

#[test]
fn sms_counts_segments_per_encoding() {
    assert_eq!(sms_segments(&"a".repeat(160)), (SmsEncoding::Gsm7, 160, 1));
    assert_eq!(sms_segments(&"a".repeat(161)), (SmsEncoding::Gsm7, 161, 2));
    assert_eq!(sms_segments(&"€".repeat(80)), (SmsEncoding::Gsm7, 160, 1));
    assert_eq!(sms_segments(&"ł".repeat(70)), (SmsEncoding::Ucs2, 70, 1));
    assert_eq!(sms_segments(&"ł".repeat(71)), (SmsEncoding::Ucs2, 71, 2));
    assert_eq!(sms_segments(&"😀".repeat(35)).2, 1);
    let long = "word ".repeat(200);
    let (text, enc, n) = fit_sms(&long, 3);
    assert_eq!(enc, SmsEncoding::Gsm7);
    assert!(n <= 3 && text.ends_with("...") && text.len() <= 3 * 153);
}

#[test]
fn the_cart_messages_show_the_points_the_order_would_earn_the_balance_and_the_tier() {
    let lib = Library::builtin();
    let (_, mut ctx) = probe_contexts().remove(1);
    for id in ["cart_reminder", "cart_discount"] {
        let r = lib.render(id, Channel::Email, &ctx).expect("render");
        assert!(
            r.text.contains("This order would earn you 2 points. You have 120 points to spend as a Gold member."),
            "{id}: {}",
            r.text
        );
        assert!(r.html.expect("html").contains("This order would earn you 2 points."), "{id}");
    }
    // Nothing to earn and nothing to spend: no sentence about points.
    ctx["points"] = serde_json::json!({"earn": 0, "balance": 0});
    let r = lib.render("cart_reminder", Channel::Email, &ctx).expect("render");
    assert!(!r.text.contains("points"), "{}", r.text);
}

#[test]
fn the_loyalty_and_browse_messages_say_what_their_context_holds() {
    let lib = Library::builtin();
    let (_, full) = probe_contexts().remove(1);
    let text = |id: &str| lib.render(id, Channel::Email, &full).expect("render").text;
    assert!(text("points_expiring").contains("120 points expire by 2026-12-31"));
    assert!(text("tier_at_risk").contains("Your Gold status is yours until 2027-01-31. Spend $150.00 more or earn 300 more points by then to keep it."), "{}", text("tier_at_risk"));
    assert!(text("birthday").contains("We have added 100 points to your account as a gift."));
    assert!(text("browse_reminder").contains("- Pears: 1 x $3.00"), "{}", text("browse_reminder"));
    assert!(text("replenish").contains("- Coffee (every 7 days): $4.50"), "{}", text("replenish"));
    assert!(text("back_in_stock").contains("- Soup: 1 x $2.50"), "{}", text("back_in_stock"));
    assert!(text("price_drop").contains("- Pears: $2.50 (was $3.00)"), "{}", text("price_drop"));
    assert!(lib.shows("replenish", "due") && !lib.shows("win_back", "due") && !lib.shows("win_back", "cart"));
    // What each message is about is what its send is skipped without.
    assert!(lib.shows("points_expiring", "expiring") && lib.shows("tier_at_risk", "tierRisk"));
    assert!(lib.shows("browse_reminder", "viewed") && !lib.shows("browse_reminder", "cart"));
    for id in ["birthday", "points_expiring", "tier_at_risk"] {
        assert!(!lib.shows(id, "cart"), "{id} goes out with an empty cart");
    }
}
