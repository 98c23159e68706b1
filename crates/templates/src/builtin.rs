//! The brand snippets every message imports, and the built-in journeys' messages.

use crate::MessageTemplate;

/// Shared snippets: `brand.html` (product cards, offer and points blocks, header, footer) and
/// `brand.txt` (the same for text).
pub(crate) const SNIPPETS: &[(&str, &str)] = &[
    (
        "brand.html",
        r#"{% macro header() %}<div style="font-family:sans-serif"><h1 style="font-size:20px">{{ brand.name }}</h1>{% endmacro %}
{% macro greeting() %}<p>Hi {{ customer.firstName | default("there") }},</p>{% endmacro %}
{% macro product_card(item) %}<tr><td>{{ item.name }}{% if item.replaced is defined %} <small>(instead of {{ item.replaced.name }}, sold out)</small>{% endif %}</td><td>{{ item.quantity | default(1) }} &times;</td><td>{{ item.priceCents | money(item.currency) }}</td></tr>
{% endmacro %}
{% macro cards(items) %}<table>{% for item in items %}{{ product_card(item) }}{% endfor %}</table>{% endmacro %}
{% macro offer_block(offer) %}<div><p><strong>{{ offer.percent }}% off for you</strong>{% if offer.endsAt is defined %} until {{ offer.endsAt }}{% endif %}:</p><table>{% for item in offer.items %}<tr><td>{{ item.name }}</td><td><s>{{ item.wasCents | money(item.currency) }}</s> {{ item.priceCents | money(item.currency) }}</td></tr>{% endfor %}</table></div>{% endmacro %}
{% macro points_block(points) %}<p>{% if points.earn %}This order would earn you {{ points.earn }} points.{% endif %}{% if points.balance %} You have {{ points.balance }} points to spend{% if points.tier is defined %} as a {{ points.tier }} member{% endif %}.{% endif %}</p>{% endmacro %}
{% macro footer() %}<p><a href="{{ brand.url }}">{{ brand.name }}</a> | <a href="{{ unsubscribeUrl }}">Unsubscribe</a></p></div>{% endmacro %}"#,
    ),
    (
        "brand.txt",
        r#"{% macro greeting() %}Hi {{ customer.firstName | default("there") }},{% endmacro %}
{% macro product_line(item) %}- {{ item.name }}{% if item.replaced is defined %} (instead of {{ item.replaced.name }}, sold out){% endif %}: {{ item.quantity | default(1) }} x {{ item.priceCents | money(item.currency) }}{% endmacro %}
{% macro lines(items) %}{% for item in items %}{{ product_line(item) }}
{% endfor %}{% endmacro %}
{% macro offer_block(offer) %}{{ offer.percent }}% off for you:
{% for item in offer.items %}- {{ item.name }}{% if item.replaced is defined %} (instead of {{ item.replaced.name }}, sold out){% endif %}: {{ item.priceCents | money(item.currency) }} (was {{ item.wasCents | money(item.currency) }})
{% endfor %}{% endmacro %}
{% macro points_block(points) %}{% if points.earn %}This order would earn you {{ points.earn }} points.{% endif %}{% if points.balance %} You have {{ points.balance }} points to spend{% if points.tier is defined %} as a {{ points.tier }} member{% endif %}.{% endif %}{% endmacro %}
{% macro footer() %}{{ brand.name }} | {{ brand.url }}
Unsubscribe: {{ unsubscribeUrl }}{% endmacro %}"#,
    ),
];

fn t(parts: &[(&str, &str)]) -> MessageTemplate {
    let get = |k: &str| parts.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
    MessageTemplate {
        subject: get("subject"),
        html: get("html"),
        text: get("text"),
        sms: get("sms"),
        title: get("title"),
        body: get("body"),
    }
}

/// The built-in journeys' messages, by id.
pub(crate) fn messages() -> Vec<(String, MessageTemplate)> {
    vec![
        (
            "cart_reminder".into(),
            t(&[
                ("subject", "{{ customer.firstName | default(\"Hello\") }}, your cart at {{ brand.name }} is waiting"),
                (
                    "html",
                    r#"{% import "brand.html" as b %}{{ b.header() }}
{{ b.greeting() }}
<p>You left these in your cart:</p>{{ b.cards(cart.items) }}<p>Total today: {{ cart.totalCents | money(cart.currency) }}</p>{% if points is defined %}{{ b.points_block(points) }}{% endif %}{% if similar %}<p>You might also like:</p>{{ b.cards(similar) }}{% endif %}<p><a href="{{ brand.url }}/cart">Back to your cart</a></p>{{ b.footer() }}"#,
                ),
                (
                    "text",
                    r#"{% import "brand.txt" as b %}{{ b.greeting() }}

You left these in your cart:
{{ b.lines(cart.items) }}
Total today: {{ cart.totalCents | money(cart.currency) }}
{% if points is defined %}{{ b.points_block(points) }}
{% endif %}{% if similar %}
You might also like:
{{ b.lines(similar) }}{% endif %}
Back to your cart: {{ brand.url }}/cart

{{ b.footer() }}"#,
                ),
                ("sms", "{{ brand.name }}: your cart ({{ cart.items | length }} items, {{ cart.totalCents | money(cart.currency) }}) is waiting: {{ brand.url }}/cart"),
                ("title", "Your cart is waiting"),
                ("body", "{{ cart.items | length }} items, {{ cart.totalCents | money(cart.currency) }} today"),
            ]),
        ),
        (
            "cart_discount".into(),
            t(&[
                ("subject", "{% if offer is defined %}{{ offer.percent }}% off your cart at {{ brand.name }}{% else %}Still thinking it over?{% endif %}"),
                (
                    "html",
                    r#"{% import "brand.html" as b %}{{ b.header() }}
{{ b.greeting() }}
{% if offer is defined %}{{ b.offer_block(offer) }}{% else %}<p>Your cart is still here:</p>{{ b.cards(cart.items) }}{% endif %}{% if points is defined %}{{ b.points_block(points) }}{% endif %}{% if similar %}<p>Similar items in stock:</p>{{ b.cards(similar) }}{% endif %}<p><a href="{{ brand.url }}/cart">Back to your cart</a></p>{{ b.footer() }}"#,
                ),
                (
                    "text",
                    r#"{% import "brand.txt" as b %}{{ b.greeting() }}

{% if offer is defined %}{{ b.offer_block(offer) }}{% else %}Your cart is still here:
{{ b.lines(cart.items) }}{% endif %}
{% if points is defined %}{{ b.points_block(points) }}
{% endif %}{% if similar %}
Similar items in stock:
{{ b.lines(similar) }}{% endif %}
Back to your cart: {{ brand.url }}/cart

{{ b.footer() }}"#,
                ),
                ("sms", "{{ brand.name }}: {% if offer is defined %}{{ offer.percent }}% off your cart{% else %}your cart is waiting{% endif %}: {{ brand.url }}/cart"),
                ("title", "{% if offer is defined %}{{ offer.percent }}% off your cart{% else %}Your cart is waiting{% endif %}"),
                ("body", "Back to your cart: {{ brand.url }}/cart"),
            ]),
        ),
        (
            "welcome".into(),
            t(&[
                ("subject", "Welcome to {{ brand.name }}{% if customer.firstName is defined %}, {{ customer.firstName }}{% endif %}"),
                (
                    "html",
                    r#"{% import "brand.html" as b %}{{ b.header() }}
{{ b.greeting() }}
<p>Thanks for joining {{ brand.name }}. Every order earns points you can spend on your next one, and the more you shop the further you get.</p>{% if similar %}<p>Popular with our customers:</p>{{ b.cards(similar) }}{% endif %}<p><a href="{{ brand.url }}">Start shopping</a></p>{{ b.footer() }}"#,
                ),
                (
                    "text",
                    r#"{% import "brand.txt" as b %}{{ b.greeting() }}

Thanks for joining {{ brand.name }}. Every order earns points you can spend on your next one, and the more you shop the further you get.
{% if similar %}
Popular with our customers:
{{ b.lines(similar) }}{% endif %}
Start shopping: {{ brand.url }}

{{ b.footer() }}"#,
                ),
                ("sms", "Welcome to {{ brand.name }}! Every order earns points: {{ brand.url }}"),
                ("title", "Welcome to {{ brand.name }}"),
                ("body", "Every order earns points you can spend on the next one"),
            ]),
        ),
        (
            "points_expiring".into(),
            t(&[
                ("subject", "{% if expiring is defined %}{{ expiring.points }} of your {{ brand.name }} points expire by {{ expiring.by }}{% else %}Your {{ brand.name }} points{% endif %}"),
                (
                    "html",
                    r#"{% import "brand.html" as b %}{{ b.header() }}
{{ b.greeting() }}
{% if expiring is defined %}<p><strong>{{ expiring.points }} points expire by {{ expiring.by }}</strong> unless you use them: each point takes money off your next order.</p>{% endif %}{% if points is defined %}{{ b.points_block(points) }}{% endif %}{% if similar %}<p>Picked for you:</p>{{ b.cards(similar) }}{% endif %}<p><a href="{{ brand.url }}">Use your points</a></p>{{ b.footer() }}"#,
                ),
                (
                    "text",
                    r#"{% import "brand.txt" as b %}{{ b.greeting() }}

{% if expiring is defined %}{{ expiring.points }} points expire by {{ expiring.by }} unless you use them: each point takes money off your next order.
{% endif %}{% if points is defined %}{{ b.points_block(points) }}
{% endif %}{% if similar %}
Picked for you:
{{ b.lines(similar) }}{% endif %}
Use your points: {{ brand.url }}

{{ b.footer() }}"#,
                ),
                ("sms", "{{ brand.name }}: {% if expiring is defined %}{{ expiring.points }} points expire by {{ expiring.by }}{% else %}your points are waiting{% endif %}: {{ brand.url }}"),
                ("title", "{% if expiring is defined %}{{ expiring.points }} points expire soon{% else %}Your points are waiting{% endif %}"),
                ("body", "Use them on your next order: {{ brand.url }}"),
            ]),
        ),
        (
            "tier_at_risk".into(),
            t(&[
                ("subject", "{% if tierRisk is defined %}Keep your {{ tierRisk.tier }} status at {{ brand.name }}{% else %}Your status at {{ brand.name }}{% endif %}"),
                (
                    "html",
                    r#"{% import "brand.html" as b %}{{ b.header() }}
{{ b.greeting() }}
{% if tierRisk is defined %}<p>Your {{ tierRisk.tier }} status is yours until {{ tierRisk.graceUntil }}.{% if tierRisk.spendNeededCents is defined %} Spend {{ tierRisk.spendNeededCents | money }} more{% if tierRisk.pointsNeeded is defined %} or earn {{ tierRisk.pointsNeeded }} more points{% endif %} by then to keep it.{% elif tierRisk.pointsNeeded is defined %} Earn {{ tierRisk.pointsNeeded }} more points by then to keep it.{% endif %}</p>{% endif %}{% if points is defined %}{{ b.points_block(points) }}{% endif %}{% if similar %}<p>Picked for you:</p>{{ b.cards(similar) }}{% endif %}<p><a href="{{ brand.url }}">Shop now</a></p>{{ b.footer() }}"#,
                ),
                (
                    "text",
                    r#"{% import "brand.txt" as b %}{{ b.greeting() }}

{% if tierRisk is defined %}Your {{ tierRisk.tier }} status is yours until {{ tierRisk.graceUntil }}.{% if tierRisk.spendNeededCents is defined %} Spend {{ tierRisk.spendNeededCents | money }} more{% if tierRisk.pointsNeeded is defined %} or earn {{ tierRisk.pointsNeeded }} more points{% endif %} by then to keep it.{% elif tierRisk.pointsNeeded is defined %} Earn {{ tierRisk.pointsNeeded }} more points by then to keep it.{% endif %}
{% endif %}{% if points is defined %}{{ b.points_block(points) }}
{% endif %}{% if similar %}
Picked for you:
{{ b.lines(similar) }}{% endif %}
Shop now: {{ brand.url }}

{{ b.footer() }}"#,
                ),
                ("sms", "{{ brand.name }}: {% if tierRisk is defined %}keep your {{ tierRisk.tier }} status, shop before {{ tierRisk.graceUntil }}{% else %}see your status{% endif %}: {{ brand.url }}"),
                ("title", "{% if tierRisk is defined %}Keep your {{ tierRisk.tier }} status{% else %}Your status{% endif %}"),
                ("body", "Shop now: {{ brand.url }}"),
            ]),
        ),
        (
            "birthday".into(),
            t(&[
                ("subject", "Happy birthday{% if customer.firstName is defined %}, {{ customer.firstName }}{% endif %}!"),
                (
                    "html",
                    r#"{% import "brand.html" as b %}{{ b.header() }}
{{ b.greeting() }}
<p>Happy birthday from all of us at {{ brand.name }}!{% if birthday is defined %} We have added {{ birthday.points }} points to your account as a gift.{% endif %}</p>{% if points is defined %}{{ b.points_block(points) }}{% endif %}{% if similar %}<p>Something for you:</p>{{ b.cards(similar) }}{% endif %}<p><a href="{{ brand.url }}">Treat yourself</a></p>{{ b.footer() }}"#,
                ),
                (
                    "text",
                    r#"{% import "brand.txt" as b %}{{ b.greeting() }}

Happy birthday from all of us at {{ brand.name }}!{% if birthday is defined %} We have added {{ birthday.points }} points to your account as a gift.{% endif %}
{% if points is defined %}{{ b.points_block(points) }}
{% endif %}{% if similar %}
Something for you:
{{ b.lines(similar) }}{% endif %}
Treat yourself: {{ brand.url }}

{{ b.footer() }}"#,
                ),
                ("sms", "Happy birthday from {{ brand.name }}!{% if birthday is defined %} {{ birthday.points }} points are yours.{% endif %}"),
                ("title", "Happy birthday!"),
                ("body", "{% if birthday is defined %}{{ birthday.points }} points are yours as a gift{% else %}A treat is waiting for you{% endif %}"),
            ]),
        ),
        (
            "browse_reminder".into(),
            t(&[
                ("subject", "{% if viewed is defined %}Still thinking about {{ viewed[0].name }}?{% else %}Picked for you at {{ brand.name }}{% endif %}"),
                (
                    "html",
                    r#"{% import "brand.html" as b %}{{ b.header() }}
{{ b.greeting() }}
{% if viewed is defined %}<p>You had a look at these; they are in stock today:</p>{{ b.cards(viewed) }}{% endif %}{% if similar %}<p>You might also like:</p>{{ b.cards(similar) }}{% endif %}<p><a href="{{ brand.url }}">Take another look</a></p>{{ b.footer() }}"#,
                ),
                (
                    "text",
                    r#"{% import "brand.txt" as b %}{{ b.greeting() }}

{% if viewed is defined %}You had a look at these; they are in stock today:
{{ b.lines(viewed) }}{% endif %}{% if similar %}
You might also like:
{{ b.lines(similar) }}{% endif %}
Take another look: {{ brand.url }}

{{ b.footer() }}"#,
                ),
                ("sms", "{{ brand.name }}: {% if viewed is defined %}{{ viewed[0].name }} is in stock{% else %}new picks for you{% endif %}: {{ brand.url }}"),
                ("title", "{% if viewed is defined %}{{ viewed[0].name }} is in stock{% else %}Picked for you{% endif %}"),
                ("body", "Take another look: {{ brand.url }}"),
            ]),
        ),
        (
            "replenish".into(),
            t(&[
                ("subject", "{% if due is defined %}Time for more {{ due[0].name }}?{% else %}Your usual at {{ brand.name }}{% endif %}"),
                (
                    "html",
                    r#"{% import "brand.html" as b %}{{ b.header() }}
{{ b.greeting() }}
{% if due is defined %}<p>By your usual rhythm these are due again, in stock today:</p><table>{% for item in due %}<tr><td>{{ item.name }}</td><td>every {{ item.everyDays }} days</td><td>{{ item.priceCents | money(item.currency) }}</td></tr>{% endfor %}</table>{% endif %}{% if points is defined %}{{ b.points_block(points) }}{% endif %}{% if similar %}<p>You might also like:</p>{{ b.cards(similar) }}{% endif %}<p><a href="{{ brand.url }}">Order again</a></p>{{ b.footer() }}"#,
                ),
                (
                    "text",
                    r#"{% import "brand.txt" as b %}{{ b.greeting() }}

{% if due is defined %}By your usual rhythm these are due again, in stock today:
{% for item in due %}- {{ item.name }} (every {{ item.everyDays }} days): {{ item.priceCents | money(item.currency) }}
{% endfor %}{% endif %}{% if points is defined %}{{ b.points_block(points) }}
{% endif %}{% if similar %}
You might also like:
{{ b.lines(similar) }}{% endif %}
Order again: {{ brand.url }}

{{ b.footer() }}"#,
                ),
                ("sms", "{{ brand.name }}: {% if due is defined %}time for more {{ due[0].name }}?{% else %}your usual is waiting{% endif %} {{ brand.url }}"),
                ("title", "{% if due is defined %}Time for more {{ due[0].name }}?{% else %}Your usual{% endif %}"),
                ("body", "Order again: {{ brand.url }}"),
            ]),
        ),
        (
            "win_back".into(),
            t(&[
                ("subject", "We miss you at {{ brand.name }}{% if customer.firstName is defined %}, {{ customer.firstName }}{% endif %}"),
                (
                    "html",
                    r#"{% import "brand.html" as b %}{{ b.header() }}
{{ b.greeting() }}
<p>It has been a while since your last order at {{ brand.name }}.</p>{% if points is defined %}{{ b.points_block(points) }}{% endif %}{% if similar %}<p>Picked for you:</p>{{ b.cards(similar) }}{% endif %}<p><a href="{{ brand.url }}">Come back and see what is new</a></p>{{ b.footer() }}"#,
                ),
                (
                    "text",
                    r#"{% import "brand.txt" as b %}{{ b.greeting() }}

It has been a while since your last order at {{ brand.name }}.
{% if points is defined %}{{ b.points_block(points) }}
{% endif %}{% if similar %}
Picked for you:
{{ b.lines(similar) }}{% endif %}
Come back and see what is new: {{ brand.url }}

{{ b.footer() }}"#,
                ),
                ("sms", "{{ brand.name }}: we miss you! See what is new: {{ brand.url }}"),
                ("title", "We miss you"),
                ("body", "See what is new: {{ brand.url }}"),
            ]),
        ),
        (
            "back_in_stock".into(),
            t(&[
                ("subject", "{% if backInStock is defined %}{{ backInStock[0].name }} is back in stock{% else %}Back in stock at {{ brand.name }}{% endif %}"),
                (
                    "html",
                    r#"{% import "brand.html" as b %}{{ b.header() }}
{{ b.greeting() }}
{% if backInStock is defined %}<p>Good news: what you wanted is back in stock.</p>{{ b.cards(backInStock) }}{% endif %}{% if similar %}<p>You might also like:</p>{{ b.cards(similar) }}{% endif %}<p><a href="{{ brand.url }}">Get it before it goes again</a></p>{{ b.footer() }}"#,
                ),
                (
                    "text",
                    r#"{% import "brand.txt" as b %}{{ b.greeting() }}

{% if backInStock is defined %}Good news: what you wanted is back in stock.
{{ b.lines(backInStock) }}{% endif %}{% if similar %}
You might also like:
{{ b.lines(similar) }}{% endif %}
Get it before it goes again: {{ brand.url }}

{{ b.footer() }}"#,
                ),
                ("sms", "{{ brand.name }}: {% if backInStock is defined %}{{ backInStock[0].name }} is back in stock{% else %}back in stock{% endif %}: {{ brand.url }}"),
                ("title", "{% if backInStock is defined %}{{ backInStock[0].name }} is back{% else %}Back in stock{% endif %}"),
                ("body", "Get it before it goes again: {{ brand.url }}"),
            ]),
        ),
        (
            "price_drop".into(),
            t(&[
                ("subject", "{% if priceDrop is defined %}{{ priceDrop[0].name }} now costs less{% else %}Prices down at {{ brand.name }}{% endif %}"),
                (
                    "html",
                    r#"{% import "brand.html" as b %}{{ b.header() }}
{{ b.greeting() }}
{% if priceDrop is defined %}<p>Since you looked, the price went down:</p><table>{% for item in priceDrop %}<tr><td>{{ item.name }}</td><td><s>{{ item.wasCents | money(item.currency) }}</s> {{ item.priceCents | money(item.currency) }}</td></tr>{% endfor %}</table>{% endif %}{% if similar %}<p>You might also like:</p>{{ b.cards(similar) }}{% endif %}<p><a href="{{ brand.url }}">Take a look</a></p>{{ b.footer() }}"#,
                ),
                (
                    "text",
                    r#"{% import "brand.txt" as b %}{{ b.greeting() }}

{% if priceDrop is defined %}Since you looked, the price went down:
{% for item in priceDrop %}- {{ item.name }}: {{ item.priceCents | money(item.currency) }} (was {{ item.wasCents | money(item.currency) }})
{% endfor %}{% endif %}{% if similar %}
You might also like:
{{ b.lines(similar) }}{% endif %}
Take a look: {{ brand.url }}

{{ b.footer() }}"#,
                ),
                ("sms", "{{ brand.name }}: {% if priceDrop is defined %}{{ priceDrop[0].name }} now {{ priceDrop[0].priceCents | money(priceDrop[0].currency) }}{% else %}prices are down{% endif %}: {{ brand.url }}"),
                ("title", "{% if priceDrop is defined %}{{ priceDrop[0].name }} costs less{% else %}Prices down{% endif %}"),
                ("body", "Take a look: {{ brand.url }}"),
            ]),
        ),
    ]
}
