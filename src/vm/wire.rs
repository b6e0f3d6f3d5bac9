//! Values as bytes, for values that cross a process boundary: the results of forked workers
//! and of a process pool's calls, MPI's messages of values other than arrays, and an array's
//! header before MPI sends its elements (lang-spec/processes.md). Only data crosses: nil, bool, int, float,
//! string, list, dict and array; anything else (a function, a thread, a lock...) is an error
//! naming its type, as Python's pickle refuses a lambda.
//!
//! The format, little-endian, one tag byte per value:
//!
//! | tag | value | payload |
//! |---|---|---|
//! | 0, 1, 2 | nil, false, true | none |
//! | 3 | int | 8 bytes |
//! | 4 | float | its 8 bytes of bits |
//! | 5 | string | length (4 bytes), then that many bytes of UTF-8 |
//! | 6 | list | count (4 bytes), then each element |
//! | 7 | dict | count (4 bytes), then each key and its value, in the dict's order |
//! | 8 | array | kind (0 int, 1 float), rank r (1 byte, 1 to `MAX_DIMS`), r dimensions (8 bytes each), then each element's 8 bytes, row-major |
//!
//! Both directions are bounded: at most `MAX_NESTING` levels of lists and dicts (so a list that
//! contains itself is an error, not an endless message), and decoding checks every length
//! against the bytes left before it allocates, so corrupt bytes give an error, never a panic or
//! a huge allocation.

use crate::gil::Gil;
use crate::value::{ArrayObj, ElemKind, Key, MAX_ARRAY_LEN, MAX_DIMS, MAX_NESTING, Value};
use indexmap::IndexMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

const NIL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const INT: u8 = 3;
const FLOAT: u8 = 4;
const STR: u8 = 5;
const LIST: u8 = 6;
const DICT: u8 = 7;
const ARRAY: u8 = 8;

/// The error of bytes that are not a value this module wrote.
const CORRUPT: &str = "corrupt message from another process";

/// Appends the bytes of `v` to `out`, or says why it cannot cross.
pub fn encode(v: &Value, gil: Gil, out: &mut Vec<u8>) -> Result<(), String> {
    encode_at(v, gil, out, 0)
}

fn encode_at(v: &Value, gil: Gil, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    if depth > MAX_NESTING {
        return Err(format!(
            "cannot send a value nested more than {MAX_NESTING} levels deep (or that contains itself)"
        ));
    }
    match v {
        Value::Nil => out.push(NIL),
        Value::Bool(b) => out.push(if *b { TRUE } else { FALSE }),
        Value::Int(i) => {
            out.push(INT);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(FLOAT);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Str(s) => {
            out.push(STR);
            put_len(out, s.text.len())?;
            out.extend_from_slice(s.text.as_bytes());
        }
        Value::List(l) => {
            let items = l.borrow(gil);
            out.push(LIST);
            put_len(out, items.len())?;
            for item in items.iter() {
                encode_at(item, gil, out, depth + 1)?;
            }
        }
        Value::Dict(d) => {
            let map = d.borrow(gil);
            out.push(DICT);
            put_len(out, map.len())?;
            for (k, value) in map.iter() {
                encode_at(&k.to_value(), gil, out, depth + 1)?;
                encode_at(value, gil, out, depth + 1)?;
            }
        }
        Value::Array(a) => {
            put_array_header(a, out);
            out.reserve(a.data.len() * 8);
            for e in a.data.iter() {
                out.extend_from_slice(&e.load(Ordering::Relaxed).to_le_bytes());
            }
        }
        other => {
            return Err(format!(
                "cannot send a {} to another process (only nil, bool, int, float, string, list, dict and array)",
                other.type_name()
            ));
        }
    }
    Ok(())
}

/// Appends an array's tag, element kind, rank and dimensions: its bytes up to its elements.
/// MPI sends an array as these bytes followed by its elements as a message of their own
/// (vm/mpi.rs).
pub fn put_array_header(a: &ArrayObj, out: &mut Vec<u8>) {
    out.push(ARRAY);
    out.push(if a.kind == ElemKind::Float { 1 } else { 0 });
    let shape = a.shape();
    out.push(shape.len() as u8);
    for d in &shape {
        out.extend_from_slice(&(*d as u64).to_le_bytes());
    }
}

/// The element kind and dimensions of the array whose header (`put_array_header`) is all of
/// `bytes`; `None` when `bytes` are another value's (which never start with an array's tag).
pub fn array_header(bytes: &[u8]) -> Result<Option<(ElemKind, Vec<usize>)>, String> {
    if bytes.first() != Some(&ARRAY) {
        return Ok(None);
    }
    let mut r = Reader { bytes, pos: 1 };
    let (kind, dims, _) = r.array_shape()?;
    if r.pos != bytes.len() {
        return Err(CORRUPT.into());
    }
    Ok(Some((kind, dims)))
}

/// A length or count as 4 bytes.
fn put_len(out: &mut Vec<u8>, n: usize) -> Result<(), String> {
    let n = u32::try_from(n).map_err(|_| format!("cannot send a string, list or dict of {n} items"))?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

/// The value whose bytes are all of `bytes`.
pub fn decode(bytes: &[u8], gil: Gil) -> Result<Value, String> {
    let mut r = Reader { bytes, pos: 0 };
    let v = r.value(gil, 0)?;
    if r.pos != bytes.len() {
        return Err(CORRUPT.into());
    }
    Ok(v)
}

/// A cursor over the bytes being decoded.
struct Reader<'b> {
    bytes: &'b [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()).ok_or(CORRUPT)?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().map_err(|_| CORRUPT)?))
    }

    /// A count of items of at least `min_size` bytes each, checked against the bytes left.
    fn count(&mut self, min_size: usize) -> Result<usize, String> {
        let b = self.take(4)?;
        let n = u32::from_le_bytes(b.try_into().map_err(|_| CORRUPT)?) as usize;
        if n.saturating_mul(min_size) > self.bytes.len() - self.pos {
            return Err(CORRUPT.into());
        }
        Ok(n)
    }

    fn value(&mut self, gil: Gil, depth: usize) -> Result<Value, String> {
        if depth > MAX_NESTING {
            return Err(CORRUPT.into());
        }
        Ok(match self.byte()? {
            NIL => Value::Nil,
            FALSE => Value::Bool(false),
            TRUE => Value::Bool(true),
            INT => Value::Int(self.u64()? as i64),
            FLOAT => Value::Float(f64::from_bits(self.u64()?)),
            STR => {
                let n = self.count(1)?;
                let text = std::str::from_utf8(self.take(n)?).map_err(|_| CORRUPT)?;
                Value::str(text)
            }
            LIST => {
                let n = self.count(1)?;
                let items = (0..n).map(|_| self.value(gil, depth + 1)).collect::<Result<Vec<_>, _>>()?;
                Value::list(items, gil)
            }
            DICT => {
                let n = self.count(2)?;
                let mut map = IndexMap::with_capacity(n);
                for _ in 0..n {
                    let k = Key::from_value(&self.value(gil, depth + 1)?).map_err(|_| CORRUPT)?;
                    let v = self.value(gil, depth + 1)?;
                    map.insert(k, v);
                }
                Value::dict(map, gil)
            }
            ARRAY => self.array()?,
            _ => return Err(CORRUPT.into()),
        })
    }

    fn array(&mut self) -> Result<Value, String> {
        let (kind, dims, len) = self.array_shape()?;
        let bytes = self.take(len.checked_mul(8).ok_or(CORRUPT)?)?;
        let data: Box<[AtomicU64]> = bytes
            .chunks_exact(8)
            .map(|c| AtomicU64::new(u64::from_le_bytes(c.try_into().unwrap_or_default())))
            .collect();
        Ok(Value::Array(Rc::new(ArrayObj::from_buffer(kind, data, &dims))))
    }

    /// An array's element kind, dimensions and length, checked against `MAX_ARRAY_LEN`.
    fn array_shape(&mut self) -> Result<(ElemKind, Vec<usize>, usize), String> {
        let kind = match self.byte()? {
            0 => ElemKind::Int,
            1 => ElemKind::Float,
            _ => return Err(CORRUPT.into()),
        };
        let rank = self.byte()? as usize;
        if !(1..=MAX_DIMS).contains(&rank) {
            return Err(CORRUPT.into());
        }
        let mut dims = Vec::with_capacity(rank);
        let mut len: u64 = 1;
        for _ in 0..rank {
            let d = self.u64()?;
            len = len.checked_mul(d).filter(|&n| n <= MAX_ARRAY_LEN as u64).ok_or(CORRUPT)?;
            dims.push(d as usize);
        }
        Ok((kind, dims, len as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gil::with_gil;
    use crate::value::values_equal;

    /// Encodes and decodes `v`; the copy must be equal to it and print the same.
    fn round_trip(v: &Value, gil: Gil) {
        let mut bytes = Vec::new();
        encode(v, gil, &mut bytes).expect("encodes");
        let back = decode(&bytes, gil).expect("decodes");
        assert_eq!(values_equal(v, &back, gil), Ok(true));
        assert_eq!(v.to_text(gil), back.to_text(gil));
    }

    #[test]
    fn every_kind_of_data_crosses() {
        with_gil(|gil| {
            for v in [
                Value::Nil,
                Value::Bool(true),
                Value::Bool(false),
                Value::Int(i64::MIN),
                Value::Float(-0.0),
                Value::Float(f64::INFINITY),
                Value::str("héllo, ✓"),
            ] {
                round_trip(&v, gil);
            }
            let mut a = ArrayObj::new(ElemKind::Float, 6, 0).expect("allocates");
            a = ArrayObj::from_buffer(a.kind, a.into_data(), &[2, 3]);
            a.data[5].store(2.5f64.to_bits(), Ordering::Relaxed);
            let ints = ArrayObj::new(ElemKind::Int, 3, 7).expect("allocates");
            let inner = Value::list(vec![Value::Int(1), Value::Array(Rc::new(ints))], gil);
            let mut map = IndexMap::new();
            map.insert(Key::Str(Rc::new(crate::value::StrObj::new("b"))), inner);
            map.insert(Key::Int(3), Value::Array(Rc::new(a)));
            map.insert(Key::Nil, Value::Float(0.5));
            round_trip(&Value::dict(map, gil), gil);
        });
    }

    #[test]
    fn an_array_header_gives_kind_and_dimensions() {
        let a = ArrayObj::new(ElemKind::Int, 6, 0).expect("allocates");
        let a = ArrayObj::from_buffer(a.kind, a.into_data(), &[3, 2]);
        let mut bytes = Vec::new();
        put_array_header(&a, &mut bytes);
        assert_eq!(array_header(&bytes), Ok(Some((ElemKind::Int, vec![3, 2]))));
        bytes.push(0);
        assert!(array_header(&bytes).is_err(), "bytes after the header");
        assert_eq!(array_header(&[INT, 0, 0, 0, 0, 0, 0, 0, 0]), Ok(None));
    }

    #[test]
    fn a_nan_crosses_bit_for_bit() {
        with_gil(|gil| {
            let mut bytes = Vec::new();
            encode(&Value::Float(f64::NAN), gil, &mut bytes).expect("encodes");
            let Ok(Value::Float(f)) = decode(&bytes, gil) else { panic!("a float") };
            assert_eq!(f.to_bits(), f64::NAN.to_bits());
        });
    }

    #[test]
    fn functions_and_self_containing_lists_do_not_cross() {
        with_gil(|gil| {
            let l = crate::value::List::new(vec![], gil);
            l.borrow_mut(gil).push(Value::List(l.clone()));
            let err = encode(&Value::List(l.clone()), gil, &mut Vec::new()).expect_err("refused");
            assert!(err.contains("contains itself"), "{err}");
            l.borrow_mut(gil).clear();
            let err =
                encode(&Value::Builtin(crate::builtin::Builtin::Print), gil, &mut Vec::new()).expect_err("refused");
            assert!(err.starts_with("cannot send a function"), "{err}");
        });
    }

    #[test]
    fn corrupt_bytes_are_an_error_never_a_panic() {
        with_gil(|gil| {
            let mut good = Vec::new();
            let inner = Value::list(vec![Value::str("x"), Value::Int(1)], gil);
            encode(&Value::list(vec![inner, Value::Float(1.5)], gil), gil, &mut good).expect("encodes");
            // every truncation, every byte flipped, and lengths that promise more than there is
            for n in 0..good.len() {
                assert!(decode(&good[..n], gil).is_err());
            }
            for i in 0..good.len() {
                for flip in [1u8, 0x80, 0xff] {
                    let mut bad = good.clone();
                    bad[i] ^= flip;
                    let _ = decode(&bad, gil);
                }
            }
            assert!(decode(&[LIST, 0xff, 0xff, 0xff, 0xff], gil).is_err());
            let huge = [&[ARRAY, 1, 2][..], &u64::MAX.to_le_bytes(), &2u64.to_le_bytes()].concat();
            assert!(decode(&huge, gil).is_err());
            let deep: Vec<u8> = std::iter::repeat_n([LIST, 1, 0, 0, 0], MAX_NESTING + 5).flatten().collect();
            assert!(decode(&deep, gil).is_err());
        });
    }
}
