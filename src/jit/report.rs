//! `mini check --jit-report`: without running the program, says for which argument types each
//! top-level function could be compiled, and why not otherwise.
//!
//! The globals a function reads are known only at run time; the report assumes the values the
//! main program gives them in its straight-line definitions (`fn f`, `let n = 100`), and other
//! globals unknown. Candidate argument types come from how each parameter is used: parameters
//! indexed, iterated by `for` or given to `len` are tried as float and int arrays, the others as
//! int and float. Every candidate gets a line: the signatures that compile, with their result
//! type, and the ones that do not, with the reason.

use super::MAX_SPECS;
use super::infer::{GlobalsView, Session};
use super::types::{MAX_PARAMS, Sig, Ty};
use crate::builtin::Builtin;
use crate::bytecode::{Instr, Proto, Reg};
use crate::compiler::Program;
use crate::source::SourceMap;
use crate::value::{Closure, Value};
use std::fmt::Write;
use std::rc::Rc;

/// The most signatures tried per function.
const MAX_CANDIDATES: usize = 16;

struct StaticGlobals {
    values: Vec<Value>,
    names: Vec<Rc<str>>,
    /// The globals some file assigns after defining them.
    assigned: Vec<bool>,
}

impl GlobalsView for StaticGlobals {
    fn value(&self, g: u16) -> Value {
        self.values[g as usize].clone()
    }

    fn name(&self, g: u16) -> String {
        self.names[g as usize].to_string()
    }

    fn assigned(&self, g: u16) -> bool {
        self.assigned.get(g as usize).copied().unwrap_or(false)
    }

    fn undefined(&self, g: u16) -> String {
        format!("reads global '{}', whose value is known only when the program runs", self.names[g as usize])
    }
}

/// The report for a compiled (not yet run) program.
pub fn jit_report(program: &Program, src: &SourceMap) -> String {
    let globals = static_globals(program);
    let arrays = array_params(&globals);
    let mut out = String::new();
    for v in &globals.values {
        // a function value here is the program's own: builtins are `Value::Builtin`, even when
        // the program defines a function of a builtin's name (`fn sort(a)`)
        let Value::Func(f) = v else { continue };
        let proto = &f.proto;
        let _ = writeln!(out, "{} ({}):", proto.name, super::where_defined(src, proto));
        let mut verdicts: Vec<(String, Vec<String>)> = Vec::new();
        for sig in candidates(proto, &arrays) {
            let mut session = Session::new(&globals, MAX_SPECS);
            let verdict = match session.infer(proto.clone(), sig) {
                Ok(()) => format!("compiles, returns {}", session.plans[0].ret_ty().name()),
                Err(r) => {
                    let plan = &session.plans[r.plan];
                    let why = match r.pc {
                        Some(pc) => super::why::explain(src, &plan.proto, pc, &r.reason),
                        None => r.reason,
                    };
                    let via = if r.plan == 0 {
                        String::new()
                    } else {
                        format!("calls {}, which cannot: ", plan.sig.display(&plan.proto.name))
                    };
                    format!("cannot compile: {via}{why}")
                }
            };
            match verdicts.iter_mut().find(|(v, _)| *v == verdict) {
                Some((_, sigs)) => sigs.push(sig.display(&proto.name)),
                None => verdicts.push((verdict, vec![sig.display(&proto.name)])),
            }
        }
        for (verdict, sigs) in verdicts {
            let _ = writeln!(out, "  {}: {verdict}", sigs.join(", "));
        }
    }
    out
}

/// The values the straight-line top-level definitions of the program's files give globals:
/// functions, constants and imported modules. Everything else is unknown (`Undef`).
fn static_globals(program: &Program) -> StaticGlobals {
    let mut values: Vec<Value> = vec![Value::Undef; program.globals.len()];
    for module in &program.modules {
        file_globals(&module.main, program, &mut values);
    }
    for (g, name) in program.globals.iter().enumerate() {
        if let Some(b) = crate::builtin::Builtin::from_name(name)
            && matches!(values[g], Value::Undef)
        {
            values[g] = Value::Builtin(b);
        }
    }
    let mains: Vec<&Proto> = program.modules.iter().map(|m| &*m.main).collect();
    let mirrors = super::mirror::Mirrors::new(&mains, program.globals.len());
    let assigned = (0..program.globals.len()).map(|g| mirrors.assigned(g)).collect();
    StaticGlobals { values, names: program.globals.clone(), assigned }
}

/// The values one file's top-level function `main` gives globals in straight-line definitions.
fn file_globals(main: &Proto, program: &Program, values: &mut [Value]) {
    for pair in main.code.windows(2) {
        let (def, a) = match pair[1] {
            Instr::DefGlobal { a, g } => (g as usize, a),
            _ => continue,
        };
        if !matches!(values[def], Value::Undef) {
            continue;
        }
        values[def] = match pair[0] {
            Instr::Closure { a: r, p } if r == a => {
                let proto = main.protos[p as usize].clone();
                Value::Func(Rc::new(Closure::plain(proto)))
            }
            Instr::LoadInt { a: r, v } if r == a => Value::Int(v as i64),
            Instr::LoadBool { a: r, b } if r == a => Value::Bool(b),
            Instr::LoadK { a: r, k } if r == a => match &main.consts[k as usize] {
                v @ (Value::Int(_) | Value::Float(_)) => v.clone(),
                _ => Value::Undef,
            },
            Instr::Import { a: r, m } if r == a => {
                program.modules.get(m as usize).map_or(Value::Undef, |m| Value::Module(m.clone()))
            }
            _ => Value::Undef,
        };
    }
}

/// Signatures to try: each parameter as int or float, or as a float or int array when the
/// function indexes it.
fn candidates(proto: &Rc<Proto>, arrays: &[(Rc<Proto>, Vec<bool>)]) -> Vec<Sig> {
    let n = proto.nparams.min(MAX_PARAMS);
    let is_array = &arrays.iter().find(|(p, _)| Rc::ptr_eq(p, proto)).expect("every function is analysed").1;
    let options: Vec<[Ty; 2]> = (0..n)
        .map(|r| match rank_used(proto, r as Reg) {
            Some(rank) => [Ty::FloatArrayN(rank), Ty::IntArrayN(rank)],
            None if is_array[r] => [Ty::FloatArray, Ty::IntArray],
            None => [Ty::Int, Ty::Float],
        })
        .collect();
    let mut sigs = Vec::new();
    let total = 1usize.checked_shl(n as u32).unwrap_or(usize::MAX);
    if total <= MAX_CANDIDATES {
        for bits in 0..total {
            let tys: Vec<Ty> = options.iter().enumerate().map(|(i, o)| o[(bits >> i) & 1]).collect();
            sigs.push(Sig::from_tys(&tys));
        }
    } else {
        for choice in 0..2 {
            let tys: Vec<Ty> = options.iter().map(|o| o[choice]).collect();
            sigs.push(Sig::from_tys(&tys));
        }
    }
    sigs
}

/// For every top-level function, which parameters are used as arrays: indexed, stored into,
/// iterated, or passed on to a parameter used as an array (to a fixpoint).
fn array_params(globals: &StaticGlobals) -> Vec<(Rc<Proto>, Vec<bool>)> {
    let funcs: Vec<Rc<Proto>> = globals
        .values
        .iter()
        .filter_map(|v| if let Value::Func(f) = v { Some(f.proto.clone()) } else { None })
        .collect();
    let mut arrays: Vec<(Rc<Proto>, Vec<bool>)> =
        funcs.iter().map(|p| (p.clone(), (0..p.nparams).map(|r| indexed(p, r as Reg)).collect())).collect();
    for _ in 0..funcs.len() {
        let mut changed = false;
        for i in 0..arrays.len() {
            let proto = arrays[i].0.clone();
            for r in 0..proto.nparams {
                if !arrays[i].1[r] && passed_as_array(&proto, r as Reg, globals, &arrays) {
                    arrays[i].1[r] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    arrays
}

/// Whether register `r` is moved into an argument of a call to a known function whose
/// parameter there is used as an array.
fn passed_as_array(proto: &Proto, r: Reg, globals: &StaticGlobals, arrays: &[(Rc<Proto>, Vec<bool>)]) -> bool {
    let code = &proto.code;
    code.iter().enumerate().any(|(pc, ins)| {
        let Instr::Move { a: dst, b } = *ins else { return false };
        if b != r {
            return false;
        }
        let Some(Instr::Call { a, n }) = code[pc..].iter().find(|i| matches!(i, Instr::Call { .. })).copied() else {
            return false;
        };
        if dst <= a || dst > a + n {
            return false;
        }
        let callee = code[..pc].iter().rev().find_map(|i| match *i {
            Instr::GetGlobal { a: ca, g } if ca == a => Some(g),
            _ => None,
        });
        let Some(Value::Func(f)) = callee.map(|g| globals.value(g)) else { return false };
        let k = (dst - a - 1) as usize;
        arrays.iter().any(|(p, flags)| Rc::ptr_eq(p, &f.proto) && flags.get(k) == Some(&true))
    })
}

/// The number of indexes `r[i, j, ...]` uses when register `r` is indexed with several.
fn rank_used(proto: &Proto, r: Reg) -> Option<u8> {
    proto.code.iter().find_map(|ins| match *ins {
        Instr::GetIndexN { b, n, .. } if b == r => Some(n),
        Instr::SetIndexN { a, n, .. } if a == r => Some(n),
        _ => None,
    })
}

/// Whether register `r` is used as an array: indexed, stored into, iterated (`for v in r`, which
/// iterates a copy), or the first argument of a builtin that takes an array (`len(r)`).
fn indexed(proto: &Proto, r: Reg) -> bool {
    let code = &proto.code;
    code.iter().enumerate().any(|(pc, ins)| match *ins {
        Instr::GetIndex { b, .. } => b == r,
        Instr::SetIndex { a, .. } => a == r,
        Instr::GetIndexN { b, .. } => b == r,
        Instr::SetIndexN { a, .. } => a == r,
        Instr::IterPrep { a } => a == r || (pc > 0 && matches!(code[pc - 1], Instr::Move { a: d, b } if d == a && b == r)),
        Instr::Move { a: d, b } if b == r => {
            let next_call = code[pc..].iter().find(|i| matches!(i, Instr::CallBuiltin { .. } | Instr::Call { .. }));
            matches!(next_call, Some(Instr::CallBuiltin { a, f: Builtin::Len | Builtin::AtomicAdd | Builtin::AtomicCas, .. })
                if *a == d)
        }
        _ => false,
    })
}
