//! Small value languages of the manifest: Kubernetes quantities, durations, DNS labels.
//!
//! Each parser returns a canonical form, so "1000m" and "1", or "60s" and "1m", resolve (and hash) the
//! same.

use serde::Serialize;

/// What a quantity measures, which decides its unit and canonical form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Unit {
    /// CPU, in thousandths of a core.
    Millicores,
    Bytes,
    /// Whole things (GPUs).
    Count,
}

/// A parsed quantity: an amount of its unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Quantity {
    pub amount: u128,
    pub unit: Unit,
}

impl Serialize for Quantity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = self.amount;
        match self.unit {
            Unit::Millicores if v.is_multiple_of(1000) => write!(f, "{}", v / 1000),
            Unit::Millicores => write!(f, "{v}m"),
            Unit::Count => write!(f, "{v}"),
            Unit::Bytes => {
                for (suffix, factor) in BINARY.iter().rev() {
                    if v >= *factor && v.is_multiple_of(*factor) {
                        return write!(f, "{}{suffix}", v / factor);
                    }
                }
                for (suffix, factor) in DECIMAL.iter().rev() {
                    if v >= *factor && v.is_multiple_of(*factor) {
                        return write!(f, "{}{suffix}", v / factor);
                    }
                }
                write!(f, "{v}")
            }
        }
    }
}

const BINARY: [(&str, u128); 6] =
    [("Ki", 1 << 10), ("Mi", 1 << 20), ("Gi", 1 << 30), ("Ti", 1 << 40), ("Pi", 1 << 50), ("Ei", 1 << 60)];
const DECIMAL: [(&str, u128); 6] = [
    ("k", 1_000),
    ("M", 1_000_000),
    ("G", 1_000_000_000),
    ("T", 1_000_000_000_000),
    ("P", 1_000_000_000_000_000),
    ("E", 1_000_000_000_000_000_000),
];

/// Parses a Kubernetes quantity in `unit`; the error says what is accepted.
pub fn parse_quantity(text: &str, unit: Unit) -> Result<Quantity, String> {
    let text = text.trim();
    let number_end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') || fraction.len() > 9 {
        return Err(expected(unit));
    }
    // The digits of both parts as one number, without a decimal point.
    let mantissa = whole
        .bytes()
        .chain(fraction.bytes())
        .try_fold(0u128, |n, digit| n.checked_mul(10)?.checked_add(u128::from(digit - b'0')))
        .ok_or_else(|| expected(unit))?;
    let scale = 10u128.pow(fraction.len() as u32);
    let multiplier = match (unit, suffix) {
        (Unit::Millicores, "") => 1000,
        (Unit::Millicores, "m") | (Unit::Count | Unit::Bytes, "") => 1,
        (Unit::Bytes, suffix) => {
            let factor = BINARY.iter().chain(DECIMAL.iter()).find(|(s, _)| *s == suffix).map(|(_, f)| *f);
            factor.ok_or_else(|| expected(unit))?
        }
        _ => return Err(expected(unit)),
    };
    let scaled = mantissa.checked_mul(multiplier).ok_or_else(|| expected(unit))?;
    if !scaled.is_multiple_of(scale) {
        return Err(format!("{} (too precise: the smallest unit is {})", expected(unit), smallest(unit)));
    }
    Ok(Quantity { amount: scaled / scale, unit })
}

fn expected(unit: Unit) -> String {
    match unit {
        Unit::Millicores => "expected CPU cores such as \"500m\", \"2\" or 0.5".to_string(),
        Unit::Bytes => "expected a size such as \"512Mi\", \"2Gi\" or \"1G\"".to_string(),
        Unit::Count => "expected a whole number such as 1".to_string(),
    }
}

fn smallest(unit: Unit) -> &'static str {
    match unit {
        Unit::Millicores => "1m",
        Unit::Bytes => "1 byte",
        Unit::Count => "1",
    }
}

/// A duration in whole seconds, written like "30s", "5m", "1h30m" or "2d".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(pub u64);

impl Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::fmt::Display for Duration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut rest = self.0;
        if rest == 0 {
            return write!(f, "0s");
        }
        for (unit, seconds) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
            if rest >= seconds {
                write!(f, "{}{unit}", rest / seconds)?;
                rest %= seconds;
            }
        }
        Ok(())
    }
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const HELP: &str = "expected a duration such as \"30s\", \"5m\", \"1h30m\" or \"2d\"";
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(HELP.to_string());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(HELP.to_string());
        }
        let amount: u64 = rest[..digits].parse().map_err(|_| HELP.to_string())?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => return Err(HELP.to_string()),
        };
        rest = &rest[unit_len..];
        total = amount.checked_mul(factor).and_then(|s| total.checked_add(s)).ok_or_else(|| HELP.to_string())?;
    }
    Ok(Duration(total))
}

/// Whether `name` is a DNS label (RFC 1123): 1–63 of a-z, 0-9 and '-', starting and ending alphanumeric.
pub fn is_dns_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// The DNS label closest to `name`, for help text: lowercased, other characters turned into '-'.
pub fn dns_label_like(name: &str) -> String {
    let mut label: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    label.truncate(63);
    label.trim_matches('-').to_string()
}

/// Whether `name` is a Python identifier made of ASCII letters, digits and '_'.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `name` is an environment variable name: letters, digits, '_', not starting with a digit.
pub fn is_env_name(name: &str) -> bool {
    is_identifier(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_resolve_to_one_canonical_form() {
        let cpu = |t| parse_quantity(t, Unit::Millicores).map(|q| q.to_string());
        assert_eq!(cpu("500m").unwrap(), "500m");
        assert_eq!(cpu("0.5").unwrap(), "500m");
        assert_eq!(cpu("1000m").unwrap(), "1");
        assert_eq!(cpu("2").unwrap(), "2");
        assert!(cpu("2Gi").is_err());
        assert!(cpu("0.0005").is_err());
        assert!(cpu("").is_err());
        assert!(cpu("-1").is_err());
        let bytes = |t| parse_quantity(t, Unit::Bytes).map(|q| q.to_string());
        assert_eq!(bytes("2Gi").unwrap(), "2Gi");
        assert_eq!(bytes("2048Mi").unwrap(), "2Gi");
        assert_eq!(bytes("1.5Gi").unwrap(), "1536Mi");
        assert_eq!(bytes("1G").unwrap(), "1G");
        assert_eq!(bytes("100").unwrap(), "100");
        assert!(bytes("2GB").is_err());
        assert!(bytes("1.5").is_err());
        assert_eq!(parse_quantity("1", Unit::Count).unwrap().to_string(), "1");
        assert!(parse_quantity("0.5", Unit::Count).is_err());
        // Past what 128 bits hold, and past it once scaled: refused, not wrapped.
        let size = |text: &str| parse_quantity(text, Unit::Bytes).map(|q| q.to_string());
        assert!(size(&"9".repeat(40)).is_err());
        assert!(size(&format!("{}Ei", "9".repeat(30))).is_err());
        assert_eq!(size(&"9".repeat(38)).unwrap(), "9".repeat(38));
        assert_eq!(cpu(".5").unwrap(), "500m");
        assert!(cpu(".").is_err());
        // Serialised as their canonical text.
        let memory = parse_quantity("1536Mi", Unit::Bytes).unwrap();
        assert_eq!(serde_json::to_string(&memory).unwrap(), "\"1536Mi\"");
        assert_eq!(serde_json::to_string(&Duration(5400)).unwrap(), "\"1h30m\"");
    }

    #[test]
    fn durations_resolve_to_one_canonical_form() {
        assert_eq!(parse_duration("60s").unwrap().to_string(), "1m");
        assert_eq!(parse_duration("1h30m").unwrap().to_string(), "1h30m");
        assert_eq!(parse_duration("90m").unwrap().to_string(), "1h30m");
        assert_eq!(parse_duration("2d").unwrap(), Duration(172_800));
        for bad in ["", "5", "m", "5 m", "1.5h", "5x", "99999999999999999999s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("backend-2"));
        for bad in ["", "Backend", "-a", "a-", "a_b", &"a".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
        assert_eq!(dns_label_like("My_App"), "my-app");
    }
}
