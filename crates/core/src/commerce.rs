//! The one order model: Segment's e-commerce events (Order Completed, Updated, Cancelled and
//! Refunded; Product Added and Removed; Checkout Started) parsed once, at intake and again by the
//! projector from the stored body, into one typed value that the profile, stock and points
//! projections all read. Money is integer minor units; a quantity carries its unit, so an item
//! sold by weight is a measured amount, not a fractional count. Every number has a range: what
//! cannot be meant is refused naming its field (`properties.products[2].quantity`).

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::money::decimal;
use crate::FieldError;

/// The highest unit price accepted: $1,000,000.00 in minor units.
pub const MAX_PRICE_CENTS: i64 = 100_000_000;
/// The highest amount an order (or a refund) may carry: $10,000,000.00 in minor units.
pub const MAX_ORDER_CENTS: i64 = 1_000_000_000;
/// The most units (or units of measure) one line may carry.
pub const MAX_QUANTITY: i64 = 100_000;
/// The most lines one order may carry.
pub const MAX_LINES: usize = 1_000;
/// The longest identifier (order, product, store, reservation) accepted.
pub const MAX_ID_LEN: usize = 256;

/// What a line's quantity counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Whole items (the default): the quantity is a count.
    Each,
    /// Kilograms.
    Kilogram,
    /// Grams.
    Gram,
    /// Pounds.
    Pound,
    /// Ounces.
    Ounce,
    /// Litres.
    Litre,
    /// Millilitres.
    Millilitre,
}

impl Unit {
    /// Parses a line's `unit` (`each`, `kg`, `g`, `lb`, `oz`, `l`, `ml`).
    pub fn parse(s: &str) -> Option<Unit> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "each" | "ea" | "unit" | "item" => Self::Each,
            "kg" => Self::Kilogram,
            "g" => Self::Gram,
            "lb" => Self::Pound,
            "oz" => Self::Ounce,
            "l" => Self::Litre,
            "ml" => Self::Millilitre,
            _ => return None,
        })
    }

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Each => "each",
            Self::Kilogram => "kg",
            Self::Gram => "g",
            Self::Pound => "lb",
            Self::Ounce => "oz",
            Self::Litre => "l",
            Self::Millilitre => "ml",
        }
    }
}

/// How much of a product a line is about: a whole count of items, or a measured amount
/// (thousandths of its unit) of an item sold by weight or volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity {
    /// What is counted.
    pub unit: Unit,
    /// The amount in thousandths of `unit` (2.5 kg is 2,500; 3 items is 3,000).
    pub milli: i64,
}

impl Quantity {
    /// A count of whole items.
    pub fn each(n: i64) -> Quantity {
        Quantity { unit: Unit::Each, milli: n.saturating_mul(1000) }
    }

    /// The items this line takes off (or puts back on) a shelf: the count for whole items, one
    /// for a measured line (a weighed bag of apples or a pack of meat is one item on the shelf).
    pub fn stock_units(&self) -> i64 {
        match self.unit {
            Unit::Each => self.milli / 1000,
            _ => 1,
        }
    }

    /// The amount as a decimal of its unit.
    pub fn amount(&self) -> Decimal {
        Decimal::new(self.milli, 3)
    }
}

/// One product line of an order or a cart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The product (`product_id`, `productId`, `sku` or `id`).
    pub product_id: String,
    /// The product's category, when the sender gives one.
    pub category: Option<String>,
    /// How much.
    pub quantity: Quantity,
    /// The price of one item (or one unit of measure), in minor units.
    pub unit_price_cents: i64,
    /// The price times the quantity, rounded half away from zero, in minor units.
    pub amount_cents: i64,
}

/// An order as an order event describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// The order id every event about the order repeats.
    pub order_id: String,
    /// The store it was sold at (or is picked up from), if any.
    pub store_id: Option<String>,
    /// The reservation it confirms or releases, if any.
    pub reservation_id: Option<String>,
    /// ISO 4217 currency code, upper case (USD when not given).
    pub currency: String,
    /// The amount the event is about: `total`, else `revenue`, else the sum of its lines; `None`
    /// when it gives neither (a refund without an amount refunds the whole order).
    pub amount_cents: Option<i64>,
    /// The product lines.
    pub lines: Vec<Line>,
}

impl Order {
    /// The order's value: its amount, or 0 when none was given.
    pub fn total_cents(&self) -> i64 {
        self.amount_cents.unwrap_or(0)
    }

    /// The lines' amounts scaled so that they add up to the order's amount (discounts and
    /// rounding make them differ), largest remainder first so the sum is exact.
    pub fn line_shares(&self) -> Vec<i64> {
        let raw: Vec<i64> = self.lines.iter().map(|l| l.amount_cents).collect();
        let sum: i128 = raw.iter().map(|c| *c as i128).sum();
        let Some(total) = self.amount_cents else { return raw };
        if sum <= 0 || sum == total as i128 {
            return raw;
        }
        let mut shares: Vec<(i64, i128, usize)> = raw
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let num = *c as i128 * total as i128;
                ((num / sum) as i64, num % sum, i)
            })
            .collect();
        let mut left = total - shares.iter().map(|s| s.0).sum::<i64>();
        let mut order: Vec<usize> = (0..shares.len()).collect();
        order.sort_by(|a, b| shares[*b].1.cmp(&shares[*a].1).then(a.cmp(b)));
        for i in order {
            if left <= 0 {
                break;
            }
            shares[i].0 += 1;
            left -= 1;
        }
        shares.into_iter().map(|s| s.0).collect()
    }
}

/// A cart change: one line, at a store when the shopper picks one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartChange {
    /// The line added or removed.
    pub line: Line,
    /// The store the shopper shops at, if given.
    pub store_id: Option<String>,
}

/// A commerce event, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commerce {
    /// Order Completed: the order is placed and paid.
    OrderCompleted(Order),
    /// Order Updated: the order changed before fulfilment (recorded, moves nothing yet).
    OrderUpdated(Order),
    /// Order Cancelled: the whole order is called off.
    OrderCancelled(Order),
    /// Order Refunded: some or all of it comes back; the amount is what is refunded.
    OrderRefunded(Order),
    /// Product Added (to a cart).
    ProductAdded(CartChange),
    /// Product Removed (from a cart).
    ProductRemoved(CartChange),
    /// Checkout Started: the cart becomes an order to be paid.
    CheckoutStarted(Order),
}

impl Commerce {
    /// Whether a track event of this name is a commerce event.
    pub fn is_commerce(name: &str) -> bool {
        matches!(
            name,
            "Order Completed"
                | "Order Updated"
                | "Order Cancelled"
                | "Order Refunded"
                | "Product Added"
                | "Product Removed"
                | "Checkout Started"
        )
    }

    /// Parses a stored or received event body. `Ok(None)` when it is not a commerce event;
    /// field paths in errors are relative to the event (`properties.total`).
    pub fn from_event(body: &Value) -> Result<Option<Commerce>, FieldError> {
        if body.get("type").and_then(Value::as_str).is_some_and(|t| t != "track") {
            return Ok(None);
        }
        let Some(name) = body.get("event").and_then(Value::as_str) else { return Ok(None) };
        if !Self::is_commerce(name) {
            return Ok(None);
        }
        let props = match body.get("properties") {
            None | Some(Value::Null) => &Value::Null,
            Some(p @ Value::Object(_)) => p,
            Some(_) => return Err(FieldError::invalid("properties", "must be an object")),
        };
        Ok(Some(match name {
            "Product Added" => Self::ProductAdded(cart_change(props)?),
            "Product Removed" => Self::ProductRemoved(cart_change(props)?),
            "Order Completed" => Self::OrderCompleted(order(props, true)?),
            "Order Updated" => Self::OrderUpdated(order(props, true)?),
            "Order Cancelled" => Self::OrderCancelled(order(props, true)?),
            "Order Refunded" => Self::OrderRefunded(order(props, true)?),
            _ => Self::CheckoutStarted(order(props, false)?),
        }))
    }
}

const PRODUCT_ID_KEYS: [&str; 4] = ["product_id", "productId", "sku", "id"];

/// The product an event's properties (or a line) name, under any key Segment SDKs use; `None`
/// when none is there. For events that are not commerce events, such as Product Viewed.
pub fn product_id(v: &Value) -> Option<String> {
    PRODUCT_ID_KEYS.iter().find_map(|k| match v.get(*k) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// A text or numeric identifier under the first of `keys` present; errors name `path.key`.
fn ident(v: &Value, keys: &[&str], path: &str) -> Result<Option<String>, FieldError> {
    for key in keys {
        let field = || join(path, key);
        match v.get(*key) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) if s.trim().is_empty() => continue,
            Some(Value::String(s)) if s.len() > MAX_ID_LEN => {
                return Err(FieldError::invalid(field(), format!("must be at most {MAX_ID_LEN} characters")))
            }
            Some(Value::String(s)) => return Ok(Some(s.trim().to_string())),
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => return Ok(Some(n.to_string())),
            Some(_) => return Err(FieldError::invalid(field(), "must be a string (or a whole number)")),
        }
    }
    Ok(None)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// An amount of money in minor units within `0..=max`, from a JSON number or numeric string.
pub fn money(v: &Value, field: &str, max: i64) -> Result<i64, FieldError> {
    let d = decimal(v).ok_or_else(|| {
        FieldError::invalid(field, "must be an amount: a number or a numeric string such as \"12.50\"")
    })?;
    let cents = d
        .checked_mul(Decimal::from(100))
        .map(|c| c.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero))
        .and_then(|c| c.to_i64())
        .filter(|c| (0..=max).contains(c));
    cents
        .ok_or_else(|| FieldError::invalid(field, format!("must be between 0 and {}", crate::money::format_cents(max))))
}

fn opt_money(v: &Value, key: &str, path: &str, max: i64) -> Result<Option<i64>, FieldError> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => money(x, &join(path, key), max).map(Some),
    }
}

fn quantity(line: &Value, path: &str) -> Result<Quantity, FieldError> {
    let unit = match line.get("unit") {
        None | Some(Value::Null) => Unit::Each,
        Some(Value::String(s)) => Unit::parse(s)
            .ok_or_else(|| FieldError::invalid(join(path, "unit"), "must be one of each, kg, g, lb, oz, l, ml"))?,
        Some(_) => return Err(FieldError::invalid(join(path, "unit"), "must be a string such as \"kg\"")),
    };
    let field = join(path, "quantity");
    let amount = match line.get("quantity") {
        None | Some(Value::Null) => Decimal::ONE,
        Some(v) => decimal(v).ok_or_else(|| FieldError::invalid(&field, "must be a number"))?,
    };
    if amount <= Decimal::ZERO || amount > Decimal::from(MAX_QUANTITY) {
        return Err(FieldError::invalid(&field, format!("must be more than 0 and at most {MAX_QUANTITY}")));
    }
    if unit == Unit::Each && !amount.fract().is_zero() {
        return Err(FieldError::invalid(
            &field,
            format!(
                "{amount} is not a whole count; an item sold by weight or volume says its unit, e.g. \"unit\": \"kg\""
            ),
        ));
    }
    let milli = (amount * Decimal::from(1000)).round().to_i64().unwrap_or(0).max(1);
    Ok(Quantity { unit, milli })
}

fn line(v: &Value, path: &str) -> Result<Line, FieldError> {
    if !v.is_object() {
        return Err(FieldError::invalid(path, "must be an object with a product_id"));
    }
    let product_id = ident(v, &PRODUCT_ID_KEYS, path)?
        .ok_or_else(|| FieldError::invalid(join(path, "product_id"), "a product line needs its product_id"))?;
    let category = match v.get("category") {
        Some(Value::String(s)) if s.len() > MAX_ID_LEN => {
            return Err(FieldError::invalid(join(path, "category"), format!("must be at most {MAX_ID_LEN} characters")))
        }
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        _ => None,
    };
    let quantity = quantity(v, path)?;
    let unit_price_cents = opt_money(v, "price", path, MAX_PRICE_CENTS)?.unwrap_or(0);
    let amount = (Decimal::from(unit_price_cents) * quantity.amount())
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    let amount_cents = amount.to_i64().filter(|a| *a <= MAX_ORDER_CENTS).ok_or_else(|| {
        FieldError::invalid(
            join(path, "price"),
            format!("price × quantity exceeds {}", crate::money::format_cents(MAX_ORDER_CENTS)),
        )
    })?;
    Ok(Line { product_id, category, quantity, unit_price_cents, amount_cents })
}

fn cart_change(props: &Value) -> Result<CartChange, FieldError> {
    let line = line(props, "properties")?;
    let store_id = ident(props, &["store_id", "storeId"], "properties")?;
    Ok(CartChange { line, store_id })
}

fn order(props: &Value, needs_id: bool) -> Result<Order, FieldError> {
    const P: &str = "properties";
    let order_id = match ident(props, &["order_id", "orderId"], P)? {
        Some(id) => id,
        None if needs_id => {
            return Err(FieldError::invalid(
                "properties.order_id",
                "an order event needs its order_id, so that refunds and retries find the order",
            ))
        }
        None => String::new(),
    };
    let lines = match props.get("products") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) if a.len() > MAX_LINES => {
            return Err(FieldError::invalid("properties.products", format!("must have at most {MAX_LINES} lines")))
        }
        Some(Value::Array(a)) => {
            a.iter().enumerate().map(|(i, l)| line(l, &format!("{P}.products[{i}]"))).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(FieldError::invalid("properties.products", "must be an array of product lines")),
    };
    let line_sum = lines.iter().try_fold(0i64, |acc, l: &Line| acc.checked_add(l.amount_cents));
    let line_sum = line_sum.filter(|s| *s <= MAX_ORDER_CENTS).ok_or_else(|| {
        FieldError::invalid(
            "properties.products",
            format!("the lines add up to more than {}", crate::money::format_cents(MAX_ORDER_CENTS)),
        )
    })?;
    let total = opt_money(props, "total", P, MAX_ORDER_CENTS)?;
    let revenue = opt_money(props, "revenue", P, MAX_ORDER_CENTS)?;
    let amount_cents = total.or(revenue).or((!lines.is_empty()).then_some(line_sum));
    let currency = match props.get("currency") {
        None | Some(Value::Null) => "USD".to_string(),
        Some(Value::String(c)) if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()) => {
            c.to_ascii_uppercase()
        }
        Some(_) => return Err(FieldError::invalid("properties.currency", "must be an ISO 4217 code such as \"USD\"")),
    };
    Ok(Order {
        order_id,
        store_id: ident(props, &["store_id", "storeId"], P)?,
        reservation_id: ident(props, &["reservation_id", "reservationId"], P)?,
        currency,
        amount_cents,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(event: &str, props: Value) -> Result<Option<Commerce>, FieldError> {
        Commerce::from_event(&json!({"type": "track", "event": event, "properties": props}))
    }

    #[test]
    fn an_order_is_parsed_once_with_exact_money() {
        let c = parse(
            "Order Completed",
            json!({"order_id": "o1", "total": "12.35", "store_id": 436, "products": [
                {"product_id": "a", "price": 0.1, "quantity": 3},
                {"sku": "b", "price": "4.99", "quantity": 2.5, "unit": "KG", "category": "Produce"}]}),
        )
        .unwrap()
        .unwrap();
        let Commerce::OrderCompleted(o) = c else { panic!("not an order") };
        assert_eq!(o.order_id, "o1");
        assert_eq!(o.store_id.as_deref(), Some("436"));
        assert_eq!(o.amount_cents, Some(1235));
        assert_eq!(o.lines[0].amount_cents, 30);
        assert_eq!(o.lines[0].quantity.stock_units(), 3);
        assert_eq!(o.lines[1].quantity, Quantity { unit: Unit::Kilogram, milli: 2500 });
        assert_eq!(o.lines[1].quantity.stock_units(), 1);
        assert_eq!(o.lines[1].amount_cents, 1248);
        assert_eq!(o.line_shares().iter().sum::<i64>(), 1235);
    }

    #[test]
    fn what_cannot_be_meant_is_refused_naming_the_field() {
        let cases = [
            (json!({"order_id": "o", "total": 1e300}), "properties.total"),
            (json!({"order_id": "o", "total": -1}), "properties.total"),
            (json!({"order_id": "o", "revenue": "lots"}), "properties.revenue"),
            (json!({"total": 5}), "properties.order_id"),
            (
                json!({"order_id": "o", "products": [{"product_id": "a", "quantity": 2.5}]}),
                "properties.products[0].quantity",
            ),
            (
                json!({"order_id": "o", "products": [{"product_id": "a", "quantity": 0}]}),
                "properties.products[0].quantity",
            ),
            (
                json!({"order_id": "o", "products": [{"product_id": "a", "quantity": 67280421310721i64}]}),
                "properties.products[0].quantity",
            ),
            (json!({"order_id": "o", "products": [{"price": 1}]}), "properties.products[0].product_id"),
            (
                json!({"order_id": "o", "products": [{"product_id": "a", "unit": "bushel"}]}),
                "properties.products[0].unit",
            ),
            (json!({"order_id": "o", "products": "a"}), "properties.products"),
            (json!({"order_id": "o", "currency": "dollars"}), "properties.currency"),
            (
                json!({"order_id": "o", "products": [{"product_id": "a", "price": 1000000, "quantity": 100000}]}),
                "properties.products[0].price",
            ),
        ];
        for (props, field) in cases {
            let err = parse("Order Completed", props.clone()).unwrap_err();
            assert_eq!(err.field, field, "{props}");
        }
        let err =
            parse("Product Added", json!({"product_id": "a", "price": "79228162514264337593543950335"})).unwrap_err();
        assert_eq!(err.field, "properties.price");
    }

    #[test]
    fn other_events_are_not_commerce() {
        assert_eq!(parse("Product Viewed", json!({"total": 1e300})).unwrap(), None);
        assert_eq!(Commerce::from_event(&json!({"type": "identify"})).unwrap(), None);
    }

    #[test]
    fn refunds_without_an_amount_mean_the_whole_order() {
        let Some(Commerce::OrderRefunded(o)) = parse("Order Refunded", json!({"order_id": "o"})).unwrap() else {
            panic!("not a refund")
        };
        assert_eq!(o.amount_cents, None);
        let Some(Commerce::OrderRefunded(o)) = parse(
            "Order Refunded",
            json!({"order_id": "o", "products": [{"product_id": "a", "price": 2, "quantity": 2}]}),
        )
        .unwrap() else {
            panic!("not a refund")
        };
        assert_eq!(o.amount_cents, Some(400));
    }
}
