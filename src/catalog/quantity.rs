//! Kubernetes resource quantities ("500m", "2Gi", "1.5", "1e3"), parsed exactly so that a plan's quota can be
//! checked at start-up and compared with what a namespace already uses before a downgrade.

/// A quantity in thousandths of its unit (millicores, millibytes, milli-objects), rounded up like Kubernetes does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Milli(pub i128);

/// Parses a quantity in the Kubernetes serialization format; `None` when it is not one.
pub fn parse(text: &str) -> Option<Milli> {
    let text = text.trim();
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let number_end = unsigned.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return None;
    }
    // Value as digits / 10^scale, all kept exactly.
    let digits: i128 = format!("{whole}{fraction}").parse().ok()?;
    let mut scale = fraction.len() as i32;
    let mut multiplier: i128 = 1;
    match suffix {
        "" => {}
        "n" => scale += 9,
        "u" => scale += 6,
        "m" => scale += 3,
        "k" => scale -= 3,
        "M" => scale -= 6,
        "G" => scale -= 9,
        "T" => scale -= 12,
        "P" => scale -= 15,
        "E" => scale -= 18,
        "Ki" => multiplier = 1 << 10,
        "Mi" => multiplier = 1 << 20,
        "Gi" => multiplier = 1 << 30,
        "Ti" => multiplier = 1 << 40,
        "Pi" => multiplier = 1 << 50,
        "Ei" => multiplier = 1 << 60,
        exponent => {
            let exponent: i32 = exponent.strip_prefix(['e', 'E'])?.parse().ok()?;
            scale -= exponent;
        }
    }
    // milli = digits * multiplier * 1000 / 10^scale, rounded up.
    let numerator = digits.checked_mul(multiplier)?.checked_mul(1000)?;
    let milli = if scale >= 0 {
        let divisor = 10i128.checked_pow(u32::try_from(scale).ok()?)?;
        (numerator + divisor - 1) / divisor
    } else {
        numerator.checked_mul(10i128.checked_pow(u32::try_from(-scale).ok()?)?)?
    };
    Some(Milli(sign * milli))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kubernetes_forms() {
        assert_eq!(parse("2"), Some(Milli(2000)));
        assert_eq!(parse("500m"), Some(Milli(500)));
        assert_eq!(parse("0.5"), Some(Milli(500)));
        assert_eq!(parse("1.5Gi"), Some(Milli(1_610_612_736_000)));
        assert_eq!(parse("2Gi"), parse("2048Mi"));
        assert_eq!(parse("1k"), Some(Milli(1_000_000)));
        assert_eq!(parse("1e3"), parse("1k"));
        assert_eq!(parse("1n"), Some(Milli(1)), "rounded up");
        assert_eq!(parse("-1"), Some(Milli(-1000)));
        assert!(parse("1Gi") > parse("1G"));
    }

    #[test]
    fn refuses_what_is_not_a_quantity() {
        for bad in ["", "Gi", "2x", "1.2.3", "1 Gi", "abc", ".", "1e", "1e99999"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
