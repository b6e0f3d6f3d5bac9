//! Record fields, `p.x` and `p.x = v` (`GetField`, `SetField`): the field's name is a string
//! constant, and what a name means depends on the kind of value it is read from. A dict's field
//! is its string key (as in Lua); another kind of value with fields (a module, say) is one more
//! arm in [`get`] and [`set`].
//!
//! Both stay out of line (`inline(never)`): inlined into the interpreter's dispatch loop, the
//! dict lookup changed the loop's code enough to slow `examples/spectral_norm.mini` by 7%.

use super::builtins::{key_of, missing_key};
use super::{Fail, Globals, modules};
use crate::gil::Gil;
use crate::value::Value;

/// `obj.name`, where `name` is the field's name (a string constant). A dict without the key is
/// the error of `obj["name"]`, `key "name" not found`.
#[inline(never)]
pub fn get(obj: &Value, name: &Value, globals: &Globals, gil: Gil) -> Result<Value, Fail> {
    match obj {
        Value::Module(m) => modules::get(m, name, globals, gil),
        Value::Dict(d) => {
            let found = d.borrow(gil).get(&key_of(name)?).cloned();
            found.ok_or_else(|| missing_key(name, gil))
        }
        other => Err(format!("{} has no field {}", other.type_name(), quoted(name, gil)).into()),
    }
}

/// `obj.name = v`: stores the key `"name"` of a dict (adding it when missing).
#[inline(never)]
pub fn set(obj: &Value, name: &Value, v: Value, gil: Gil) -> Result<(), Fail> {
    match obj {
        Value::Dict(d) => {
            let k = key_of(name)?;
            let old = d.borrow_mut_to_store(&v, gil).insert(k, v);
            drop(old);
            Ok(())
        }
        other => Err(format!("cannot assign to field {} of {}", quoted(name, gil), other.type_name()).into()),
    }
}

/// A field's name in single quotes, as errors write it: `'x'`.
fn quoted(name: &Value, gil: Gil) -> String {
    match name {
        Value::Str(s) => format!("'{}'", s.text),
        other => other.to_text(gil).unwrap_or_default(),
    }
}
