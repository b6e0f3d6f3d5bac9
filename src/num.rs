//! Numeric helpers shared by the values, the interpreter and the JIT's runtime: they depend on
//! nothing but the standard library.

use std::cmp::Ordering;

pub const OVERFLOW: &str = "integer overflow";
pub const DIV_ZERO: &str = "division by zero";

/// Floored integer division, as in Python; `None` on overflow, `Err` on division by zero.
#[inline]
pub fn int_floordiv(a: i64, b: i64) -> Result<i64, &'static str> {
    if b == 0 {
        return Err(DIV_ZERO);
    }
    let q = a.checked_div(b).ok_or(OVERFLOW)?;
    Ok(if (a % b != 0) && ((a < 0) != (b < 0)) { q - 1 } else { q })
}

/// Integer modulo with the sign of the divisor, as in Python.
#[inline]
pub fn int_mod(a: i64, b: i64) -> Result<i64, &'static str> {
    if b == 0 {
        return Err(DIV_ZERO);
    }
    let r = a.wrapping_rem(b);
    Ok(if r != 0 && ((r < 0) != (b < 0)) { r + b } else { r })
}

/// The multiplier that turns `x % d` by a constant `d` into two multiplications ([`fast_mod`]),
/// or 0 when `d` is outside `2..2^32`. Division takes 10 to 40 cycles, the multiplications 6.
pub fn fast_mod_multiplier(d: i64) -> u64 {
    if (2..=u32::MAX as i64).contains(&d) { u64::MAX / d as u64 + 1 } else { 0 }
}

/// `x % d` for `x < 2^32` and `2 <= d < 2^32` by Lemire, Kaser and Kurz's direct computation of
/// the remainder ("Faster remainder by direct computation", 2019), exact for all such operands
/// when `m` is `fast_mod_multiplier(d)`, i.e. `ceil(2^64 / d)`.
#[inline]
pub fn fast_mod(x: u32, m: u64, d: u32) -> u32 {
    let fraction = m.wrapping_mul(x as u64);
    ((fraction as u128 * d as u128) >> 64) as u32
}

/// Python's float `divmod`: the floored quotient and the remainder with the divisor's sign.
pub fn float_divmod(a: f64, b: f64) -> Result<(f64, f64), &'static str> {
    if b == 0.0 {
        return Err(DIV_ZERO);
    }
    let mut m = a % b;
    let mut div = (a - m) / b;
    if m != 0.0 {
        if (b < 0.0) != (m < 0.0) {
            m += b;
            div -= 1.0;
        }
    } else {
        m = 0.0f64.copysign(b);
    }
    let floordiv = if div != 0.0 {
        let f = div.floor();
        if div - f > 0.5 { f + 1.0 } else { f }
    } else {
        0.0f64.copysign(a / b)
    };
    Ok((floordiv, m))
}

/// `a ** exp` for ints, `None` on overflow.
pub fn checked_int_pow(a: i64, exp: u64) -> Option<i64> {
    let mut result: i64 = 1;
    let mut base = a;
    let mut exp = exp;
    while exp > 0 {
        if exp & 1 == 1 {
            result = result.checked_mul(base)?;
        }
        exp >>= 1;
        if exp > 0 {
            base = base.checked_mul(base)?;
        }
    }
    Some(result)
}

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
    fn floor_division_and_modulo_follow_python() {
        assert_eq!(int_floordiv(-7, 2), Ok(-4));
        assert_eq!(int_mod(-7, 2), Ok(1));
        assert_eq!(int_mod(7, -2), Ok(-1));
        assert_eq!(int_floordiv(i64::MIN, -1), Err(OVERFLOW));
        assert_eq!(int_mod(i64::MIN, -1), Ok(0));
        assert_eq!(float_divmod(-7.5, 2.0), Ok((-4.0, 0.5)));
        assert_eq!(float_divmod(7.5, -2.0), Ok((-4.0, -0.5)));
    }

    #[test]
    fn fast_mod_equals_the_remainder() {
        let divisors =
            [2u32, 3, 7, 10, 641, 65_535, 65_536, 1_000_003, 0x7fff_ffff, 0x8000_0001, u32::MAX - 1, u32::MAX];
        let mut x: u32 = 12_345;
        for &d in &divisors {
            let m = fast_mod_multiplier(d as i64);
            for probe in [0, 1, d - 1, d, d.wrapping_add(1), u32::MAX, u32::MAX - 1, u32::MAX / d * d] {
                assert_eq!(fast_mod(probe, m, d), probe % d, "{probe} % {d}");
            }
            for _ in 0..100_000 {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                assert_eq!(fast_mod(x, m, d), x % d, "{x} % {d}");
            }
        }
        assert_eq!(fast_mod_multiplier(1), 0);
        assert_eq!(fast_mod_multiplier(0), 0);
        assert_eq!(fast_mod_multiplier(-7), 0);
        assert_eq!(fast_mod_multiplier(1 << 32), 0);
    }

    #[test]
    fn int_powers_check_overflow() {
        assert_eq!(checked_int_pow(3, 4), Some(81));
        assert_eq!(checked_int_pow(-2, 63), Some(i64::MIN));
        assert_eq!(checked_int_pow(2, 63), None);
        assert_eq!(checked_int_pow(0, 0), Some(1));
    }

    #[test]
    fn int_float_comparison_is_exact() {
        assert_eq!(int_float_cmp(1, 1.0), Some(Ordering::Equal));
        assert_eq!(int_float_cmp(9_007_199_254_740_993, 9_007_199_254_740_992.0), Some(Ordering::Greater));
        assert_eq!(int_float_cmp(-1, -0.5), Some(Ordering::Less));
        assert_eq!(int_float_cmp(i64::MAX, 9.3e18), Some(Ordering::Less));
    }
}
