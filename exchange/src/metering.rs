//! Metering: what a compute job used ([`Usage`], in standard units) and its price from the
//! provider's self-described price model (`service.price`: a decimal amount in a currency per
//! unit), in exact decimal arithmetic ([`charge`]).
//!
//! Metered units: `Gfuel` / `Mfuel` (10^9 / 10^6 fuel), `second` / `vCPU-second` and
//! `hour` / `vCPU-hour` (wall time), `GB-read` / `MB-read` (dataset bytes read),
//! `GB-written` / `MB-written` (result bytes), `job` (flat).

use serde::{Deserialize, Serialize};

/// What one compute job used, in standard units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// Fuel consumed (≈ WebAssembly instructions executed); deterministic for the same
    /// algorithm and input.
    pub fuel: u64,
    /// Wall time, microseconds.
    pub wall_us: u64,
    /// The largest linear memory the algorithm held, bytes.
    pub peak_memory_bytes: u64,
    /// Dataset bytes the algorithm read.
    pub bytes_read: u64,
    /// Result bytes it wrote.
    pub bytes_written: u64,
}

/// Decimal places kept (nano-units of the currency).
const SCALE: u32 = 9;

/// A job's price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Charge {
    /// ISO 4217 code from the price model.
    pub currency: String,
    /// The amount, decimal (at most 9 places, rounded up).
    pub amount: String,
    /// The billed quantity, decimal, in `unit`.
    pub quantity: String,
    /// The price model's unit.
    pub unit: String,
    /// The price per unit, as published.
    pub unit_price: String,
}

/// Why a price model cannot price a job.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// The amount is not a non-negative decimal.
    #[error("price amount {0:?} is not a decimal like \"0.018\"")]
    Amount(String),
    /// The unit is not one this node meters.
    #[error(
        "price unit {0:?} is not metered (use Gfuel, Mfuel, second, vCPU-second, hour, \
         vCPU-hour, GB-read, MB-read, GB-written, MB-written or job)"
    )]
    Unit(String),
    /// The product does not fit.
    #[error("the price overflows")]
    Overflow,
}

/// `quantity / divisor` of a unit, as a fraction of integers.
fn quantity(usage: &Usage, unit: &str) -> Result<(u128, u128), PriceError> {
    let u = u128::from;
    Ok(match unit {
        "Gfuel" => (u(usage.fuel), 1_000_000_000),
        "Mfuel" => (u(usage.fuel), 1_000_000),
        "second" | "vCPU-second" => (u(usage.wall_us), 1_000_000),
        "hour" | "vCPU-hour" => (u(usage.wall_us), 3_600_000_000),
        "GB-read" => (u(usage.bytes_read), 1_000_000_000),
        "MB-read" => (u(usage.bytes_read), 1_000_000),
        "GB-written" => (u(usage.bytes_written), 1_000_000_000),
        "MB-written" => (u(usage.bytes_written), 1_000_000),
        "job" => (1, 1),
        other => return Err(PriceError::Unit(other.to_owned())),
    })
}

/// Parses a non-negative decimal into units of 10^-SCALE.
fn parse_decimal(s: &str) -> Result<u128, PriceError> {
    let bad = || PriceError::Amount(s.to_owned());
    let (int, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > SCALE as usize
    {
        return Err(bad());
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let mut frac_digits = frac.to_owned();
    while frac_digits.len() < SCALE as usize {
        frac_digits.push('0');
    }
    let frac: u128 = frac_digits.parse().map_err(|_| bad())?;
    int.checked_mul(10u128.pow(SCALE))
        .and_then(|i| i.checked_add(frac))
        .ok_or(PriceError::Overflow)
}

/// Formats units of 10^-SCALE as a decimal without trailing zeros.
fn format_decimal(v: u128) -> String {
    let scale = 10u128.pow(SCALE);
    let (int, frac) = (v / scale, v % scale);
    if frac == 0 {
        return int.to_string();
    }
    let frac = format!("{frac:09}");
    format!("{int}.{}", frac.trim_end_matches('0'))
}

/// The charge for `usage` at `amount` `currency` per `unit`.
pub fn charge(
    usage: &Usage,
    currency: &str,
    amount: &str,
    unit: &str,
) -> Result<Charge, PriceError> {
    let unit_price = parse_decimal(amount)?;
    let (n, d) = quantity(usage, unit)?;
    let scale = 10u128.pow(SCALE);
    // amount = unit_price × n / d, rounded up to the last kept place.
    let product = unit_price.checked_mul(n).ok_or(PriceError::Overflow)?;
    let total = product.div_ceil(d);
    let qty = n
        .checked_mul(scale)
        .ok_or(PriceError::Overflow)?
        .div_ceil(d);
    Ok(Charge {
        currency: currency.to_owned(),
        amount: format_decimal(total),
        quantity: format_decimal(qty),
        unit: unit.to_owned(),
        unit_price: amount.trim().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage() -> Usage {
        Usage {
            fuel: 2_500_000_000,
            wall_us: 1_500_000,
            peak_memory_bytes: 1 << 20,
            bytes_read: 250_000_000,
            bytes_written: 100,
        }
    }

    #[test]
    fn each_unit_prices_its_meter_exactly() {
        let c = charge(&usage(), "EUR", "0.02", "Gfuel").unwrap();
        assert_eq!((c.amount.as_str(), c.quantity.as_str()), ("0.05", "2.5"));
        assert_eq!(
            charge(&usage(), "EUR", "0.1", "second").unwrap().amount,
            "0.15"
        );
        assert_eq!(
            charge(&usage(), "EUR", "0.08", "GB-read").unwrap().amount,
            "0.02"
        );
        assert_eq!(charge(&usage(), "EUR", "3", "job").unwrap().amount, "3");
        // 1.5 s of an hourly price, rounded up to the nano-euro.
        assert_eq!(
            charge(&usage(), "EUR", "0.05", "vCPU-hour").unwrap().amount,
            "0.000020834"
        );
    }

    #[test]
    fn bad_amounts_and_unknown_units_are_named() {
        for bad in ["", "-1", "1,5", "0.0000000001", "1e3", "abc"] {
            assert!(
                matches!(
                    charge(&usage(), "EUR", bad, "job"),
                    Err(PriceError::Amount(_))
                ),
                "{bad}"
            );
        }
        let e = charge(&usage(), "EUR", "1", "GB-month").unwrap_err();
        assert!(e.to_string().contains("GB-month"));
    }
}
