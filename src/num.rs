//! Numeric helpers shared by the values, the interpreter and the JIT's runtime: they depend on
//! nothing but the standard library.

use std::cmp::Ordering;

/// Exact comparison of an int with a float (`None` when the float is NaN).
pub fn int_float_cmp(i: i64, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_63 {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    match i.cmp(&(t as i64)) {
        Ordering::Equal => 0.0f64.partial_cmp(&(f - t)),
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_float_comparison_is_exact() {
        assert_eq!(int_float_cmp(1, 1.0), Some(Ordering::Equal));
        assert_eq!(int_float_cmp(9_007_199_254_740_993, 9_007_199_254_740_992.0), Some(Ordering::Greater));
        assert_eq!(int_float_cmp(-1, -0.5), Some(Ordering::Less));
        assert_eq!(int_float_cmp(i64::MAX, 9.3e18), Some(Ordering::Less));
    }
}
