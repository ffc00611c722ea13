//! Validation of an order as a client sends it.

use std::fmt;

use tonic::Status;

use super::v1::{LineItem, PlaceOrderRequest};

/// Longest customer id or SKU, in bytes.
pub const MAX_ID_BYTES: usize = 64;
/// Largest quantity of one line.
pub const MAX_QUANTITY: u32 = 10_000;
/// Largest unit price, in cents.
pub const MAX_UNIT_PRICE_CENTS: u64 = 100_000_000;

/// An order that passed validation, with its total.
#[derive(Debug, Clone)]
pub(crate) struct ValidOrder {
    pub(crate) customer_id: String,
    pub(crate) items: Vec<LineItem>,
    pub(crate) total_cents: u64,
}

/// The first problem found in an order: which field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    field: String,
    problem: String,
}

impl FieldError {
    fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

impl From<FieldError> for Status {
    fn from(error: FieldError) -> Self {
        Status::invalid_argument(error.to_string())
    }
}

/// Checks `request` and computes its total.
pub(crate) fn validate(
    request: PlaceOrderRequest,
    max_items: usize,
) -> Result<ValidOrder, FieldError> {
    let PlaceOrderRequest { customer_id, items } = request;
    check_id("customer_id", &customer_id)?;
    if items.is_empty() {
        return Err(FieldError::new(
            "items",
            "is empty; an order needs at least one line",
        ));
    }
    if items.len() > max_items {
        return Err(FieldError::new(
            "items",
            format!("has {} lines; at most {max_items} are allowed", items.len()),
        ));
    }
    let mut total_cents: u64 = 0;
    for (i, item) in items.iter().enumerate() {
        let line = line_total(i, item)?;
        total_cents = total_cents
            .checked_add(line)
            .ok_or_else(|| FieldError::new("items", "total overflows 64 bits of cents"))?;
    }
    Ok(ValidOrder {
        customer_id,
        items,
        total_cents,
    })
}

fn line_total(i: usize, item: &LineItem) -> Result<u64, FieldError> {
    check_id(&format!("items[{i}].sku"), &item.sku)?;
    if item.quantity == 0 || item.quantity > MAX_QUANTITY {
        return Err(FieldError::new(
            format!("items[{i}].quantity"),
            format!("is {}; must be between 1 and {MAX_QUANTITY}", item.quantity),
        ));
    }
    if item.unit_price_cents == 0 || item.unit_price_cents > MAX_UNIT_PRICE_CENTS {
        return Err(FieldError::new(
            format!("items[{i}].unit_price_cents"),
            format!(
                "is {}; must be between 1 and {MAX_UNIT_PRICE_CENTS}",
                item.unit_price_cents
            ),
        ));
    }
    // Both factors are bounded, so the product fits in 64 bits.
    Ok(u64::from(item.quantity) * item.unit_price_cents)
}

/// Checks an identifier field: not empty, not longer than [`MAX_ID_BYTES`].
pub(crate) fn check_id(field: &str, value: &str) -> Result<(), FieldError> {
    if value.trim().is_empty() {
        return Err(FieldError::new(field, "is empty"));
    }
    if value.len() > MAX_ID_BYTES {
        return Err(FieldError::new(
            field,
            format!(
                "is {} bytes long; at most {MAX_ID_BYTES} are allowed",
                value.len()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(sku: &str, quantity: u32, unit_price_cents: u64) -> LineItem {
        LineItem {
            sku: sku.to_owned(),
            quantity,
            unit_price_cents,
        }
    }

    fn order(items: Vec<LineItem>) -> PlaceOrderRequest {
        PlaceOrderRequest {
            customer_id: "cus-1".to_owned(),
            items,
        }
    }

    #[test]
    fn total_is_the_sum_of_the_lines() {
        let valid = validate(order(vec![item("a", 2, 150), item("b", 1, 99)]), 10).unwrap();
        assert_eq!(valid.total_cents, 399);
    }

    #[test]
    fn each_problem_names_its_field() {
        let cases = [
            (order(vec![]), "items"),
            (order(vec![item("a", 1, 1), item("", 1, 1)]), "items[1].sku"),
            (order(vec![item("a", 0, 1)]), "items[0].quantity"),
            (
                order(vec![item("a", MAX_QUANTITY + 1, 1)]),
                "items[0].quantity",
            ),
            (order(vec![item("a", 1, 0)]), "items[0].unit_price_cents"),
            (
                order(vec![item(&"x".repeat(MAX_ID_BYTES + 1), 1, 1)]),
                "items[0].sku",
            ),
            (
                PlaceOrderRequest {
                    customer_id: " ".to_owned(),
                    items: vec![item("a", 1, 1)],
                },
                "customer_id",
            ),
            (order(vec![item("a", 1, 1); 11]), "items"),
        ];
        for (request, field) in cases {
            let error = validate(request, 10).unwrap_err();
            assert_eq!(error.field, field, "{error}");
        }
    }
}
