//! The call every scenario of `plexus bench http` makes: `Quotes/Quote`
//! (`proto/plexus/bench/v1/bench.proto`), its pricing logic, the gRPC
//! service and the request fixtures.
//!
//! Every server prices a request with the same [`quote`] function: the gRPC
//! service on the decoded protobuf message, the plain JSON handlers on the
//! message converted from its JSON twin ([`super::json`]).

use tonic::{Request, Response, Status};

/// Generated types and service traits of `plexus.bench.v1`.
#[allow(missing_docs)]
pub mod v1 {
    tonic::include_proto!("plexus.bench.v1");
}

pub use v1::quotes_client::QuotesClient;
pub use v1::quotes_server::QuotesServer;
pub use v1::{Line, LineTotal, QuoteReply, QuoteRequest};

/// The encoded `FileDescriptorSet` of the bench proto and its imports, with
/// the `google.api.http` options the gateway reads.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/bench_descriptor.bin"));

/// The fully qualified name of the service.
pub const SERVICE: &str = "plexus.bench.v1.Quotes";

/// The REST route of `Quote` through the gateway.
pub const GATEWAY_PATH: &str = "/v1/quote";

/// Why a request cannot be priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

/// Prices `request`: each line's total, the sum, and an id derived from the
/// request. A request with no line, or a line with no quantity, is invalid.
pub fn quote(request: QuoteRequest) -> Result<QuoteReply, Invalid> {
    if request.lines.is_empty() {
        return Err(Invalid(
            "lines is empty; a quote needs at least one line".to_owned(),
        ));
    }
    let mut total_cents: i64 = 0;
    let mut lines = Vec::with_capacity(request.lines.len());
    for (index, line) in request.lines.into_iter().enumerate() {
        if line.quantity == 0 {
            return Err(Invalid(format!("lines[{index}].quantity is 0")));
        }
        let line_total = line
            .unit_price_cents
            .checked_mul(i64::from(line.quantity))
            .ok_or_else(|| Invalid(format!("lines[{index}] total overflows int64")))?;
        total_cents = total_cents
            .checked_add(line_total)
            .ok_or_else(|| Invalid("the total overflows int64".to_owned()))?;
        lines.push(LineTotal {
            sku: line.sku,
            total_cents: line_total,
        });
    }
    Ok(QuoteReply {
        quote_id: quote_id(&request.customer_id, total_cents, lines.len()),
        currency: request.currency,
        total_cents,
        lines,
    })
}

/// `q-` and 16 hex digits of an FNV-1a hash of the customer, the total and
/// the line count: the same request always gets the same id.
fn quote_id(customer_id: &str, total_cents: i64, lines: usize) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes = customer_id
        .bytes()
        .chain(total_cents.to_le_bytes())
        .chain((lines as u64).to_le_bytes());
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("q-{hash:016x}")
}

/// The gRPC service: [`quote`] on the decoded request.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuoteService;

#[tonic::async_trait]
impl v1::quotes_server::Quotes for QuoteService {
    async fn quote(&self, request: Request<QuoteRequest>) -> Result<Response<QuoteReply>, Status> {
        quote(request.into_inner())
            .map(Response::new)
            .map_err(|Invalid(reason)| Status::invalid_argument(reason))
    }
}

/// A basket of `lines` lines (SKUs of 18 characters, quantities 1 to 5).
pub fn request(lines: usize) -> QuoteRequest {
    QuoteRequest {
        customer_id: "c-000042".to_owned(),
        currency: "EUR".to_owned(),
        lines: (0..lines)
            .map(|i| Line {
                sku: format!("SKU-{i:06}-BLUE-XL"),
                quantity: (i % 5) as u32 + 1,
                unit_price_cents: 1_299 + 7 * i as i64,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_every_line_and_the_sum() {
        let reply = quote(request(3)).unwrap();
        let totals: Vec<i64> = reply.lines.iter().map(|l| l.total_cents).collect();
        assert_eq!(totals, vec![1_299, 2 * 1_306, 3 * 1_313]);
        assert_eq!(reply.total_cents, totals.iter().sum::<i64>());
        assert_eq!(reply.currency, "EUR");
        assert_eq!(reply.lines[2].sku, "SKU-000002-BLUE-XL");
        assert_eq!(reply.quote_id, quote(request(3)).unwrap().quote_id);
        assert_ne!(reply.quote_id, quote(request(4)).unwrap().quote_id);
    }

    #[test]
    fn refuses_empty_baskets_and_zero_quantities() {
        assert!(quote(request(0)).unwrap_err().0.contains("lines is empty"));
        let mut zero = request(2);
        zero.lines[1].quantity = 0;
        assert_eq!(quote(zero).unwrap_err().0, "lines[1].quantity is 0");
    }
}
