//! Int intervals for the lowering: what is known of a native int's value, so that `+ - *`
//! that cannot overflow, and divisions by a value that cannot be zero, skip their checks.

/// The values an int may hold: `lo..=hi`. Computed in `i128`, so that the result of an
/// operation on two `i64` intervals is exact and can be compared with the `i64` range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub lo: i128,
    pub hi: i128,
}

/// What an int may hold when nothing is known.
pub const ANY: Interval = Interval { lo: i64::MIN as i128, hi: i64::MAX as i128 };

impl Interval {
    pub fn new(lo: i64, hi: i64) -> Interval {
        Interval { lo: lo as i128, hi: hi as i128 }
    }

    pub fn exact(v: i64) -> Interval {
        Interval::new(v, v)
    }

    /// The interval of `x + y`, `x - y` or `x * y` for `x` in `self` and `y` in `other`.
    pub fn add(self, other: Interval) -> Interval {
        Interval { lo: self.lo + other.lo, hi: self.hi + other.hi }
    }

    pub fn sub(self, other: Interval) -> Interval {
        Interval { lo: self.lo - other.hi, hi: self.hi - other.lo }
    }

    pub fn mul(self, other: Interval) -> Interval {
        let products = [self.lo * other.lo, self.lo * other.hi, self.hi * other.lo, self.hi * other.hi];
        Interval { lo: *products.iter().min().expect("four"), hi: *products.iter().max().expect("four") }
    }

    /// `x // d` and `x % d` (floored, as mini's) for a positive constant `d`.
    pub fn floor_div(self, d: i64) -> Interval {
        let d = d as i128;
        Interval { lo: self.lo.div_euclid(d), hi: self.hi.div_euclid(d) }
    }

    pub fn modulo(self, d: i64) -> Interval {
        if self.lo >= 0 && self.hi < d as i128 { self } else { Interval { lo: 0, hi: d as i128 - 1 } }
    }

    /// `x & y`: when either side is never negative, neither is the result, nor larger than it.
    pub fn bit_and(self, other: Interval) -> Interval {
        match (self.lo >= 0, other.lo >= 0) {
            (true, true) => Interval { lo: 0, hi: self.hi.min(other.hi) },
            (true, false) => Interval { lo: 0, hi: self.hi },
            (false, true) => Interval { lo: 0, hi: other.hi },
            (false, false) => ANY,
        }
    }

    /// `x >> n` for a count `n` in `count` that is never negative (a count past 63 shifts
    /// by 63): the extremes are at the corners, as the shift is monotonic in both.
    pub fn shr(self, count: Interval) -> Interval {
        let (c0, c1) = (count.lo.clamp(0, 63), count.hi.clamp(0, 63));
        Interval { lo: (self.lo >> c0).min(self.lo >> c1), hi: (self.hi >> c0).max(self.hi >> c1) }
    }

    /// `~x`, which is `-x - 1`.
    pub fn bit_not(self) -> Interval {
        Interval { lo: -self.hi - 1, hi: -self.lo - 1 }
    }

    /// Whether every value of the interval is an `i64`: the operation cannot overflow.
    pub fn fits(self) -> bool {
        self.lo >= ANY.lo && self.hi <= ANY.hi
    }

    /// What a checked operation's result holds once the check has passed.
    pub fn clamped(self) -> Interval {
        Interval { lo: self.lo.max(ANY.lo), hi: self.hi.min(ANY.hi) }
    }

    pub fn contains(self, v: i64) -> bool {
        self.lo <= v as i128 && v as i128 <= self.hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_operations() {
        let byte = Interval::new(0, 255);
        assert_eq!(byte.bit_and(ANY), byte);
        assert_eq!(ANY.bit_and(Interval::new(0, 7)), Interval::new(0, 7));
        assert_eq!(ANY.bit_and(Interval::new(-1, 7)), ANY);
        assert_eq!(Interval::new(-8, 255).shr(Interval::new(1, 100)), Interval::new(-4, 127));
        assert_eq!(ANY.shr(Interval::exact(63)), Interval::new(-1, 0));
        assert_eq!(Interval::new(-3, 5).bit_not(), Interval::new(-6, 2));
        assert_eq!(ANY.bit_not(), ANY);
    }

    #[test]
    fn products_and_sums_find_overflow() {
        let b = 1i64 << 30;
        let i = Interval::new(0, b);
        let sum = i.add(i).add(Interval::exact(1));
        assert!(sum.mul(sum).fits());
        let big = Interval::new(-(1 << 32), 1 << 32);
        assert!(!big.mul(big).fits());
        assert_eq!(ANY.add(Interval::exact(1)).clamped(), Interval { lo: ANY.lo + 1, hi: ANY.hi });
        assert!(!ANY.sub(Interval::exact(1)).fits());
        assert_eq!(Interval::new(-3, 2).mul(Interval::new(-5, 4)), Interval { lo: -12, hi: 15 });
    }

    #[test]
    fn floored_division_and_modulo_by_a_positive_constant() {
        assert_eq!(Interval::new(-7, 7).floor_div(2), Interval { lo: -4, hi: 3 });
        assert_eq!(Interval::new(-7, 7).modulo(5), Interval { lo: 0, hi: 4 });
        assert_eq!(Interval::new(1, 3).modulo(5), Interval { lo: 1, hi: 3 });
        assert!(!Interval::new(1, 9).contains(0));
        assert!(ANY.floor_div(1).fits());
    }
}
