//! Lowering one inferred plan to Cranelift IR: registers become Cranelift variables per type,
//! bytecode jump targets become blocks, and every error the interpreter would raise becomes a
//! cold block that records it and returns its status (no traps; see runtime.rs).
//!
//! A compiled function's signature is `(room, args...) -> (result, status)`: `room` is how many
//! more frames may be pushed before `stack overflow`, each
//! int/float/bool argument one parameter, each 1-D array three (data pointer, length, own word:
//! see jit/alloc.rs), and an array of several dimensions one more than its dimensions (data
//! pointer, then each dimension); an array result is a 1-D array's three words.

use super::infer::{Plan, T, Target};
use super::interval::{self, Interval};
use super::mirror::Mirrors;
use super::prekey::Named;
use super::runtime::{GlobalSite, Site, status};
use super::types::Ty;
use crate::ast::BinOp;
use crate::builtin::Builtin;
use crate::bytecode::{self, Flow, Instr, Reg};
use crate::value::{ElemKind, Value};
pub use alloc::allocates;
use cranelift::codegen::ir::condcodes::CondCode;
use cranelift::codegen::ir::{BlockArg, FuncRef, InstructionData, Opcode, UserFuncName, ValueDef};
use cranelift::prelude::{
    AbiParam, Block, FloatCC, FunctionBuilder, InstBuilder, IntCC, MemFlagsData, Signature, StackSlotData,
    StackSlotKind, Variable, types,
};
use cranelift::prelude::{Type, Value as CValue};
use cranelift_jit::JITModule;
use cranelift_module::{FuncId, Module};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use versions::{Assumed, Loops, ROOM_ASSUMED};

/// The prefix of the symbols that stand for addresses of this process in compiled code (see
/// `Lower::address`); the rest of the name is the address in hex.
const ADDRESS_SYMBOL: &str = "mini_addr_";

/// The imported data symbol that stands for `addr` in compiled code (`Lower::address`).
pub fn address_data(module: &mut JITModule, addr: usize) -> Option<cranelift_module::DataId> {
    let name = format!("{ADDRESS_SYMBOL}{addr:x}");
    module.declare_data(&name, cranelift_module::Linkage::Import, false, false).ok()
}

/// The address that a symbol of `Lower::address` stands for (the JIT's symbol lookup, engine.rs);
/// None for any other name.
pub fn address_of_symbol(name: &str) -> Option<*const u8> {
    let hex = name.strip_prefix(ADDRESS_SYMBOL)?;
    let addr = usize::from_str_radix(hex, 16).ok()?;
    // the address was exposed where `address` was given it (a pointer cast to an integer)
    Some(std::ptr::with_exposed_provenance(addr))
}

mod alloc;
mod funcargs;
mod ndarray;
mod numtag;
mod prange;
mod versions;

pub use prange::{Outlining, Region, parallel_loops};

/// The runtime functions native code calls, in the order of `HELPERS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Helper {
    Site,
    SafePoint,
    Sin,
    Cos,
    Tan,
    Exp,
    Log,
    Powf,
    FloatFloorDiv,
    FloatMod,
    IntPow,
    CmpIntFloat,
    Random,
    Randint,
    Uniform,
    Gauss,
    ArrayHas,
    PrangePlan,
    DrawSeed,
    SeedPending,
    PrangeRun,
    PrangeFailure,
    PrangeSequential,
    ArrayNew,
    ArrayNewShaped,
    ArrayFree,
    ArrayReleaseAll,
    ArrayRetain,
    ArrayRelease,
}

/// A helper's symbol, address, parameter and result types.
/// The function of helper `h` in `module`: declared (imported) at its first use, so that an
/// engine declares only the helpers its code calls.
pub fn helper_id(module: &mut JITModule, ids: &mut HashMap<Helper, FuncId>, h: Helper) -> FuncId {
    if let Some(id) = ids.get(&h) {
        return *id;
    }
    let def = helpers().into_iter().find(|d| d.helper == h).expect("every helper is in helpers()");
    let mut sig = module.make_signature();
    sig.params.extend(def.params.iter().map(|t| AbiParam::new(*t)));
    sig.returns.extend(def.returns.iter().map(|t| AbiParam::new(*t)));
    // an import of a name no other declaration has: it cannot clash
    let id =
        module.declare_function(def.name, cranelift_module::Linkage::Import, &sig).expect("helper names are unique");
    ids.insert(h, id);
    id
}

pub struct HelperDef {
    pub helper: Helper,
    pub name: &'static str,
    pub addr: *const u8,
    pub params: &'static [Type],
    pub returns: &'static [Type],
}

const I64: Type = types::I64;
const F64: Type = types::F64;
const I8: Type = types::I8;

/// Every helper, with the signature native code calls it with.
pub fn helpers() -> Vec<HelperDef> {
    use super::parallel as par;
    use super::runtime as rt;
    let d = |helper, name, addr: *const u8, params, returns| HelperDef { helper, name, addr, params, returns };
    vec![
        d(Helper::Site, "mini_jit_site", rt::mini_jit_site as *const u8, &[I64, I64, I64, I64], &[I64]),
        d(Helper::SafePoint, "mini_jit_safe_point", rt::mini_jit_safe_point as *const u8, &[I64], &[]),
        d(Helper::Sin, "mini_sin", rt::mini_sin as *const u8, &[F64], &[F64]),
        d(Helper::Cos, "mini_cos", rt::mini_cos as *const u8, &[F64], &[F64]),
        d(Helper::Tan, "mini_tan", rt::mini_tan as *const u8, &[F64], &[F64]),
        d(Helper::Exp, "mini_exp", rt::mini_exp as *const u8, &[F64], &[F64]),
        d(Helper::Log, "mini_log", rt::mini_log as *const u8, &[F64], &[F64]),
        d(Helper::Powf, "mini_powf", rt::mini_powf as *const u8, &[F64, F64], &[F64]),
        d(Helper::FloatFloorDiv, "mini_float_floordiv", rt::mini_float_floordiv as *const u8, &[F64, F64], &[F64]),
        d(Helper::FloatMod, "mini_float_mod", rt::mini_float_mod as *const u8, &[F64, F64], &[F64]),
        d(Helper::IntPow, "mini_int_pow", rt::mini_int_pow as *const u8, &[I64, I64], &[I64, I64]),
        d(Helper::CmpIntFloat, "mini_cmp_int_float", rt::mini_cmp_int_float as *const u8, &[I64, F64], &[I64]),
        d(Helper::Random, "mini_random", rt::mini_random as *const u8, &[], &[F64]),
        d(Helper::Randint, "mini_randint", rt::mini_randint as *const u8, &[I64, I64], &[I64]),
        d(Helper::Uniform, "mini_uniform", rt::mini_uniform as *const u8, &[F64, F64], &[F64]),
        d(Helper::Gauss, "mini_gauss", rt::mini_gauss as *const u8, &[F64, F64], &[F64]),
        d(Helper::ArrayHas, "mini_array_has", rt::mini_array_has as *const u8, &[I64, I64, I64, I64], &[I8]),
        d(Helper::PrangePlan, "mini_prange_plan", rt::mini_prange_plan as *const u8, &[I64; 5], &[I64, I64]),
        d(Helper::DrawSeed, "mini_draw_seed", rt::mini_draw_seed as *const u8, &[], &[I64]),
        d(Helper::SeedPending, "mini_seed_pending", rt::mini_seed_pending as *const u8, &[I64], &[]),
        d(Helper::PrangeRun, "mini_prange_run", par::mini_prange_run as *const u8, &[I64; 8], &[I64]),
        d(Helper::PrangeFailure, "mini_prange_failure", par::mini_prange_failure as *const u8, &[], &[I64]),
        d(
            Helper::PrangeSequential,
            "mini_prange_sequential",
            rt::mini_prange_sequential as *const u8,
            &[I64, I64],
            &[],
        ),
        d(Helper::ArrayNew, "mini_array_new", crate::jit::alloc::mini_array_new as *const u8, &[I64, I64, I64], &[I64]),
        d(
            Helper::ArrayNewShaped,
            "mini_array_new_shaped",
            crate::jit::alloc::mini_array_new_shaped as *const u8,
            &[I64, I64, I64, I64],
            &[I64],
        ),
        d(Helper::ArrayFree, "mini_array_free", crate::jit::alloc::mini_array_free as *const u8, &[I64], &[]),
        d(
            Helper::ArrayReleaseAll,
            "mini_array_release_all",
            crate::jit::alloc::mini_array_release_all as *const u8,
            &[I64, I64],
            &[],
        ),
        d(Helper::ArrayRetain, "mini_array_retain", crate::jit::alloc::mini_array_retain as *const u8, &[I64], &[]),
        d(Helper::ArrayRelease, "mini_array_release", crate::jit::alloc::mini_array_release as *const u8, &[I64], &[]),
    ]
}

/// The Cranelift types of a returned value (nil is returned as an unused i64; an array as its
/// data pointer, length and own word, see jit/alloc.rs).
pub fn ret_types(t: Ty) -> &'static [Type] {
    match t {
        Ty::Float => &[F64],
        Ty::Bool => &[I8],
        Ty::FloatArray | Ty::IntArray => &[I64, I64, I64],
        Ty::FloatArrayN(rank) | Ty::IntArrayN(rank) => ndarray::param_types(rank),
        _ => &[I64],
    }
}

/// The signature of a compiled function for these argument and result types.
pub fn signature(module: &JITModule, args: &[Ty], ret: Ty) -> Signature {
    let mut sig = module.make_signature();
    sig.params.push(AbiParam::new(I64));
    for t in args {
        for ty in param_types(*t) {
            sig.params.push(AbiParam::new(*ty));
        }
    }
    sig.returns.extend(ret_types(ret).iter().map(|t| AbiParam::new(*t)));
    sig.returns.push(AbiParam::new(I64));
    sig
}

/// The status with which a function that returns an int or float (`Ty::Num`) returns a float
/// (`status::OK` returns an int; errors are positive). Cranelift returns at most two values in
/// registers, so the tag travels in the status: the bits are the value either way.
pub const FLOAT_RESULT: i64 = -2;

/// The machine parameters one argument of type `t` takes.
pub fn param_types(t: Ty) -> &'static [Type] {
    match t {
        Ty::Int => &[I64],
        Ty::Float => &[F64],
        Ty::Bool => &[I8],
        Ty::FloatArray | Ty::IntArray => &[I64, I64, I64],
        Ty::FloatArrayN(rank) | Ty::IntArrayN(rank) => ndarray::param_types(rank),
        // never a parameter (inference refuses passing one), but the bits and the tag if it were
        Ty::Num => &[I64, I8],
        // a function passed as an argument is known from the signature: nothing to pass
        Ty::Nil | Ty::Other(_) | Ty::Builtin(_) => &[],
        // the values of its captured variables, read once per call
        Ty::Func(key) => &key.params,
    }
}

/// A register's contents in native code. `ArrN` is an array of `rank` (2 or more) dimensions:
/// its data pointer and dimensions (the first `rank` of `dims`; the rest repeat `ptr`).
#[derive(Clone, Copy)]
enum V {
    Int(CValue),
    Float(CValue),
    Bool(CValue),
    /// `own`: who keeps it alive (see jit/alloc.rs).
    Arr {
        ptr: CValue,
        len: CValue,
        own: CValue,
        float: bool,
    },
    Nil,
    Func,
    Builtin,
    /// An int or a float (`Ty::Num`): `tag` (i8) is 1 for a float, `bits` its 64 bits.
    Num {
        tag: CValue,
        bits: CValue,
        /// The value as a float, when known without a `select` on the tag (a register's
        /// `Kind::NumFloat` variable): a loop adding floats to it then carries no conversion.
        float: Option<CValue>,
    },
    /// A closure passed as an argument, whose captured values are `Lower::closure_vals[i]`.
    Closure(usize),
    /// An array of `rank` (2 or more) dimensions: its data pointer and dimensions (the first
    /// `rank` of `dims`; the rest repeat `ptr` and mean nothing).
    ArrN {
        ptr: CValue,
        dims: ndarray::Dims,
        rank: u8,
        float: bool,
        /// As `Arr`'s (0 for `shape(a)` and an array's shape literal, which are no arrays).
        own: CValue,
    },
}

impl V {
    /// The own word of an array (see jit/alloc.rs), of either form.
    fn own(self) -> Option<CValue> {
        match self {
            V::Arr { own, .. } | V::ArrN { own, .. } => Some(own),
            _ => None,
        }
    }
}

/// Which Cranelift variable of a register holds a value of some type.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Int,
    Float,
    Bool,
    Ptr,
    Len,
    /// Dimension `k` of an array of several dimensions.
    Dim(u8),
    /// A `Ty::Num` register's tag and bits, and its value as a float.
    Tag,
    Bits,
    NumFloat,
    /// Part `part` of captured value `u` of a closure argument held by the register, of
    /// machine type `I64` (0), `F64` (1) or `I8` (2).
    Cap {
        u: u8,
        part: u8,
        ty: u8,
    },
    Own,
}

type Lowered<X> = Result<X, String>;

/// The most instructions a callee may have to be inlined, and the deepest inlining.
const INLINE_MAX_CODE: usize = 64;
const INLINE_MAX_DEPTH: usize = 3;

/// How many leaf paths may nest in a leaf path (`nested_leaf_paths_inlinable`); see `levels`
/// in `inlinable` for what 2 and 3 bought on fib (with 4, fib's compile without the cache took
/// 7.4 ms for 2% more).
const LEAF_PATH_NESTING: usize = 3;

/// Where the `Call`s of inlined code go (`inline_call_bailing`).
enum Calls {
    /// They are lowered as calls (`inline_call`).
    Native,
    /// To this block, which makes the real call of this function with this result type
    /// (`leaf_path_call`).
    Bail(Block, FuncId, Ty),
    /// To the block of the leaf path this one is nested in (`nested_leaf_path_call`).
    OuterBail,
}

/// The most bytecode instructions one compiled function lowers, counting inlined copies: no more
/// callees are inlined beyond it (they are called), so inlining never makes a function larger
/// than twice the largest the JIT accepts (`infer::MAX_CODE`).
const INLINE_BUDGET: usize = 2 * super::infer::MAX_CODE;

/// The most error sites that jump to one fail block. One shared block keeps the code small, but
/// its parameters then merge the values of every site, and the register allocator's work on
/// that merge grows with the square of the sites: 8,000 statements took 30 s to compile. A
/// new block (one more helper call) per this many sites keeps compile time linear.
const FAIL_BLOCK_SITES: usize = 64;

/// A counted loop with step 1 polls the GIL's attention word once per this many iterations
/// (see [`Lower::back_edge`]).
const POLL_STRIDE: i64 = 1024;

/// The `checked` key kind of a passed bounds check (0 to 2 are `+ - *`).
const BOUNDS_CHECKED: u8 = 3;

/// The `checked` key kind of a passed recursion-limit check, `(ROOM_CHECKED, room, room)`.
const ROOM_CHECKED: u8 = 4;

/// Whether `callee` may be inlined at inlining depth `depth` (0: into the function compiled),
/// by its code alone: small, not too deep, and without a loop. A loop inlined is one more copy
/// of it (versioned: two) per caller, for a call that costs nothing next to the loop, and ran
/// slower inlined: spectral_norm 1500 took 270 ms with mul_av and mul_atv inlined into
/// mul_atav, 190 ms with them called (mandelbrot 800 with `inside` called: 81.0 ms against
/// 81.6). That also leaves out `prange` loops (their parallel run returns a failed block's
/// error straight, see `prange_parallel`).
fn inline_shape(callee: &Plan, depth: usize) -> bool {
    let code = &callee.proto.code;
    let prange = code.iter().any(|i| matches!(i, Instr::PrangePrep { .. }));
    !prange && !bytecode::has_loop(code) && code.len() <= INLINE_MAX_CODE && depth < INLINE_MAX_DEPTH
}

/// The lowering of one plan (and of the small callees inlined into it).
pub struct Lower<'a, 'f> {
    pub b: FunctionBuilder<'f>,
    pub module: &'a mut JITModule,
    /// The plan whose instructions are being lowered: the function's own, or an inlined callee's.
    pub plan: &'a Plan,
    /// All plans of the session, for inlining.
    plans: &'a [Plan],
    /// What each plan lowered so far implies alone, by plan, computed once however many times
    /// the plan is inlined (a recursion's leaf paths inline fib's body some 300 times).
    derived: std::cell::RefCell<FxHashMap<*const Plan, std::rc::Rc<Derived>>>,
    /// The function ids and result types of the session's plans, by plan index.
    pub plan_ids: &'a [(FuncId, Ty)],
    pub helper_ids: &'a mut HashMap<Helper, FuncId>,
    /// The cells of the globals the program assigns, which compiled code reads from memory.
    mirrors: &'a Mirrors,
    helper_refs: FxHashMap<Helper, FuncRef>,
    callee_refs: FxHashMap<FuncId, FuncRef>,
    /// Variables by (inlining depth, register, kind): inlined code has its own registers.
    vars: FxHashMap<(u32, Reg, Kind), Variable>,
    /// The inlining depth of the code being lowered (0: the function's own code). Inlined
    /// calls at the same depth follow one another, so they share their variables: a fresh set
    /// per call would cost the SSA builder memory per variable and block, which is quadratic
    /// in a function with thousands of inlined calls.
    scope: u32,
    blocks: FxHashMap<usize, Block>,
    room: Option<CValue>,
    /// The blocks error sites jump to, with their site and status (`fail[0]`), or their site,
    /// status and details (`fail[1]`): each calls `mini_jit_site` and returns the status. One
    /// per `FAIL_BLOCK_SITES` sites (see there).
    fail: [Option<Block>; 2],
    /// The sites that jump to the current `fail` blocks, and the earlier, full ones (with
    /// whether they take details).
    fail_sites: [usize; 2],
    full_fails: Vec<(Block, bool)>,
    /// The error sites of the function, which its code names by index: leaked as one table
    /// when the fail blocks are filled, so that the function names one address, not one per
    /// site (each named address is a declared symbol: 6% of spectral_norm's lowering).
    sites: Vec<Site>,
    /// What each address the code names stands for (prekey.rs), in the order named.
    named: Vec<(usize, Named)>,
    /// The callers of the code being inlined, outermost first, with the call instruction.
    inlined_from: Vec<(&'a Plan, usize)>,
    /// The register types before the instruction being lowered (none outside `instr`): a
    /// counted register they say holds no array has own word 0, so `put` need not release it.
    now: Option<&'a [T]>,
    /// That instruction.
    now_pc: Option<usize>,
    /// Per plan lowered, which instructions are in a loop without calls (see
    /// `Lower::counts_inline`).
    hot: FxHashMap<*const Plan, Vec<bool>>,
    /// Where an inlined callee's `return` goes, and its result type.
    ret_to: Option<(Block, Ty)>,
    /// While lowering a callee's leaf paths inline (`leaf_path_call`): the block that makes the
    /// real call, where every `Call` of the callee's code goes instead.
    bail: Option<Block>,
    /// How many leaf paths the code being lowered is nested in beyond the first
    /// (`nested_leaf_path_call`).
    leaf_nesting: usize,
    /// Checked int operations and bounds checks already done in this straight run of bytecode
    /// (whose check dominates the rest of the run): `(i + j) * (i + j + 1)` adds once.
    checked: FxHashMap<(u8, CValue, CValue), CValue>,
    /// What is known of int values' ranges, beyond constants (see [`Lower::interval`]).
    intervals: FxHashMap<CValue, Interval>,
    /// The bytecode instructions lowered so far, inlined ones included (see [`INLINE_BUDGET`]).
    lowered: usize,
    /// In the fast copy of a versioned loop: what the test before it established.
    assumed: Option<Assumed>,
    /// The fast copy's loop header, sealed only once the test before it branches to it.
    unsealed: Option<Block>,
    /// The outlined blocks of this plan's parallel loops; while lowering one of them, its
    /// errors return only a status, and a loop nested in it runs its blocks in order.
    outlining: Outlining<'a>,
    /// The captured values of the closures passed as arguments, by `V::Closure` index.
    closure_vals: Vec<Vec<V>>,
    /// The captured values the code being lowered reads with `GetUpval` (a closure passed as
    /// an argument: its plan's parameters after its own).
    upvals: Vec<V>,
    /// How the plan being lowered treats arrays made in native code (see `alloc.rs`).
    owned: alloc::Owned,
    /// Where the `return`s of the code being lowered go when it counts (`alloc.rs`).
    epilogue: Option<Block>,
}

impl<'a, 'f> Lower<'a, 'f> {
    // the engine's state a lowering borrows, each piece from its own owner
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        b: FunctionBuilder<'f>,
        module: &'a mut JITModule,
        plans: &'a [Plan],
        plan: usize,
        plan_ids: &'a [(FuncId, Ty)],
        helper_ids: &'a mut HashMap<Helper, FuncId>,
        mirrors: &'a Mirrors,
        outlining: Outlining<'a>,
    ) -> Self {
        Lower {
            b,
            module,
            plan: &plans[plan],
            plans,
            plan_ids,
            helper_ids,
            mirrors,
            helper_refs: FxHashMap::default(),
            callee_refs: FxHashMap::default(),
            vars: FxHashMap::default(),
            scope: 0,
            blocks: FxHashMap::default(),
            room: None,
            fail: [None, None],
            fail_sites: [0, 0],
            full_fails: Vec::new(),
            sites: Vec::new(),
            named: Vec::new(),
            inlined_from: Vec::new(),
            now: None,
            now_pc: None,
            hot: FxHashMap::default(),
            ret_to: None,
            bail: None,
            leaf_nesting: 0,
            checked: FxHashMap::default(),
            intervals: FxHashMap::default(),
            assumed: None,
            unsealed: None,
            closure_vals: Vec::new(),
            upvals: Vec::new(),
            lowered: 0,
            outlining,
            owned: alloc::Owned::of(&plans[plan], plans),
            epilogue: None,
            derived: Default::default(),
        }
    }

    /// What `plan` implies alone (see [`Derived`]), computed at its first use.
    fn derived(&self, plan: &Plan) -> std::rc::Rc<Derived> {
        let plans = self.plans;
        self.derived
            .borrow_mut()
            .entry(plan as *const Plan)
            .or_insert_with(|| {
                std::rc::Rc::new(Derived {
                    loops: Loops::new(&plan.proto.code),
                    leaders: leaders(plan),
                    owned: alloc::Owned::of(plan, plans),
                })
            })
            .clone()
    }

    /// Builds the whole function; returns what each address its code names stands for.
    pub fn function(mut self, name_index: u32) -> Lowered<Vec<(usize, Named)>> {
        self.b.func.name = UserFuncName::user(0, name_index);
        let entry = self.b.create_block();
        self.b.append_block_params_for_function_params(entry);
        self.b.switch_to_block(entry);
        let params = self.b.block_params(entry).to_vec();
        self.room = Some(params[0]);
        self.clear_owned();
        let mut p = 1;
        for (r, t) in self.plan.sig.tys().iter().enumerate() {
            let n = param_types(*t).len();
            let v = self.value_of_parts(*t, &params[p..p + n]);
            if r < self.plan.proto.nparams {
                self.put(r as Reg, v);
                self.retain_param(v);
            } else {
                self.upvals.push(v);
            }
            p += n;
        }
        self.make_fail_block();
        self.body()?;
        self.fill_fail_block();
        self.b.seal_all_blocks();
        let config = self.module.target_config();
        self.b.finalize(config);
        Ok(self.named)
    }

    /// Lowers the instructions of `self.plan`, starting with a jump from the current block.
    fn body(&mut self) -> Lowered<()> {
        let outer = self.epilogue.take();
        self.make_blocks();
        let first = self.block(0)?;
        self.b.ins().jump(first, &[]);
        let plan = self.plan;
        let derived = self.derived(plan);
        if !self.lower_pcs(0, plan.proto.code.len(), &derived.loops, true)? {
            return Err("internal: the code runs off its end".into());
        }
        self.finish_epilogue();
        self.epilogue = outer;
        Ok(())
    }

    /// Lowers instructions `from..to`; `terminated` says whether the current block has ended.
    /// Returns whether the last one ended its block.
    fn lower_pcs(&mut self, from: usize, to: usize, loops: &Loops, mut terminated: bool) -> Lowered<bool> {
        let plan = self.plan;
        let code = &plan.proto.code;
        let mut pc = from;
        while pc < to {
            if let Some(&block) = self.blocks.get(&pc) {
                if !terminated {
                    self.b.ins().jump(block, &[]);
                }
                self.b.switch_to_block(block);
                if !loops.is_header[pc] {
                    self.b.seal_block(block);
                }
                self.checked.clear();
                terminated = false;
            }
            let Some(st) = &plan.states[pc] else {
                pc += 1;
                continue;
            };
            if terminated {
                if self.bail.is_some() {
                    // after a `Call` that became a jump to the real call: reached from nowhere
                    pc += 1;
                    continue;
                }
                return Err(format!("internal: instruction {pc} follows a jump but is not a jump target"));
            }
            if let Some((end, checks)) = self.versionable(pc) {
                self.versioned_loop(pc, end, &checks, st, loops)?;
                // both copies end with their `ForLoop`'s jump
                terminated = true;
                pc = end + 1;
                continue;
            }
            self.lowered += 1;
            self.now = Some(st);
            self.now_pc = Some(pc);
            let ended = self.instr(pc, code[pc], st);
            (self.now, self.now_pc) = (None, None);
            terminated = ended?;
            if let Some(header) = loops.closes[pc] {
                // its last back-edge is in place: every predecessor is known
                let block = self.block(header)?;
                if self.unsealed != Some(block) {
                    self.b.seal_block(block);
                }
            }
            pc += 1;
        }
        Ok(terminated)
    }

    /// Whether the call of plan `j` is lowered inline: a small callee, not too deep, and a
    /// recursive one at most twice (which quarters the native calls of a recursion like fib's).
    fn inlinable(&self, callee: &Plan) -> bool {
        let code = &callee.proto.code;
        if !inline_shape(callee, self.inlined_from.len()) {
            return false;
        }
        if self.calls_loop_function(callee) {
            // its calls of functions with loops stay native calls (a loop is not inlined into
            // inlined code): inlining saves one call next to theirs, for a copy of every check
            // and count around them (spectral_norm inlined mul_atav twice: 640 instructions)
            return false;
        }
        let active = std::iter::once(self.plan).chain(self.inlined_from.iter().map(|(p, _)| *p));
        // a recursive function is unrolled two levels (a chain of calls makes a third as many
        // native calls), and so is one whose leaf paths nest (`nests`), with its nested paths
        // three deep: fib(32) --jit against gcc -O2, whole process (paired median of 21
        // interleaved runs), 1.46x with one level and paths two deep, 1.42x with paths three
        // deep, 1.33x with two levels too (its compile without the cache 1.5, 2.8, 4.8 ms)
        let levels = 3;
        self.lowered + code.len() <= INLINE_BUDGET && active.filter(|p| std::ptr::eq(*p, callee)).count() < levels
    }

    /// Whether `plan` calls a function with a loop (other than itself).
    fn calls_loop_function(&self, plan: &Plan) -> bool {
        plan.calls.values().any(|t| {
            let callee: &Plan = match t {
                Target::Plan(j) => &self.plans[*j],
                Target::Spec(spec) => match spec.plan() {
                    Some(p) => p,
                    None => return false,
                },
                Target::Builtin(_) => return false,
            };
            !std::ptr::eq(callee, plan) && bytecode::has_loop(&callee.proto.code)
        })
    }

    /// Whether the call at `pc` of `plan`, lowered at inlining depth `depth`, is or reaches a
    /// call that is not inlined (a recursive callee counts as one). A native call costs more
    /// than the checks loop versioning leaves out, so a loop making one is not versioned.
    pub(super) fn reaches_native_call(
        &self,
        plan: &Plan,
        pc: usize,
        depth: usize,
        seen: &mut Vec<*const Plan>,
    ) -> bool {
        let callee: &Plan = match plan.calls.get(&pc) {
            Some(Target::Builtin(_)) => return false,
            Some(Target::Plan(j)) => &self.plans[*j],
            Some(Target::Spec(spec)) => match spec.plan() {
                Some(p) => p,
                None => return true,
            },
            None => return true,
        };
        if seen.contains(&(callee as *const Plan)) || !inline_shape(callee, depth) {
            return true;
        }
        seen.push(callee);
        let reaches =
            callee.proto.code.iter().enumerate().any(|(k, ins)| {
                matches!(ins, Instr::Call { .. }) && self.reaches_native_call(callee, k, depth + 1, seen)
            });
        seen.pop();
        reaches
    }

    /// A call of plan `j` lowered inline: its instructions with their own registers; its errors
    /// record the same frames a real call would.
    fn inline_call(&mut self, pc: usize, callee: &'a Plan, args: &[V]) -> Lowered<V> {
        self.inline_call_bailing(pc, callee, args, Calls::Native)
    }

    /// Whether a call of `callee` that stays a native call gets its leaf paths inline
    /// (`leaf_path_call`): a small function without loops, of scalar parameters and result, in
    /// which only calls can have an effect, which can return before any call (fib's
    /// `if n < 2 { return n }`), and which counts no array references.
    fn leaf_paths_inlinable(&self, callee: &Plan) -> bool {
        self.bail.is_none() && inline_shape(callee, self.inlined_from.len()) && self.leaf_path_shape(callee)
    }

    /// Whether a `Call` met on a leaf path (`self.bail` set) of `callee` gets `callee`'s own leaf
    /// paths inline, nested in the outer one (`nested_leaf_path_call`): at most
    /// [`LEAF_PATH_NESTING`] deep, so that fib's calls of `fib(2)` to `fib(4)` return without
    /// a frame too (in a tree recursion, most calls are near the leaves).
    fn nested_leaf_paths_inlinable(&self, callee: &Plan) -> bool {
        self.bail.is_some()
            && self.leaf_nesting < LEAF_PATH_NESTING
            && inline_shape(callee, self.inlined_from.len().saturating_sub(self.leaf_nesting + 1))
            && self.nests(callee)
    }

    /// Whether `callee`'s leaf paths nest (`nested_leaf_paths_inlinable`): those of a
    /// function making two calls, a tree recursion such as fib, most of whose calls end near
    /// the leaves. A chain (one call) ends on a leaf path only at its last call, so deeper
    /// paths only redo more work before each real call (`n + tri(n - 1)` ran 27% slower); three
    /// calls or more multiply the paths' code faster than the calls they save (a recursion of
    /// 8 calls spent the inlining budget on its first call sites and ran 80% slower).
    fn nests(&self, callee: &Plan) -> bool {
        let calls = callee.proto.code.iter().filter(|i| matches!(i, Instr::Call { .. })).count();
        calls == 2 && self.leaf_path_shape(callee)
    }

    /// The part of `leaf_paths_inlinable` on the callee alone: size, types and instructions.
    fn leaf_path_shape(&self, callee: &Plan) -> bool {
        let code = &callee.proto.code;
        let scalar = |t: &Ty| matches!(t, Ty::Int | Ty::Float | Ty::Bool);
        let first = |f: fn(&Instr) -> bool| code.iter().position(f).unwrap_or(usize::MAX);
        let early_return = first(|i| matches!(i, Instr::Return { .. })) < first(|i| matches!(i, Instr::Call { .. }));
        self.lowered + code.len() <= INLINE_BUDGET
            && scalar(&callee.ret_ty())
            && callee.sig.tys().len() == callee.proto.nparams
            && callee.sig.tys().iter().all(scalar)
            && early_return
            // no reference counts to keep: a jump to the real call would skip the releases
            // of the callee's epilogue
            && !self.derived(callee).owned.counting
            && code.iter().all(|i| {
                use Instr as I;
                matches!(
                    i,
                    I::LoadNil { .. }
                        | I::LoadBool { .. }
                        | I::LoadInt { .. }
                        | I::LoadK { .. }
                        | I::Move { .. }
                        | I::GetGlobal { .. }
                        | I::Add { .. }
                        | I::Sub { .. }
                        | I::Mul { .. }
                        | I::AddK { .. }
                        | I::SubK { .. }
                        | I::MulK { .. }
                        | I::KAdd { .. }
                        | I::KSub { .. }
                        | I::KMul { .. }
                        | I::Neg { .. }
                        | I::Not { .. }
                        | I::Eq { .. }
                        | I::Ne { .. }
                        | I::Lt { .. }
                        | I::Le { .. }
                        | I::Gt { .. }
                        | I::Ge { .. }
                        | I::Jump { .. }
                        | I::JumpIfFalse { .. }
                        | I::JumpIfTrue { .. }
                        | I::JumpIfNotLt { .. }
                        | I::JumpIfNotLe { .. }
                        | I::JumpIfNotGt { .. }
                        | I::JumpIfNotGe { .. }
                        | I::JumpIfNotLtK { .. }
                        | I::JumpIfNotLeK { .. }
                        | I::JumpIfNotGtK { .. }
                        | I::JumpIfNotGeK { .. }
                        | I::JumpIfNotEq { .. }
                        | I::JumpIfNotNe { .. }
                        | I::Call { .. }
                        | I::Return { .. }
                        | I::ReturnNil
                )
            })
    }

    /// A native call of `callee` (function `id`) whose paths that return without calling
    /// anything run inline: its code is lowered as an inlined call's, except that every `Call`
    /// in it jumps to one block making the real call with the same arguments, which runs the
    /// callee from its start. Sound because nothing before a `Call` has an effect
    /// (`leaf_paths_inlinable`): the callee's work up to there is only done twice, and an error
    /// on the way is raised inline with the frames the real call would record. For fib, half
    /// the native calls were of `fib(0)` or `fib(1)`, a whole frame to return `n`.
    fn leaf_path_call(&mut self, pc: usize, callee: &'a Plan, args: &[V], id: FuncId, ret: Ty) -> Lowered<V> {
        let bail = self.b.create_block();
        self.inline_call_bailing(pc, callee, args, Calls::Bail(bail, id, ret))
    }

    /// A `Call` on a leaf path of `callee` lowered as `callee`'s own leaf paths
    /// (`nested_leaf_paths_inlinable`), whose `Call`s jump to the outer leaf path's real call:
    /// sound for the same reason, as nothing on either path before a `Call` has an effect.
    fn nested_leaf_path_call(&mut self, pc: usize, callee: &'a Plan, args: &[V]) -> Lowered<V> {
        self.leaf_nesting += 1;
        let v = self.inline_call_bailing(pc, callee, args, Calls::OuterBail);
        self.leaf_nesting -= 1;
        v
    }

    /// `inline_call`, `leaf_path_call` or `nested_leaf_path_call`, as `calls` says.
    fn inline_call_bailing(&mut self, pc: usize, callee: &'a Plan, args: &[V], calls: Calls) -> Lowered<V> {
        let (bail, inner_bail) = match calls {
            Calls::Native => (None, None),
            Calls::Bail(block, id, ret) => (Some((block, id, ret)), Some(block)),
            Calls::OuterBail => (None, self.bail),
        };
        let room = self.room.expect("set in the entry block");
        self.check_room(pc, room);
        let ret = callee.ret_ty();
        let cont = self.b.create_block();
        if ret != Ty::Nil {
            for t in ret_types(ret) {
                self.b.append_block_param(cont, *t);
            }
        }
        if ret == Ty::Num {
            self.b.append_block_param(cont, I8);
        }
        let inner_room = self.callee_room(room);
        let owned = self.derived(callee).owned.clone();
        let saved = (self.plan, self.scope, std::mem::take(&mut self.blocks), self.room, self.ret_to.take());
        let now = (self.now.take(), self.now_pc.take());
        // a closure passed as an argument: its captured values follow its arguments
        let upvals = args.get(callee.proto.nparams..).unwrap_or_default().to_vec();
        let saved_upvals = std::mem::replace(&mut self.upvals, upvals);
        let saved_owned = std::mem::replace(&mut self.owned, owned);
        self.inlined_from.push((self.plan, pc));
        self.plan = callee;
        self.scope = self.inlined_from.len() as u32;
        self.room = Some(inner_room);
        self.ret_to = Some((cont, ret));
        let saved_bail = std::mem::replace(&mut self.bail, inner_bail);
        self.clear_owned();
        for (r, v) in args.iter().take(callee.proto.nparams).enumerate() {
            self.put(r as Reg, *v);
            self.retain_param(*v);
        }
        // the checks done before the call still hold after it (every path from the call to
        // `cont` starts there); those of the callee's body may not (it has its own branches)
        let outer_checked = std::mem::take(&mut self.checked);
        let result = self.body();
        self.checked = outer_checked;
        self.inlined_from.pop();
        self.bail = saved_bail;
        (self.plan, self.scope, self.blocks, self.room, self.ret_to) = saved;
        (self.now, self.now_pc) = now;
        self.upvals = saved_upvals;
        self.owned = saved_owned;
        result?;
        if let Some((block, id, ret)) = bail {
            // every jump here comes after the room check above
            self.b.seal_block(block);
            self.b.switch_to_block(block);
            let v = self.call_checked(pc, id, args, ret)?;
            let values: Vec<BlockArg> = self.parts_of(v).into_iter().map(BlockArg::Value).collect();
            self.b.ins().jump(cont, &values);
        }
        self.b.switch_to_block(cont);
        self.b.seal_block(cont);
        let params = self.b.block_params(cont).to_vec();
        Ok(match (ret, params.first()) {
            (Ty::Num, Some(v)) => V::Num { tag: params[1], bits: *v, float: None },
            _ => returned(ret, &params),
        })
    }

    /// Leaves through a new error site at `pc` (ends the current block): the site records error
    /// `code` (or, with `status::OK`, only the frames of the callee error `status` passing
    /// through), the frame of `pc` and those of the calls that inlined this code.
    fn leave_through_site(&mut self, pc: usize, code: i64, status: CValue, details: [Option<CValue>; 2]) {
        let own = (std::rc::Rc::as_ptr(&self.plan.proto), pc);
        let callers = self.inlined_from.iter().rev().map(|(plan, pc)| (std::rc::Rc::as_ptr(&plan.proto), *pc));
        let frames = std::iter::once(own).chain(callers).collect();
        let site = self.iconst(self.sites.len() as i64);
        self.sites.push(Site { code, frames });
        if details == [None, None] {
            let fail = self.fail_block(false);
            self.b.ins().jump(fail, &[BlockArg::Value(site), BlockArg::Value(status)]);
            return;
        }
        let [a, b] = details.map(|d| d.unwrap_or_else(|| self.iconst(0)));
        let fail = self.fail_block(true);
        self.b
            .ins()
            .jump(fail, &[BlockArg::Value(site), BlockArg::Value(status), BlockArg::Value(a), BlockArg::Value(b)]);
    }

    /// Starts the function's fail blocks afresh (they are made at their first site).
    pub(super) fn make_fail_block(&mut self) {
        self.fail = [None, None];
        self.fail_sites = [0, 0];
    }

    /// The fail block for one more error site: one taking `(site, status, a, b)` when the site
    /// has details, else one taking `(site, status)` (two fewer values at every such site); a
    /// new one after `FAIL_BLOCK_SITES` sites.
    fn fail_block(&mut self, details: bool) -> Block {
        let k = usize::from(details);
        if self.fail_sites[k] == FAIL_BLOCK_SITES {
            self.full_fails.extend(self.fail[k].take().map(|b| (b, details)));
            self.fail_sites[k] = 0;
        }
        self.fail_sites[k] += 1;
        if let Some(block) = self.fail[k] {
            return block;
        }
        let fail = self.b.create_block();
        self.b.set_cold_block(fail);
        for _ in 0..if details { 4 } else { 2 } {
            self.b.append_block_param(fail, I64);
        }
        self.fail[k] = Some(fail);
        fail
    }

    /// Gives every fail block its body (at the end, when every site is known).
    fn fill_fail_block(&mut self) {
        let mut blocks: Vec<(Block, bool)> = self.full_fails.drain(..).collect();
        blocks.extend(self.fail[0].take().map(|b| (b, false)));
        blocks.extend(self.fail[1].take().map(|b| (b, true)));
        // compiled code is never freed, so neither are its sites
        let table: &'static [Site] = Box::leak(std::mem::take(&mut self.sites).into_boxed_slice());
        let portable = super::prekey::portable_sites(table, self.plans);
        for (fail, details) in blocks {
            self.b.switch_to_block(fail);
            let mut args = self.b.block_params(fail).to_vec();
            let base = self.address(table.as_ptr() as usize, portable.clone());
            let offset = self.b.ins().imul_imm_s(args[0], std::mem::size_of::<Site>() as i64);
            args[0] = self.b.ins().iadd(base, offset);
            if !details {
                let zero = self.iconst(0);
                args.extend([zero, zero]);
            }
            let st = self.call_helper(Helper::Site, &args)[0];
            if self.outlining.inside.is_some() {
                self.b.ins().return_(&[st]);
            } else {
                let mut values = self.zeros(self.plan.ret_ty());
                values.push(st);
                self.b.ins().return_(&values);
            }
        }
    }

    /// The machine values of a returned zero, nil or no array (what an error exit returns).
    fn zeros(&mut self, t: Ty) -> Vec<CValue> {
        ret_types(t)
            .iter()
            .map(|ty| match *ty {
                F64 => self.b.ins().f64const(0.0),
                ty => self.b.ins().iconst(ty, 0),
            })
            .collect()
    }

    /// A block for every reachable instruction where control flow starts.
    fn make_blocks(&mut self) {
        let derived = self.derived(self.plan);
        for &pc in &derived.leaders {
            let block = self.b.create_block();
            self.blocks.insert(pc, block);
        }
    }

    fn block(&self, pc: usize) -> Lowered<Block> {
        self.blocks.get(&pc).copied().ok_or_else(|| format!("internal: no block at {pc}"))
    }

    fn var(&mut self, r: Reg, kind: Kind) -> Variable {
        if let Some(v) = self.vars.get(&(self.scope, r, kind)) {
            return *v;
        }
        let ty = match kind {
            Kind::Float | Kind::NumFloat | Kind::Cap { ty: 1, .. } => F64,
            Kind::Bool | Kind::Tag | Kind::Cap { ty: 2, .. } => I8,
            _ => I64,
        };
        let v = self.b.declare_var(ty);
        self.vars.insert((self.scope, r, kind), v);
        v
    }

    fn use_var(&mut self, r: Reg, kind: Kind) -> CValue {
        let v = self.var(r, kind);
        self.b.use_var(v)
    }

    fn def(&mut self, r: Reg, kind: Kind, x: CValue) {
        let v = self.var(r, kind);
        self.b.def_var(v, x);
    }

    /// Register `r` as the types at this instruction say it is.
    fn get(&mut self, st: &[T], r: Reg) -> Lowered<V> {
        Ok(match st[r as usize] {
            T::Val(Ty::Int) => {
                let v = self.use_var(r, Kind::Int);
                if let Some(assumed) = &mut self.assumed
                    && assumed.scope == self.scope
                    && let Some(interval) = assumed.regs.get(&r)
                {
                    assumed.read.insert(r);
                    self.intervals.insert(v, *interval);
                }
                V::Int(v)
            }
            T::Val(Ty::Float) => V::Float(self.use_var(r, Kind::Float)),
            T::Val(Ty::Bool) => V::Bool(self.use_var(r, Kind::Bool)),
            T::Val(t @ (Ty::FloatArray | Ty::IntArray)) => V::Arr {
                ptr: self.use_var(r, Kind::Ptr),
                len: self.use_var(r, Kind::Len),
                own: self.use_var(r, Kind::Own),
                float: t == Ty::FloatArray,
            },
            T::Val(t @ (Ty::FloatArrayN(_) | Ty::IntArrayN(_))) => self.get_array_n(r, t, true),
            // `shape(a)` and a shape literal: the dimensions, kept as an array's are (see
            // `shape_index`), with no own word
            T::Shape(rank) | T::Dims(rank) => self.get_array_n(r, Ty::IntArrayN(rank), false),
            T::Val(Ty::Nil) => V::Nil,
            T::Val(Ty::Num) => V::Num {
                tag: self.use_var(r, Kind::Tag),
                bits: self.use_var(r, Kind::Bits),
                float: Some(self.use_var(r, Kind::NumFloat)),
            },
            // a module is a marker too: only `m.name` reads it, as a global (`module_names`)
            T::Fn(Ty::Func(key)) if !key.captures.is_empty() => self.get_closure(r, key),
            T::Func(_) | T::Module(_) | T::Fn(_) => V::Func,
            T::Builtin(_) => V::Builtin,
            other => return Err(format!("internal: register {r} has type {other:?}")),
        })
    }

    /// Writes register `r`; a counted register lets go of the array it held (`alloc.rs`).
    fn put(&mut self, r: Reg, v: V) {
        if self.plan.num_regs.get(r as usize) == Some(&true) {
            self.put_num(r, v);
        }
        let old = self.own_before_put(r);
        match v {
            V::Int(x) => self.def(r, Kind::Int, x),
            V::Float(x) => self.def(r, Kind::Float, x),
            V::Bool(x) => self.def(r, Kind::Bool, x),
            V::Arr { ptr, len, own, .. } => {
                self.def(r, Kind::Ptr, ptr);
                self.def(r, Kind::Len, len);
                self.def(r, Kind::Own, own);
            }
            V::ArrN { ptr, dims, rank, own, .. } => {
                self.def(r, Kind::Ptr, ptr);
                for (k, d) in dims.iter().take(rank as usize).enumerate() {
                    self.def(r, Kind::Dim(k as u8), *d);
                }
                self.def(r, Kind::Own, own);
            }
            V::Closure(i) => self.put_closure(r, i),
            V::Nil | V::Func | V::Builtin | V::Num { .. } => {}
        }
        if let Some(old) = old {
            self.after_put(r, v, old);
        }
    }

    /// A parameter's count in a counting plan (the caller keeps its own).
    fn retain_param(&mut self, v: V) {
        if let (true, Some(own)) = (self.owned.counting, v.own()) {
            self.retain(own);
        }
    }

    fn konst(&mut self, k: u16) -> Lowered<V> {
        match &self.plan.proto.consts[k as usize] {
            Value::Int(i) => Ok(V::Int(self.b.ins().iconst(I64, *i))),
            Value::Float(f) => Ok(V::Float(self.b.ins().f64const(*f))),
            // a string constant that inference let through is never read (`infer::loaded_const`)
            Value::Str(_) => Ok(V::Nil),
            other => Err(format!("internal: constant of type {}", other.type_name())),
        }
    }

    fn helper(&mut self, h: Helper) -> FuncRef {
        if let Some(f) = self.helper_refs.get(&h) {
            return *f;
        }
        let id = helper_id(self.module, self.helper_ids, h);
        let f = self.module.declare_func_in_func(id, self.b.func);
        self.helper_refs.insert(h, f);
        f
    }

    fn call_helper(&mut self, h: Helper, args: &[CValue]) -> Vec<CValue> {
        let f = self.helper(h);
        let inst = self.b.ins().call(f, args);
        self.b.inst_results(inst).to_vec()
    }

    fn iconst(&mut self, v: i64) -> CValue {
        self.b.ins().iconst(I64, v)
    }

    /// `addr`, an address of this process (an error site, a global's mirror cell, a loop's
    /// counters, a constant array), as a value of the code: an imported symbol named by the
    /// address, which the JIT resolves when it links the code ([`address_of_symbol`]), so that
    /// the IR holds no address and a program lowers to the same IR in every run, which the
    /// cache of compiled code needs (cache.rs). Like a constant, it costs one `movabs`.
    /// `named` says what it stands for (prekey.rs).
    fn address(&mut self, addr: usize, named: Named) -> CValue {
        use cranelift::codegen::entity::EntityRef;
        use cranelift::codegen::ir::{ExternalName, GlobalValueData, UserExternalName};
        let Some(id) = address_data(self.module, addr) else {
            self.named.push((addr, Named::Unknown));
            return self.iconst(addr as i64);
        };
        self.named.push((addr, named));
        // one symbol per address in a function, so that its uses share one value (looked for
        // only when the function names the address already: an error site's is always new)
        let named = self.b.func.params.user_named_funcs().len();
        let r = self.b.func.params.ensure_user_func_name(UserExternalName::new(1, id.as_u32()));
        let known = (r.index() < named)
            .then(|| {
                self.b.func.global_values.iter().find_map(|(gv, data)| match data {
                    GlobalValueData::Symbol { name: ExternalName::User(n), .. } if *n == r => Some(gv),
                    _ => None,
                })
            })
            .flatten();
        let gv = known.unwrap_or_else(|| self.module.declare_data_in_func(id, self.b.func));
        self.b.ins().symbol_value(I64, gv)
    }

    /// What is known of the int value `v`: a constant, a recorded interval, the room a
    /// versioned loop's fast copy assumes, or nothing.
    fn interval(&mut self, v: CValue) -> Interval {
        if let Some(assumed) = &mut self.assumed
            && assumed.room == v
        {
            assumed.room_used = true;
            return Interval::new(ROOM_ASSUMED, i64::MAX);
        }
        if let Some(interval) = self.intervals.get(&v) {
            return *interval;
        }
        let dfg = &self.b.func.dfg;
        if let ValueDef::Result(inst, 0) = dfg.value_def(v)
            && let InstructionData::UnaryImm { opcode: Opcode::Iconst, imm } = dfg.insts[inst]
            && dfg.value_type(v) == I64
        {
            return Interval::exact(imm.bits());
        }
        interval::ANY
    }

    /// Records what is known of `v`, when it is something.
    fn know(&mut self, v: CValue, interval: Interval) {
        if interval != interval::ANY {
            self.intervals.insert(v, interval);
        }
    }

    /// `room - 1`, the recursion room of a callee, with what is known of it.
    fn callee_room(&mut self, room: CValue) -> CValue {
        let inner = self.b.ins().iadd_imm_s(room, -1);
        let interval = self.interval(room).sub(Interval::exact(1)).clamped();
        self.know(inner, interval);
        inner
    }

    /// Raises `stack overflow` at `pc` unless some room is left (or known to be).
    /// A check passed earlier in the same straight run (fib's second call after its first)
    /// is not repeated.
    fn check_room(&mut self, pc: usize, room: CValue) {
        if self.interval(room).lo > 0 || self.checked.contains_key(&(ROOM_CHECKED, room, room)) {
            return;
        }
        let full = self.b.ins().icmp_imm_s(IntCC::SignedLessThanOrEqual, room, 0);
        self.fail_if(full, pc, status::STACK, None, None);
        self.checked.insert((ROOM_CHECKED, room, room), room);
    }

    /// Branches to a cold block raising error `code` (with details `a`, `b`) when `cond` holds.
    fn fail_if(&mut self, cond: CValue, pc: usize, code: i64, a: Option<CValue>, b: Option<CValue>) {
        self.fail_when(cond, true, pc, code, (a, b));
    }

    /// Branches to a cold block raising error `code` unless `cond` holds.
    fn fail_unless(&mut self, cond: CValue, pc: usize, code: i64, a: Option<CValue>, b: Option<CValue>) {
        self.fail_when(cond, false, pc, code, (a, b));
    }

    /// The error branch: to a cold block that raises when `cond` is `holds`; lowering goes on
    /// in the other successor.
    fn fail_when(
        &mut self,
        cond: CValue,
        holds: bool,
        pc: usize,
        code: i64,
        details: (Option<CValue>, Option<CValue>),
    ) {
        let err = self.b.create_block();
        let ok = self.b.create_block();
        self.b.set_cold_block(err);
        let (then, otherwise) = if holds { (err, ok) } else { (ok, err) };
        self.b.ins().brif(cond, then, &[], otherwise, &[]);
        self.b.seal_block(err);
        self.b.seal_block(ok);
        self.b.switch_to_block(err);
        self.raise(pc, code, details.0, details.1);
        self.b.switch_to_block(ok);
    }

    /// Records error `code` at `pc` and leaves through the exit (ends the current block).
    fn raise(&mut self, pc: usize, code: i64, a: Option<CValue>, b: Option<CValue>) {
        let code_v = self.iconst(code);
        self.leave_through_site(pc, code, code_v, [a, b]);
    }

    fn as_float(&mut self, v: V) -> Lowered<CValue> {
        match v {
            V::Float(x) => Ok(x),
            V::Int(x) => Ok(self.b.ins().fcvt_from_sint(F64, x)),
            V::Bool(x) => {
                let i = self.b.ins().uextend(I64, x);
                Ok(self.b.ins().fcvt_from_sint(F64, i))
            }
            V::Num { float: Some(f), .. } => Ok(f),
            V::Num { tag, bits, .. } => Ok(self.num_float(tag, bits)),
            _ => Err("internal: not a number".into()),
        }
    }

    /// `+ - *` with checked ints, or floats when either side is a float.
    fn arith(&mut self, pc: usize, op: Instr, x: V, y: V) -> Lowered<V> {
        let kind = match op.facts().op {
            Some(BinOp::Add) => 0,
            Some(BinOp::Sub) => 1,
            Some(BinOp::Mul) => 2,
            other => return Err(format!("internal: {other:?} is not + - *")),
        };
        if numtag::needs_split(&[x, y]) {
            return self.split_num(&[x, y], &mut |l, v| l.arith(pc, op, v[0], v[1]));
        }
        if let (V::Int(a), V::Int(b)) = (x, y) {
            if let Some(r) = self.checked.get(&(kind, a, b)) {
                return Ok(V::Int(*r));
            }
            let (x, y) = (self.interval(a), self.interval(b));
            let interval = match kind {
                0 => x.add(y),
                1 => x.sub(y),
                _ => x.mul(y),
            };
            let r = if interval.fits() {
                match kind {
                    0 => self.b.ins().iadd(a, b),
                    1 => self.b.ins().isub(a, b),
                    _ => self.b.ins().imul(a, b),
                }
            } else {
                let (r, of) = match kind {
                    0 => self.b.ins().sadd_overflow(a, b),
                    1 => self.b.ins().ssub_overflow(a, b),
                    _ => self.b.ins().smul_overflow(a, b),
                };
                self.fail_if(of, pc, status::OVERFLOW, None, None);
                self.checked.insert((kind, a, b), r);
                r
            };
            self.know(r, interval.clamped());
            return Ok(V::Int(r));
        }
        let (a, b) = (self.as_float(x)?, self.as_float(y)?);
        if kind == 2 {
            // `2.0 * x` is `x + x`, exactly (the same rounding, infinities, NaNs and signed
            // zeros), without a constant to load in the loop (mandelbrot's `2.0 * zr * zi`)
            if self.is_float_const(a, 2.0) {
                return Ok(V::Float(self.b.ins().fadd(b, b)));
            }
            if self.is_float_const(b, 2.0) {
                return Ok(V::Float(self.b.ins().fadd(a, a)));
            }
        }
        Ok(V::Float(match kind {
            0 => self.b.ins().fadd(a, b),
            1 => self.b.ins().fsub(a, b),
            _ => self.b.ins().fmul(a, b),
        }))
    }

    /// Whether `v` is the float constant `c` (an `f64const` of this function).
    fn is_float_const(&self, v: CValue, c: f64) -> bool {
        let dfg = &self.b.func.dfg;
        let ValueDef::Result(inst, 0) = dfg.value_def(v) else { return false };
        match dfg.insts[inst] {
            InstructionData::UnaryIeee64 { opcode: Opcode::F64const, imm } => imm.bits() == c.to_bits(),
            _ => false,
        }
    }

    /// `x << n` or `x >> n` on ints, as the interpreter computes them: a negative count is an
    /// error; `>>` by 64 or more gives 0 or -1; `<<` that loses a bit is an overflow. Checks that
    /// the counts' and operands' intervals rule out are left out.
    fn shift(&mut self, pc: usize, x: CValue, n: CValue, left: bool) -> CValue {
        let count = self.interval(n);
        if count.lo < 0 {
            let negative = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, n, 0);
            self.fail_if(negative, pc, status::NEG_SHIFT, None, None);
        }
        let count = Interval { lo: count.lo.max(0), hi: count.hi.max(0) };
        // from here on n >= 0; machine shifts take the count modulo 64, so clamp it to 63
        let clamped = if count.hi <= 63 {
            n
        } else {
            let max = self.iconst(63);
            self.b.ins().umin(n, max)
        };
        let operand = self.interval(x);
        if !left {
            let r = self.b.ins().sshr(x, clamped);
            self.know(r, operand.shr(count));
            return r;
        }
        let r = self.b.ins().ishl(x, clamped);
        let scale = Interval { lo: 1 << count.lo.min(63), hi: 1 << count.hi.min(63) };
        let result = operand.mul(scale);
        if count.hi <= 63 && result.fits() {
            self.know(r, result);
            return r;
        }
        let back = self.b.ins().sshr(r, clamped);
        let mut lost = self.b.ins().icmp(IntCC::NotEqual, back, x);
        if count.hi > 63 {
            // a count of 64 or more keeps only 0
            let far = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, n, 63);
            let nonzero = self.b.ins().icmp_imm_s(IntCC::NotEqual, x, 0);
            let both = self.b.ins().band(far, nonzero);
            lost = self.b.ins().bor(lost, both);
        }
        self.fail_if(lost, pc, status::OVERFLOW, None, None);
        if count.hi <= 63 {
            self.know(r, result.clamped());
        }
        r
    }

    /// Raises `division by zero` when the number `y` is zero.
    fn check_nonzero(&mut self, pc: usize, y: V) -> Lowered<()> {
        let zero = match y {
            V::Int(b) if !self.interval(b).contains(0) => return Ok(()),
            V::Int(b) => self.b.ins().icmp_imm_s(IntCC::Equal, b, 0),
            _ => {
                let b = self.as_float(y)?;
                let z = self.b.ins().f64const(0.0);
                self.b.ins().fcmp(FloatCC::Equal, b, z)
            }
        };
        self.fail_if(zero, pc, status::DIV_ZERO, None, None);
        Ok(())
    }

    fn divide(&mut self, pc: usize, x: V, y: V) -> Lowered<V> {
        self.check_nonzero(pc, y)?;
        let (a, b) = (self.as_float(x)?, self.as_float(y)?);
        Ok(V::Float(self.b.ins().fdiv(a, b)))
    }

    /// `//` (`floor`) or `%`, with Python's signs. `divisor` is the divisor when it is a known
    /// int constant.
    fn floor_op(&mut self, pc: usize, x: V, y: V, floor: bool, divisor: Option<i64>) -> Lowered<V> {
        if numtag::needs_split(&[x, y]) {
            return self.split_num(&[x, y], &mut |l, v| l.floor_op(pc, v[0], v[1], floor, divisor));
        }
        if let (V::Int(a), Some(d)) = (x, divisor.filter(|d| *d > 0)) {
            let nonneg = self.plan.nonneg_dividend.contains(&pc);
            return Ok(V::Int(self.floor_by_constant(a, d, floor, nonneg)));
        }
        self.check_nonzero(pc, y)?;
        if let (V::Int(a), V::Int(b)) = (x, y) {
            return Ok(V::Int(if floor { self.int_floordiv(pc, a, b) } else { self.int_mod(a, b) }));
        }
        let (a, b) = (self.as_float(x)?, self.as_float(y)?);
        let h = if floor { Helper::FloatFloorDiv } else { Helper::FloatMod };
        Ok(V::Float(self.call_helper(h, &[a, b])[0]))
    }

    /// `a // d` or `a % d` for a positive constant `d`: no error is possible, a power of two is
    /// a shift or a mask, and the remainder's sign fix-up only looks at its sign (and is not
    /// needed at all for a dividend known to be non-negative).
    fn floor_by_constant(&mut self, a: CValue, d: i64, floor: bool, nonneg: bool) -> CValue {
        let interval = self.interval(a);
        let result = if floor { interval.floor_div(d) } else { interval.modulo(d) };
        let r = self.floor_by_constant_unknown(a, d, floor, nonneg || interval.lo >= 0);
        self.know(r, result);
        r
    }

    fn floor_by_constant_unknown(&mut self, a: CValue, d: i64, floor: bool, nonneg: bool) -> CValue {
        if d.count_ones() == 1 {
            let k = d.trailing_zeros() as i64;
            return if floor { self.b.ins().sshr_imm_u(a, k) } else { self.b.ins().band_imm_u(a, d - 1) };
        }
        if nonneg {
            // a dividend below 2^63 needs neither a sign correction nor the add-and-halve step
            // of Cranelift's 64-bit unsigned reciprocal (`loop`: 3 instructions fewer per `%`)
            let (m, shift) = magic63(d);
            let mv = self.iconst(m as i64);
            let hi = self.b.ins().umulhi(a, mv);
            let q = if shift > 0 { self.b.ins().ushr_imm_u(hi, shift) } else { hi };
            if floor {
                return q;
            }
            let qd = self.b.ins().imul_imm_s(q, d);
            return self.b.ins().isub(a, qd);
        }
        let dv = self.iconst(d);
        let r = self.b.ins().srem(a, dv);
        let negative = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, r, 0);
        if floor {
            let q = self.b.ins().sdiv(a, dv);
            let q1 = self.b.ins().iadd_imm_s(q, -1);
            self.b.ins().select(negative, q1, q)
        } else {
            let r1 = self.b.ins().iadd_imm_s(r, d);
            self.b.ins().select(negative, r1, r)
        }
    }

    fn int_floordiv(&mut self, pc: usize, a: CValue, b: CValue) -> CValue {
        let is_min = self.b.ins().icmp_imm_s(IntCC::Equal, a, i64::MIN);
        let minus_one = self.b.ins().icmp_imm_s(IntCC::Equal, b, -1);
        let of = self.b.ins().band(is_min, minus_one);
        self.fail_if(of, pc, status::OVERFLOW, None, None);
        let q = self.b.ins().sdiv(a, b);
        let r = self.b.ins().srem(a, b);
        let nonzero = self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
        let signs = self.b.ins().bxor(r, b);
        let differ = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, signs, 0);
        let adjust = self.b.ins().band(nonzero, differ);
        let q1 = self.b.ins().iadd_imm_s(q, -1);
        self.b.ins().select(adjust, q1, q)
    }

    fn int_mod(&mut self, a: CValue, b: CValue) -> CValue {
        // x % -1 is 0; dividing by 1 instead avoids the hardware fault of i64::MIN % -1.
        let minus_one = self.b.ins().icmp_imm_s(IntCC::Equal, b, -1);
        let one = self.iconst(1);
        let d = self.b.ins().select(minus_one, one, b);
        let r = self.b.ins().srem(a, d);
        let nonzero = self.b.ins().icmp_imm_s(IntCC::NotEqual, r, 0);
        let signs = self.b.ins().bxor(r, b);
        let differ = self.b.ins().icmp_imm_s(IntCC::SignedLessThan, signs, 0);
        let adjust = self.b.ins().band(nonzero, differ);
        let r1 = self.b.ins().iadd(r, b);
        self.b.ins().select(adjust, r1, r)
    }

    /// `x ** y`: an int power (non-negative constant exponent) or a float power.
    fn power(&mut self, pc: usize, x: V, y: V, int_result: bool) -> Lowered<V> {
        if let (V::Int(a), V::Int(b), true) = (x, y, int_result) {
            let r = self.call_helper(Helper::IntPow, &[a, b]);
            self.fail_if(r[1], pc, status::OVERFLOW, None, None);
            return Ok(V::Int(r[0]));
        }
        let (a, b) = (self.as_float(x)?, self.as_float(y)?);
        let zero = self.b.ins().f64const(0.0);
        let base_zero = self.b.ins().fcmp(FloatCC::Equal, a, zero);
        let negative = self.b.ins().fcmp(FloatCC::LessThan, b, zero);
        let bad = self.b.ins().band(base_zero, negative);
        self.fail_if(bad, pc, status::DIV_ZERO, None, None);
        Ok(V::Float(self.call_helper(Helper::Powf, &[a, b])[0]))
    }

    fn truthy(&mut self, v: V) -> CValue {
        match v {
            V::Bool(x) => x,
            V::Int(x) => self.b.ins().icmp_imm_s(IntCC::NotEqual, x, 0),
            V::Float(x) => {
                let z = self.b.ins().f64const(0.0);
                self.b.ins().fcmp(FloatCC::NotEqual, x, z)
            }
            V::Arr { len, .. } => self.b.ins().icmp_imm_s(IntCC::NotEqual, len, 0),
            V::ArrN { dims, rank, .. } => self.has_elements(&dims[..rank as usize]),
            V::Nil => self.b.ins().iconst(I8, 0),
            V::Func | V::Builtin | V::Closure(_) => self.b.ins().iconst(I8, 1),
            // 0 and 0.0 (and -0.0) are false: the float value says it for both kinds
            V::Num { tag, bits, float } => {
                let x = float.unwrap_or_else(|| self.num_float(tag, bits));
                let z = self.b.ins().f64const(0.0);
                self.b.ins().fcmp(FloatCC::NotEqual, x, z)
            }
        }
    }

    /// `x < y` and friends, exact between ints and floats; NaN compares false.
    fn compare(&mut self, cc: IntCC, x: V, y: V) -> Lowered<CValue> {
        let fcc = match cc {
            IntCC::SignedLessThan => FloatCC::LessThan,
            IntCC::SignedLessThanOrEqual => FloatCC::LessThanOrEqual,
            IntCC::SignedGreaterThan => FloatCC::GreaterThan,
            IntCC::SignedGreaterThanOrEqual => FloatCC::GreaterThanOrEqual,
            IntCC::Equal => FloatCC::Equal,
            _ => FloatCC::NotEqual,
        };
        if numtag::has_num(&[x, y]) {
            let V::Bool(v) = self.split_num(&[x, y], &mut |l, v| Ok(V::Bool(l.compare(cc, v[0], v[1])?)))? else {
                return Err("internal: a comparison that is not a bool".into());
            };
            return Ok(v);
        }
        Ok(match (x, y) {
            (V::Int(a), V::Int(b)) => self.b.ins().icmp(cc, a, b),
            (V::Float(a), V::Float(b)) => self.b.ins().fcmp(fcc, a, b),
            (V::Int(i), V::Float(f)) => self.int_float(cc, i, f),
            (V::Float(f), V::Int(i)) => self.int_float(cc.swap_args(), i, f),
            _ => return Err("internal: comparing non-numbers".into()),
        })
    }

    /// `i <cc> f` through the exact three-way comparison (2 means unordered).
    fn int_float(&mut self, cc: IntCC, i: CValue, f: CValue) -> CValue {
        let o = self.call_helper(Helper::CmpIntFloat, &[i, f])[0];
        let (lo, hi) = match cc {
            IntCC::SignedLessThan => (-1, -1),
            IntCC::SignedLessThanOrEqual => (-1, 0),
            IntCC::SignedGreaterThan => (1, 1),
            IntCC::SignedGreaterThanOrEqual => (0, 1),
            IntCC::Equal => (0, 0),
            _ => {
                let eq = self.b.ins().icmp_imm_s(IntCC::Equal, o, 0);
                return self.b.ins().bxor_imm_u(eq, 1);
            }
        };
        let ge = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThanOrEqual, o, lo);
        let le = self.b.ins().icmp_imm_s(IntCC::SignedLessThanOrEqual, o, hi);
        self.b.ins().band(ge, le)
    }

    /// `x == y` with the interpreter's rules: numbers by value, values of different types unequal.
    fn equal(&mut self, x: V, y: V) -> Lowered<CValue> {
        Ok(match (x, y) {
            (V::Int(_) | V::Float(_) | V::Num { .. }, V::Int(_) | V::Float(_) | V::Num { .. }) => {
                self.compare(IntCC::Equal, x, y)?
            }
            (V::Bool(a), V::Bool(b)) => self.b.ins().icmp(IntCC::Equal, a, b),
            (V::Nil, V::Nil) => self.b.ins().iconst(I8, 1),
            (V::Func | V::Builtin, _)
            | (_, V::Func | V::Builtin)
            | (V::Arr { .. } | V::ArrN { .. }, _)
            | (_, V::Arr { .. } | V::ArrN { .. }) => {
                return Err("internal: comparing functions or arrays".into());
            }
            _ => self.b.ins().iconst(I8, 0),
        })
    }

    /// Continues at `pc + 1` when `cond` holds, else at `target` (through a safe point when
    /// that jumps back).
    fn branch(&mut self, pc: usize, cond: CValue, target: u32) -> Lowered<bool> {
        let next = self.block(pc + 1)?;
        let t = self.block(target as usize)?;
        if target as usize > pc {
            self.b.ins().brif(cond, next, &[], t, &[]);
            return Ok(true);
        }
        let back = self.b.create_block();
        self.b.ins().brif(cond, next, &[], back, &[]);
        self.b.seal_block(back);
        self.b.switch_to_block(back);
        self.back_edge(pc, target as usize, None);
        self.b.ins().jump(t, &[]);
        Ok(true)
    }

    /// The back-edge at `pc` of the loop whose body starts at `header`: a safe point when the
    /// loop reads memory (an array element, an atomic operation, a global read from memory, or
    /// anything through a call). A loop that reads nothing another thread can write cannot wait for another
    /// thread, so it needs neither: it ends, or not, whatever other threads do, and a tight
    /// arithmetic loop keeps its speed (a poll costs 9% of `examples/loop.mini`).
    ///
    /// `counter` is the next value of a counted loop's variable when its step is 1: then the
    /// GIL's word is polled only when it is a multiple of [`POLL_STRIDE`], and the other
    /// iterations only keep the alias analysis's fence (a `sequence_point`, which emits nothing).
    /// Such a loop still reaches a poll within `POLL_STRIDE` iterations, each of bounded length
    /// (straight-line code, and calls or inner loops that poll themselves); the per-iteration
    /// poll cost 3.5% of `examples/spectral_norm.mini`.
    fn back_edge(&mut self, pc: usize, header: usize, counter: Option<CValue>) {
        let code = &self.plan.proto.code;
        let reads = code[header..=pc].iter().enumerate().any(|(j, ins)| match ins {
            Instr::GetIndex { .. } | Instr::GetIndexN { .. } | Instr::IterNext { .. } | Instr::Call { .. } => true,
            Instr::CallBuiltin { f: Builtin::AtomicAdd | Builtin::AtomicCas | Builtin::Sum | Builtin::In, .. } => true,
            Instr::GetGlobal { g, .. } => self.live_global(*g),
            Instr::GetField { .. } => self.plan.module_names.get(&(header + j)).is_some_and(|&g| self.live_global(g)),
            _ => false,
        });
        if !reads {
            return;
        }
        let Some(counter) = counter else {
            self.safe_point(pc);
            return;
        };
        self.b.ins().sequence_point();
        let low = self.b.ins().band_imm_u(counter, POLL_STRIDE - 1);
        let poll = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(poll);
        self.b.ins().brif(low, cont, &[], poll, &[]);
        self.b.seal_block(poll);
        self.b.switch_to_block(poll);
        self.safe_point(pc);
        let rest = self.b.current_block().expect("in a block");
        self.b.set_cold_block(rest);
        self.b.ins().jump(cont, &[]);
        self.b.seal_block(cont);
        self.b.switch_to_block(cont);
    }

    /// The safe point of a loop back-edge at `pc` (in the current block, which goes on after
    /// it). One atomic load of the GIL's attention word and a branch: when a drop request or
    /// Ctrl-C is pending, a cold call of `mini_jit_safe_point` hands the GIL over if this thread
    /// holds it (`--keep-gil`), and Ctrl-C on the main thread raises `interrupted` here. The
    /// call goes through a trampoline that preserves every register (engine.rs), so that the
    /// loop's values stay in registers around it: with an ordinary call the register allocator
    /// moved them to callee-saved registers and back, 1.5 times the time of a tight loop.
    ///
    /// The atomic load is also the loop's memory fence for Cranelift's alias analysis, which
    /// otherwise forwards a value stored before a loop, or loaded in an earlier iteration, into
    /// a load inside it (a loop without calls or stores keeps the state it was entered with):
    /// every iteration then reads memory again, so a spin-wait sees other threads' writes
    /// (lang-spec/threads.md, "Memory model"). On x86-64 it is a plain `mov`.
    fn safe_point(&mut self, pc: usize) {
        let (word, mask) = crate::gil::native_poll_word();
        let addr = self.iconst(word as i64);
        let bits = self.b.ins().atomic_load(types::I32, MemFlagsData::trusted(), addr);
        let pending = self.b.ins().band_imm_u(bits, i64::from(mask));
        let slow = self.b.create_block();
        let cont = self.b.create_block();
        self.b.set_cold_block(slow);
        self.b.ins().brif(pending, slow, &[], cont, &[]);
        self.b.seal_block(slow);
        self.b.switch_to_block(slow);
        let slot = self.b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 8, 3));
        let out = self.b.ins().stack_addr(I64, slot, 0);
        self.call_helper(Helper::SafePoint, &[out]);
        let st = self.b.ins().load(I64, MemFlagsData::trusted(), out, 0);
        self.fail_if(st, pc, status::INTERRUPTED, None, None);
        // the slow path's continuation is cold too, so that the loop's path stays straight
        let rest = self.b.current_block().expect("in a block");
        self.b.set_cold_block(rest);
        self.b.ins().jump(cont, &[]);
        self.b.seal_block(cont);
        self.b.switch_to_block(cont);
    }

    /// Whether compiled code reads global `g` from memory (see `Mirrors`).
    fn live_global(&self, g: u16) -> bool {
        self.mirrors.assigned(g as usize)
    }

    /// The address of element `i` of an array after the bounds check.
    fn element(&mut self, pc: usize, arr: V, i: V, regs: (Reg, Reg)) -> Lowered<(CValue, bool)> {
        let (V::Arr { ptr, len, float, .. }, V::Int(i)) = (arr, i) else {
            return Err("internal: indexing a non-array".into());
        };
        if self.assumed.as_ref().is_some_and(|a| a.scope == self.scope && a.unchecked.contains(&regs)) {
            let offset = self.b.ins().ishl_imm_u(i, 3);
            return Ok((self.b.ins().iadd(ptr, offset), float));
        }
        // the same index checked against the same length earlier in this straight run (the
        // load and the store of `a[i] += x`) needs no second check
        if self.checked.insert((BOUNDS_CHECKED, i, len), i).is_none() {
            let inside = self.b.ins().icmp(IntCC::UnsignedLessThan, i, len);
            self.fail_unless(inside, pc, status::INDEX, Some(i), Some(len));
        }
        let offset = self.b.ins().ishl_imm_u(i, 3);
        Ok((self.b.ins().iadd(ptr, offset), float))
    }

    /// A float that `floor`/`ceil`/`round`/`int` turn into an int: the interpreter's errors for NaN,
    /// infinities and values outside the int range.
    fn float_to_int(&mut self, pc: usize, x: CValue) -> CValue {
        let nan = self.b.ins().fcmp(FloatCC::Unordered, x, x);
        self.fail_if(nan, pc, status::NAN_TO_INT, None, None);
        let abs = self.b.ins().fabs(x);
        let inf = self.b.ins().f64const(f64::INFINITY);
        let is_inf = self.b.ins().fcmp(FloatCC::Equal, abs, inf);
        self.fail_if(is_inf, pc, status::INF_TO_INT, None, None);
        let hi = self.b.ins().f64const(9_223_372_036_854_775_808.0);
        let lo = self.b.ins().f64const(-9_223_372_036_854_775_808.0);
        let too_big = self.b.ins().fcmp(FloatCC::GreaterThanOrEqual, x, hi);
        let too_small = self.b.ins().fcmp(FloatCC::LessThan, x, lo);
        let out = self.b.ins().bor(too_big, too_small);
        self.fail_if(out, pc, status::OVERFLOW, None, None);
        self.b.ins().fcvt_to_sint(I64, x)
    }

    /// A builtin applied to already-lowered arguments.
    fn builtin(&mut self, pc: usize, f: Builtin, args: &[V]) -> Lowered<V> {
        use Builtin as B;
        let unary = |h| Some(h);
        let libm = match f {
            B::Sin => unary(Helper::Sin),
            B::Cos => unary(Helper::Cos),
            B::Tan => unary(Helper::Tan),
            B::Exp => unary(Helper::Exp),
            B::Log => unary(Helper::Log),
            _ => None,
        };
        if let Some(h) = libm {
            let x = self.as_float(args[0])?;
            return Ok(V::Float(self.call_helper(h, &[x])[0]));
        }
        Ok(match (f, args) {
            (B::Sqrt, [x]) => {
                let x = self.as_float(*x)?;
                V::Float(self.b.ins().sqrt(x))
            }
            (B::Floor | B::Ceil | B::Int | B::Round | B::Abs, [x @ V::Num { .. }]) => {
                self.split_num(&[*x], &mut |l, v| l.builtin(pc, f, v))?
            }
            (B::Floor | B::Ceil | B::Int | B::Round, [V::Int(x)]) => V::Int(*x),
            (B::Int, [V::Bool(x)]) => V::Int(self.b.ins().uextend(I64, *x)),
            (B::Floor | B::Ceil | B::Int | B::Round, [V::Float(x)]) => {
                let r = match f {
                    B::Floor => self.b.ins().floor(*x),
                    B::Ceil => self.b.ins().ceil(*x),
                    // half to even, as the interpreter's `round_ties_even`
                    B::Round => self.b.ins().nearest(*x),
                    _ => self.b.ins().trunc(*x),
                };
                V::Int(self.float_to_int(pc, r))
            }
            (B::Float, [x]) => V::Float(self.as_float(*x)?),
            (B::Abs, [V::Int(x)]) => {
                let min = self.b.ins().icmp_imm_s(IntCC::Equal, *x, i64::MIN);
                self.fail_if(min, pc, status::OVERFLOW, None, None);
                V::Int(self.b.ins().iabs(*x))
            }
            (B::Abs, [V::Float(x)]) => V::Float(self.b.ins().fabs(*x)),
            (B::Min | B::Max, [first, rest @ ..]) => {
                let cc = if f == B::Min { IntCC::SignedLessThan } else { IntCC::SignedGreaterThan };
                let mut best = *first;
                for v in rest {
                    let better = self.compare(cc, *v, best)?;
                    best = match (*v, best) {
                        (V::Int(a), V::Int(b)) => V::Int(self.b.ins().select(better, a, b)),
                        (V::Float(a), V::Float(b)) => V::Float(self.b.ins().select(better, a, b)),
                        // an int and a float: whichever wins, with its tag
                        _ => self.select_num(better, *v, best)?,
                    };
                }
                best
            }
            (B::Len, [V::Arr { len, .. }]) => V::Int(*len),
            (B::Len, [V::ArrN { dims, .. }]) => V::Int(dims[0]),
            (B::Shape, [V::Arr { ptr, len, float, .. }]) => {
                let own = self.iconst(0);
                V::ArrN { ptr: *ptr, dims: [*len; crate::value::MAX_DIMS], rank: 1, float: *float, own }
            }
            // the dimensions only: the register's count of the array is let go (`put`)
            (B::Shape, [V::ArrN { ptr, dims, rank, float, .. }]) => {
                let own = self.iconst(0);
                V::ArrN { ptr: *ptr, dims: *dims, rank: *rank, float: *float, own }
            }
            (B::Sum | B::In, [arr @ V::ArrN { .. }, rest @ ..]) => self.whole_array_n(pc, f, *arr, rest)?,
            (B::Sum, [V::Arr { ptr, len, float, .. }]) => self.sum_array(pc, *ptr, *len, *float),
            (B::AtomicAdd, [arr, i, v]) => self.atomic_add(pc, *arr, *i, *v)?,
            (B::AtomicCas, [arr, i, expected, new]) => self.atomic_cas(pc, *arr, *i, *expected, *new)?,
            (B::Random | B::Randint | B::Uniform | B::Gauss, _) => self.random(pc, f, args)?,
            (B::In, [V::Arr { ptr, len, float, .. }, x]) => self.array_has(*ptr, *len, *float, *x)?,
            (B::Array, [shape @ V::ArrN { .. }, fill]) => self.new_array_shaped(pc, *shape, *fill)?,
            (B::Array, [n, fill]) => self.new_array(pc, *n, *fill)?,
            _ => return Err(format!("internal: builtin {} not lowered", f.name())),
        })
    }

    /// `random()`, `randint(a, b)`, `uniform(a, b)`, `gauss(mu, sigma)`: calls of the runtime's
    /// helpers, which draw from the thread's generator as the interpreter does; `randint` first
    /// raises the interpreter's error when `a > b`.
    fn random(&mut self, pc: usize, f: Builtin, args: &[V]) -> Lowered<V> {
        use Builtin as B;
        Ok(match (f, args) {
            (B::Random, []) => V::Float(self.call_helper(Helper::Random, &[])[0]),
            (B::Randint, [V::Int(a), V::Int(b)]) => {
                let empty = self.b.ins().icmp(IntCC::SignedGreaterThan, *a, *b);
                self.fail_if(empty, pc, status::RANDINT_EMPTY, Some(*a), Some(*b));
                V::Int(self.call_helper(Helper::Randint, &[*a, *b])[0])
            }
            (B::Uniform | B::Gauss, [x, y]) => {
                let (x, y) = (self.as_float(*x)?, self.as_float(*y)?);
                let h = if f == B::Uniform { Helper::Uniform } else { Helper::Gauss };
                V::Float(self.call_helper(h, &[x, y])[0])
            }
            _ => return Err(format!("internal: {} of unexpected arguments", f.name())),
        })
    }

    /// `x in a` for an array: a call of the runtime's linear search, which compares with the
    /// interpreter's `==` (an int and a float by exact value). A float `x` travels as its bits.
    fn array_has(&mut self, ptr: CValue, len: CValue, float_elems: bool, x: V) -> Lowered<V> {
        let (bits, float_x) = match x {
            V::Int(i) => (i, false),
            V::Float(f) => (self.b.ins().bitcast(I64, MemFlagsData::new(), f), true),
            V::Num { tag, bits, .. } => {
                // the tag says at run time whether the bits are a float's
                let tag = self.b.ins().uextend(I64, tag);
                let shifted = self.b.ins().ishl_imm_u(tag, 1);
                let kind = self.b.ins().bor_imm_u(shifted, i64::from(float_elems));
                return Ok(V::Bool(self.call_helper(Helper::ArrayHas, &[ptr, len, bits, kind])[0]));
            }
            _ => return Err("internal: membership of a non-number in an array".into()),
        };
        let kind = self.iconst(i64::from(float_elems) | (i64::from(float_x) << 1));
        Ok(V::Bool(self.call_helper(Helper::ArrayHas, &[ptr, len, bits, kind])[0]))
    }

    /// `sum(a)` of an int or float array: a loop adding the elements to 0 (0.0) left to right,
    /// the interpreter's order and so its float result bit for bit (its `0 + a[0]` is `0.0 +
    /// a[0]`); an int sum that overflows raises `integer overflow` at the call. The loop has no
    /// safe point of its own: it ends after `len` elements, each a load and an add.
    fn sum_array(&mut self, pc: usize, ptr: CValue, len: CValue, float: bool) -> V {
        let ty = if float { F64 } else { I64 };
        let zero = if float { self.b.ins().f64const(0.0) } else { self.iconst(0) };
        let first = self.iconst(0);
        let header = self.b.create_block();
        let i = self.b.append_block_param(header, I64);
        let acc = self.b.append_block_param(header, ty);
        let body = self.b.create_block();
        let done = self.b.create_block();
        let total = self.b.append_block_param(done, ty);
        self.b.ins().jump(header, &[BlockArg::Value(first), BlockArg::Value(zero)]);
        self.b.switch_to_block(header);
        let more = self.b.ins().icmp(IntCC::SignedLessThan, i, len);
        self.b.ins().brif(more, body, &[], done, &[BlockArg::Value(acc)]);
        self.b.seal_block(body);
        self.b.switch_to_block(body);
        let offset = self.b.ins().ishl_imm_u(i, 3);
        let addr = self.b.ins().iadd(ptr, offset);
        let x = self.b.ins().load(ty, MemFlagsData::trusted(), addr, 0);
        let next = if float {
            self.b.ins().fadd(acc, x)
        } else {
            let (sum, overflow) = self.b.ins().sadd_overflow(acc, x);
            self.fail_if(overflow, pc, status::OVERFLOW, None, None);
            sum
        };
        let step = self.b.ins().iadd_imm_s(i, 1);
        self.b.ins().jump(header, &[BlockArg::Value(step), BlockArg::Value(next)]);
        self.b.seal_block(header);
        self.b.seal_block(done);
        self.b.switch_to_block(done);
        if float { V::Float(total) } else { V::Int(total) }
    }

    /// The address of element `i` of an int array for an atomic operation, after the bounds
    /// check (shared with `a[i]`'s through `checked`: either one makes the other redundant).
    fn atomic_element(&mut self, pc: usize, arr: V, i: V) -> Lowered<CValue> {
        let (V::Arr { ptr, len, float: false, .. }, V::Int(i)) = (arr, i) else {
            return Err("internal: an atomic operation on a non-int array".into());
        };
        if self.checked.insert((BOUNDS_CHECKED, i, len), i).is_none() {
            let inside = self.b.ins().icmp(IntCC::UnsignedLessThan, i, len);
            self.fail_unless(inside, pc, status::INDEX, Some(i), Some(len));
        }
        let offset = self.b.ins().ishl_imm_u(i, 3);
        Ok(self.b.ins().iadd(ptr, offset))
    }

    /// `atomic_add(a, i, v)`: a compare-and-swap loop (read, checked add, swap if unchanged,
    /// else retry with the value seen), so that an overflowing sum raises `integer overflow`
    /// and stores nothing. The result is the old value. Cranelift's atomics are sequentially
    /// consistent, and its alias analysis treats them as fences.
    fn atomic_add(&mut self, pc: usize, arr: V, i: V, v: V) -> Lowered<V> {
        let addr = self.atomic_element(pc, arr, i)?;
        let V::Int(v) = v else { return Err("internal: atomic_add of a non-int".into()) };
        let first = self.b.ins().atomic_load(I64, MemFlagsData::trusted(), addr);
        let retry = self.b.create_block();
        let old = self.b.append_block_param(retry, I64);
        self.b.ins().jump(retry, &[BlockArg::Value(first)]);
        self.b.switch_to_block(retry);
        let (sum, overflow) = self.b.ins().sadd_overflow(old, v);
        self.fail_if(overflow, pc, status::OVERFLOW, None, None);
        let seen = self.b.ins().atomic_cas(MemFlagsData::trusted(), addr, old, sum);
        let stored = self.b.ins().icmp(IntCC::Equal, seen, old);
        let done = self.b.create_block();
        self.b.ins().brif(stored, done, &[], retry, &[BlockArg::Value(seen)]);
        self.b.seal_block(retry);
        self.b.seal_block(done);
        self.b.switch_to_block(done);
        Ok(V::Int(old))
    }

    /// `atomic_cas(a, i, expected, new)`: one compare-and-swap; the result is whether it stored.
    fn atomic_cas(&mut self, pc: usize, arr: V, i: V, expected: V, new: V) -> Lowered<V> {
        let addr = self.atomic_element(pc, arr, i)?;
        let (V::Int(expected), V::Int(new)) = (expected, new) else {
            return Err("internal: atomic_cas of a non-int".into());
        };
        let seen = self.b.ins().atomic_cas(MemFlagsData::trusted(), addr, expected, new);
        Ok(V::Bool(self.b.ins().icmp(IntCC::Equal, seen, expected)))
    }

    /// A call of another compiled function: the recursion limit, the call, and the status check.
    fn call_compiled(&mut self, pc: usize, id: FuncId, args: &[V], ret: Ty) -> Lowered<V> {
        let room = self.room.expect("set in the entry block");
        self.check_room(pc, room);
        self.call_checked(pc, id, args, ret)
    }

    /// The call and the status check of `call_compiled`, once the recursion limit is checked.
    fn call_checked(&mut self, pc: usize, id: FuncId, args: &[V], ret: Ty) -> Lowered<V> {
        let room = self.room.expect("set in the entry block");
        let mut values = vec![self.b.ins().iadd_imm_s(room, -1)];
        for a in args {
            // a function argument is part of the callee's signature: only its captured values
            // are machine parameters
            values.extend(self.parts_of(*a));
        }
        let f = match self.callee_refs.get(&id) {
            Some(f) => *f,
            None => {
                let f = self.module.declare_func_in_func(id, self.b.func);
                self.callee_refs.insert(id, f);
                f
            }
        };
        let inst = self.b.ins().call(f, &values);
        let results = self.b.inst_results(inst).to_vec();
        let (values, st) = results.split_at(results.len() - 1);
        let st = st[0];
        let failed = self.b.create_block();
        let ok = self.b.create_block();
        self.b.set_cold_block(failed);
        // an int or float comes back with `FLOAT_RESULT` or `OK`; errors are positive
        let failing = if ret == Ty::Num { self.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, st, 0) } else { st };
        self.b.ins().brif(failing, failed, &[], ok, &[]);
        self.b.seal_block(failed);
        self.b.seal_block(ok);
        self.b.switch_to_block(failed);
        self.leave_through_site(pc, status::OK, st, [None, None]);
        self.b.switch_to_block(ok);
        Ok(match ret {
            Ty::Num => {
                V::Num { tag: self.b.ins().icmp_imm_s(IntCC::Equal, st, FLOAT_RESULT), bits: values[0], float: None }
            }
            _ => returned(ret, values),
        })
    }

    fn global(&mut self, pc: usize, g: u16, st_type: T) -> Lowered<V> {
        let v = self.plan.globals.get(&g).ok_or("internal: global not read during inference")?;
        if self.live_global(g) {
            return self.global_from_memory(pc, g, v, st_type);
        }
        self.constant_global(g, v, st_type)
    }

    /// A global's value as compiled code sees it when it is a constant of the code.
    fn constant_global(&mut self, g: u16, v: &Value, st_type: T) -> Lowered<V> {
        Ok(match v {
            Value::Int(i) => V::Int(self.b.ins().iconst(I64, *i)),
            Value::Float(f) => V::Float(self.b.ins().f64const(*f)),
            Value::Bool(b) => V::Bool(self.b.ins().iconst(I8, *b as i64)),
            Value::Nil => V::Nil,
            Value::Array(a) if !a.dims.is_empty() => self.constant_array_n(g, a),
            Value::Array(a) => {
                let ptr = self.address(a.data.as_ptr() as usize, Named::ArrayData(g));
                let len = self.iconst(a.len() as i64);
                let own = self.address(crate::jit::alloc::interpreter_own(a) as usize, Named::ArrayOwn(g));
                V::Arr { ptr, len, own, float: a.kind == ElemKind::Float }
            }
            Value::Func(_) | Value::Module(_) => V::Func,
            Value::Builtin(_) => V::Builtin,
            other => return Err(format!("internal: global of type {} ({st_type:?})", other.type_name())),
        })
    }

    /// A read of a global the program assigns, from its mirror cell (see mirror.rs): the bits
    /// (an atomic load, which also keeps Cranelift from reusing an earlier read), then the tag,
    /// which must be the one this code was compiled for, and for an array or function the
    /// identity too; otherwise the error that the global changed under the running code. A
    /// number or bool is the value read; an array or function is the compile-time one, which
    /// the specialization keeps alive.
    fn global_from_memory(&mut self, pc: usize, g: u16, v: &Value, st_type: T) -> Lowered<V> {
        let expected = self.mirrors.expect(g, v);
        let cell = self.mirrors.cell(g);
        let bits_addr = self.address(&cell.bits as *const _ as usize, Named::MirrorBits(g));
        let tag_addr = self.address(&cell.tag as *const _ as usize, Named::MirrorTag(g));
        let bits = self.b.ins().atomic_load(I64, MemFlagsData::trusted(), bits_addr);
        let tag = self.b.ins().load(I64, MemFlagsData::trusted(), tag_addr, 0);
        let mut changed = self.b.ins().icmp_imm_s(IntCC::NotEqual, tag, expected as i64);
        if super::mirror::by_identity(expected) {
            let other = match v {
                Value::Array(_) | Value::Func(_) => {
                    let identity = self.address(Mirrors::bits_of(v) as usize, Named::Identity(g));
                    self.b.ins().icmp(IntCC::NotEqual, bits, identity)
                }
                _ => self.b.ins().icmp_imm_s(IntCC::NotEqual, bits, Mirrors::bits_of(v) as i64),
            };
            changed = self.b.ins().bor(changed, other);
        }
        let name = self.plan.global_names.get(&g).cloned().unwrap_or_default();
        let named = Named::GlobalSite { name: name.clone(), expected };
        let site = Box::leak(Box::new(GlobalSite { name, expected }));
        let site = self.address(site as *const GlobalSite as usize, named);
        self.fail_if(changed, pc, status::GLOBAL_CHANGED, Some(site), Some(tag));
        Ok(match v {
            Value::Int(_) => V::Int(bits),
            Value::Float(_) => V::Float(self.b.ins().bitcast(F64, MemFlagsData::new(), bits)),
            Value::Bool(_) => V::Bool(self.b.ins().ireduce(I8, bits)),
            // nil, an array or a function: the compile-time value (its identity was checked)
            _ => return self.constant_global(g, v, st_type),
        })
    }

    /// Lowers one instruction; true when it ended the block.
    #[allow(clippy::too_many_lines)]
    fn instr(&mut self, pc: usize, ins: Instr, st: &[T]) -> Lowered<bool> {
        use Instr as I;
        match ins {
            I::LoadNil { a } => self.put(a, V::Nil),
            I::LoadBool { a, b } => {
                let v = self.b.ins().iconst(I8, b as i64);
                self.put(a, V::Bool(v));
            }
            I::LoadInt { a, v } => {
                let v = self.iconst(v as i64);
                self.put(a, V::Int(v));
            }
            I::LoadK { a, k } => {
                let v = self.konst(k)?;
                self.put(a, v);
            }
            I::Move { a, b } => {
                // a value compiled code cannot use is moved, never read (`infer::read_or_other`)
                let v = if matches!(st[b as usize], T::Val(Ty::Other(_))) { V::Nil } else { self.get(st, b)? };
                if let (true, Some(own)) = (self.owned.counting, v.own()) {
                    self.retain(own);
                }
                self.put(a, v);
            }
            I::GetGlobal { a, g } => {
                let v = self.global(pc, g, st[a as usize])?;
                self.put(a, v);
            }
            I::GetField { a, .. } if self.plan.module_names.contains_key(&pc) => {
                let g = self.plan.module_names[&pc];
                let v = self.global(pc, g, st[a as usize])?;
                self.put(a, v);
            }
            I::Add { a, b, c } | I::Sub { a, b, c } | I::Mul { a, b, c } => {
                let (x, y) = (self.get(st, b)?, self.get(st, c)?);
                let v = self.arith(pc, ins, x, y)?;
                self.put(a, v);
            }
            I::AddK { a, b, k } | I::SubK { a, b, k } if self.plan.no_overflow.contains(&pc) => {
                let (V::Int(x), Value::Int(c)) = (self.get(st, b)?, &self.plan.proto.consts[k as usize]) else {
                    return Err("internal: unchecked arithmetic on a non-int".into());
                };
                let delta = if matches!(ins, I::SubK { .. }) { -*c } else { *c };
                let v = self.b.ins().iadd_imm_s(x, delta);
                self.put(a, V::Int(v));
            }
            I::AddK { a, b, k } | I::SubK { a, b, k } | I::MulK { a, b, k } => {
                let (x, y) = (self.get(st, b)?, self.konst(k)?);
                let v = self.arith(pc, ins, x, y)?;
                self.put(a, v);
            }
            I::KAdd { a, b, .. } if self.plan.no_overflow.contains(&pc) => {
                let V::Int(x) = self.get(st, b)? else { return Err("internal: increment of a non-int".into()) };
                let v = self.b.ins().iadd_imm_s(x, 1);
                self.put(a, V::Int(v));
            }
            I::KAdd { a, b, k } | I::KSub { a, b, k } | I::KMul { a, b, k } => {
                let (x, y) = (self.konst(k)?, self.get(st, b)?);
                let v = self.arith(pc, ins, x, y)?;
                self.put(a, v);
            }
            I::Div { a, b, c } => {
                let (x, y) = (self.get(st, b)?, self.get(st, c)?);
                let v = self.divide(pc, x, y)?;
                self.put(a, v);
            }
            I::DivK { a, b, k } => {
                let (x, y) = (self.get(st, b)?, self.konst(k)?);
                let v = self.divide(pc, x, y)?;
                self.put(a, v);
            }
            I::KDiv { a, b, k } => {
                let (x, y) = (self.konst(k)?, self.get(st, b)?);
                let v = self.divide(pc, x, y)?;
                self.put(a, v);
            }
            I::FloorDiv { a, b, c } | I::Mod { a, b, c } => {
                let (x, y) = (self.get(st, b)?, self.get(st, c)?);
                let divisor = self.plan.const_int_before(pc, c);
                let v = self.floor_op(pc, x, y, matches!(ins, I::FloorDiv { .. }), divisor)?;
                self.put(a, v);
            }
            I::ModK { a, b, k } => {
                let (x, y) = (self.get(st, b)?, self.konst(k)?);
                let divisor = match self.plan.proto.consts[k as usize] {
                    Value::Int(d) => Some(d),
                    _ => None,
                };
                let v = self.floor_op(pc, x, y, false, divisor)?;
                self.put(a, v);
            }
            I::Pow { a, b, c } => {
                let (x, y) = (self.get(st, b)?, self.get(st, c)?);
                let int_result = self.plan.const_int_before(pc, c).is_some_and(|e| e >= 0);
                if let (V::Int(base), V::Int(_), false) = (x, y, int_result) {
                    // int ** negative int: a float, and 0 ** -n divides by zero
                    let zero = self.b.ins().icmp_imm_s(IntCC::Equal, base, 0);
                    self.fail_if(zero, pc, status::DIV_ZERO, None, None);
                }
                let v = self.power(pc, x, y, int_result)?;
                self.put(a, v);
            }
            I::Neg { a, b } => {
                let x = self.get(st, b)?;
                let v = self.negate(pc, x)?;
                self.put(a, v);
            }
            I::BitAnd { a, b, c } | I::BitOr { a, b, c } | I::BitXor { a, b, c } => {
                let (V::Int(x), V::Int(y)) = (self.get(st, b)?, self.get(st, c)?) else {
                    return Err("internal: a bit operation on a non-int".into());
                };
                let v = match ins {
                    I::BitAnd { .. } => {
                        let interval = self.interval(x).bit_and(self.interval(y));
                        let v = self.b.ins().band(x, y);
                        self.know(v, interval);
                        v
                    }
                    I::BitOr { .. } => self.b.ins().bor(x, y),
                    _ => self.b.ins().bxor(x, y),
                };
                self.put(a, V::Int(v));
            }
            I::Shl { a, b, c } | I::Shr { a, b, c } => {
                let (V::Int(x), V::Int(y)) = (self.get(st, b)?, self.get(st, c)?) else {
                    return Err("internal: a shift of a non-int".into());
                };
                let v = self.shift(pc, x, y, matches!(ins, I::Shl { .. }));
                self.put(a, V::Int(v));
            }
            I::BitNot { a, b } => {
                let V::Int(x) = self.get(st, b)? else { return Err("internal: ~ of a non-int".into()) };
                let interval = self.interval(x).bit_not();
                let v = self.b.ins().bnot(x);
                self.know(v, interval);
                self.put(a, V::Int(v));
            }
            I::Not { a, b } => {
                let x = self.get(st, b)?;
                let t = self.truthy(x);
                let v = self.b.ins().bxor_imm_u(t, 1);
                self.put(a, V::Bool(v));
            }
            I::Eq { a, b, c } | I::Ne { a, b, c } => {
                let (x, y) = (self.get(st, b)?, self.get(st, c)?);
                let mut v = self.equal(x, y)?;
                if matches!(ins, I::Ne { .. }) {
                    v = self.b.ins().bxor_imm_u(v, 1);
                }
                self.put(a, V::Bool(v));
            }
            I::Lt { a, b, c } | I::Le { a, b, c } | I::Gt { a, b, c } | I::Ge { a, b, c } => {
                let (x, y) = (self.get(st, b)?, self.get(st, c)?);
                let v = self.compare(order_cc(ins)?, x, y)?;
                self.put(a, V::Bool(v));
            }
            I::Jump { t } => {
                let target = self.block(t as usize)?;
                if t as usize <= pc {
                    self.back_edge(pc, t as usize, None);
                }
                self.b.ins().jump(target, &[]);
                return Ok(true);
            }
            I::JumpIfFalse { a, t } | I::JumpIfTrue { a, t } => {
                let x = self.get(st, a)?;
                let mut cond = self.truthy(x);
                if matches!(ins, I::JumpIfTrue { .. }) {
                    cond = self.b.ins().bxor_imm_u(cond, 1);
                }
                return self.branch(pc, cond, t);
            }
            I::JumpIfNotLt { a, b, t }
            | I::JumpIfNotLe { a, b, t }
            | I::JumpIfNotGt { a, b, t }
            | I::JumpIfNotGe { a, b, t } => {
                let (x, y) = (self.get(st, a)?, self.get(st, b)?);
                let cond = self.compare(order_cc(ins)?, x, y)?;
                return self.branch(pc, cond, t);
            }
            I::JumpIfNotLtK { a, k, t }
            | I::JumpIfNotLeK { a, k, t }
            | I::JumpIfNotGtK { a, k, t }
            | I::JumpIfNotGeK { a, k, t } => {
                let (x, y) = (self.get(st, a)?, self.konst(k)?);
                let cond = self.compare(order_cc(ins)?, x, y)?;
                return self.branch(pc, cond, t);
            }
            I::JumpIfNotEq { a, b, t } | I::JumpIfNotNe { a, b, t } => {
                let (x, y) = (self.get(st, a)?, self.get(st, b)?);
                let mut cond = self.equal(x, y)?;
                if matches!(ins, I::JumpIfNotNe { .. }) {
                    cond = self.b.ins().bxor_imm_u(cond, 1);
                }
                return self.branch(pc, cond, t);
            }
            I::PrangePrep { a, p, t } => return self.prange_prep(pc, st, a, p, t),
            I::PrangeBlock { a } => self.prange_block(pc, st, a)?,
            I::ReduceInit { a, b, op } => self.reduce_init(st, a, b, op)?,
            I::ReduceCombine { a, b, op } => self.reduce_combine(pc, st, a, b, op)?,
            I::PrangeNext { a, t } => return self.prange_next(pc, st, a, t),
            I::ForPrep { a, t } => return self.for_prep(pc, st, a, t),
            I::ForLoop { a, t } => return self.for_loop(pc, st, a, t),
            I::IterPrep { a } => {
                let zero = self.iconst(0);
                self.put(a + 1, V::Int(zero));
            }
            I::IterNext { a, t } => return self.iter_next(pc, st, a, t),
            I::Call { a, n } => {
                let plan: &'a Plan = self.plan;
                let plans: &'a [Plan] = self.plans;
                // the callee's inferred body when it is small enough to inline: a plan of this
                // session, or one kept by an earlier specialization
                let inline: Option<&'a Plan> = match plan.calls.get(&pc) {
                    Some(Target::Plan(j)) => Some(&plans[*j]),
                    Some(Target::Spec(spec)) => spec.plan(),
                    _ => None,
                };
                if let Some(bail) = self.bail {
                    let Some(callee) = inline.filter(|p| self.nested_leaf_paths_inlinable(p)) else {
                        // a callee's leaf path ends here: the real call starts it afresh
                        self.b.ins().jump(bail, &[]);
                        return Ok(true);
                    };
                    let args: Vec<V> = (a + 1..a + 1 + n).map(|r| self.get(st, r)).collect::<Result<_, _>>()?;
                    let v = self.nested_leaf_path_call(pc, callee, &args)?;
                    self.put(a, v);
                    return Ok(false);
                }
                let mut args: Vec<V> = (a + 1..a + 1 + n).map(|r| self.get(st, r)).collect::<Result<_, _>>()?;
                if let V::Closure(i) = self.get(st, a)? {
                    // a closure passed as an argument: its captured values follow the arguments
                    args.extend(self.closure_vals[i].clone());
                }
                let v = match plan.calls.get(&pc) {
                    Some(Target::Builtin(f)) => self.builtin(pc, *f, &args)?,
                    _ if inline.is_some_and(|p| self.inlinable(p)) => {
                        self.inline_call(pc, inline.expect("checked"), &args)?
                    }
                    Some(Target::Plan(j)) if self.leaf_paths_inlinable(&plans[*j]) => {
                        let (id, ret) = self.plan_ids[*j];
                        self.leaf_path_call(pc, &plans[*j], &args, id, ret)?
                    }
                    Some(Target::Spec(spec)) if inline.is_some_and(|p| self.leaf_paths_inlinable(p)) => {
                        let (id, ret) = (spec.func_id, spec.ret);
                        self.leaf_path_call(pc, inline.expect("checked"), &args, id, ret)?
                    }
                    Some(Target::Plan(j)) => {
                        let (id, ret) = self.plan_ids[*j];
                        self.call_compiled(pc, id, &args, ret)?
                    }
                    Some(Target::Spec(spec)) => {
                        let (id, ret) = (spec.func_id, spec.ret);
                        self.call_compiled(pc, id, &args, ret)?
                    }
                    None => return Err("internal: call without a target".into()),
                };
                self.put(a, v);
            }
            I::CallBuiltin { a, n, f } => {
                let args: Vec<V> = (a..a + n).map(|r| self.get(st, r)).collect::<Result<_, _>>()?;
                let v = self.builtin(pc, f, &args)?;
                self.put(a, v);
            }
            I::Return { a } => {
                let v = self.get(st, a)?;
                if self.returns_num() {
                    self.return_num(v)?;
                    return Ok(true);
                }
                if self.return_through_epilogue(v) {
                    return Ok(true);
                }
                let values = match v {
                    V::Int(x) | V::Float(x) | V::Bool(x) => vec![x],
                    V::Arr { .. } | V::ArrN { .. } => self.parts_of(v),
                    _ => vec![],
                };
                self.return_value(&values);
                return Ok(true);
            }
            I::ReturnNil => {
                if self.returns_num() {
                    return Err("internal: returning nil from a function that returns an int or float".into());
                }
                if self.return_through_epilogue(V::Nil) {
                    return Ok(true);
                }
                self.return_value(&[]);
                return Ok(true);
            }
            I::GetIndex { a, b, c } if matches!(st[b as usize], T::Shape(_)) => {
                let (dims, k) = (self.get(st, b)?, self.get(st, c)?);
                let v = self.shape_index(pc, dims, k)?;
                self.put(a, v);
            }
            I::GetIndex { a, b, c } => {
                let (arr, i) = (self.get(st, b)?, self.get(st, c)?);
                let (addr, float) = self.element(pc, arr, i, (b, c))?;
                let v = if float {
                    V::Float(self.b.ins().load(F64, MemFlagsData::trusted(), addr, 0))
                } else {
                    V::Int(self.b.ins().load(I64, MemFlagsData::trusted(), addr, 0))
                };
                self.put(a, v);
            }
            I::SetIndex { a, b, c } => {
                let (arr, i, v) = (self.get(st, a)?, self.get(st, b)?, self.get(st, c)?);
                let (addr, float) = self.element(pc, arr, i, (a, b))?;
                let x = if float {
                    self.as_float(v)?
                } else {
                    let V::Int(x) = v else { return Err("internal: storing a non-int".into()) };
                    x
                };
                self.b.ins().store(MemFlagsData::trusted(), x, addr, 0);
            }
            I::GetIndexN { a, b, c, n } => self.get_index_n(pc, st, a, b, c, n)?,
            I::SetIndexN { a, b, c, n } => self.set_index_n(pc, st, a, b, c, n)?,
            I::GetUpval { a, u, .. } if self.plan.capture_type(u).is_some() => {
                let v = *self.upvals.get(u as usize).ok_or("internal: a captured value not passed")?;
                self.put(a, v);
            }
            // inference lets through only the shape of an `array` call (`T::Dims`)
            I::NewList { a, b, n } => self.shape_literal(st, a, b, n)?,
            I::SetGlobal { .. }
            | I::DefGlobal { .. }
            | I::GetUpval { .. }
            | I::SetUpval { .. }
            | I::NewCell { .. }
            | I::NewEmptyCell { .. }
            | I::GetCell { .. }
            | I::SetCell { .. }
            | I::Closure { .. }
            | I::NewDict { .. }
            | I::Slice { .. }
            | I::GetField { .. }
            | I::SetField { .. }
            | I::Import { .. }
            | I::Try
            | I::Reraise { .. }
            | I::MulAdd { .. }
            | I::MulAddT { .. }
            | I::MulSub { .. }
            | I::Move2 { .. }
            | I::IndexAdd { .. }
            | I::IndexAddT { .. }
            | I::IndexSub { .. }
            | I::IndexSubT { .. }
            | I::IndexMul { .. }
            | I::IndexMulT { .. } => return Err(format!("internal: {ins:?} is not compilable")),
        }
        Ok(false)
    }

    /// `return` of `values` (none for nil): from the function, or from inlined code to the
    /// block after the call.
    fn return_value(&mut self, values: &[CValue]) {
        if let Some((cont, ret)) = self.ret_to {
            let values = match (ret, values) {
                (Ty::Nil, _) => vec![],
                (_, []) => self.zeros(ret),
                _ => values.to_vec(),
            };
            let args: Vec<BlockArg> = values.into_iter().map(BlockArg::Value).collect();
            self.b.ins().jump(cont, &args);
            return;
        }
        let mut values = if values.is_empty() { self.zeros(self.plan.ret_ty()) } else { values.to_vec() };
        values.push(self.iconst(status::OK));
        self.b.ins().return_(&values);
    }

    /// The start of a counted loop (both `for` setups): its start, stop and step, the error
    /// `range() step must not be zero`, and the loop variable set to the start.
    fn range_start(&mut self, pc: usize, st: &[T], a: Reg) -> Lowered<(CValue, CValue, CValue)> {
        let (V::Int(start), V::Int(stop), V::Int(step)) =
            (self.get(st, a)?, self.get(st, a + 1)?, self.get(st, a + 2)?)
        else {
            return Err("internal: range of non-ints".into());
        };
        let known = self.interval(step);
        if known.lo <= 0 && known.hi >= 0 {
            let zero = self.b.ins().icmp_imm_s(IntCC::Equal, step, 0);
            // a `prange` loop's own (`PrangePrep`), or a refused one's `ForPrep`, names `prange`
            let prange = matches!(self.plan.proto.code[pc], Instr::PrangePrep { .. })
                || self.plan.proto.pranges.iter().any(|p| p.prep as usize == pc);
            let code = if prange { status::PRANGE_STEP_ZERO } else { status::STEP_ZERO };
            self.fail_if(zero, pc, code, None, None);
        }
        self.put(a + 3, V::Int(start));
        Ok((start, stop, step))
    }

    /// `for` setup: `range() step must not be zero`, then skip an empty range.
    fn for_prep(&mut self, pc: usize, st: &[T], a: Reg, t: u32) -> Lowered<bool> {
        let (start, stop, step) = self.range_start(pc, st, a)?;
        let known = self.interval(step);
        let more = if known.lo > 0 {
            self.b.ins().icmp(IntCC::SignedLessThan, start, stop)
        } else if known.hi < 0 {
            self.b.ins().icmp(IntCC::SignedGreaterThan, start, stop)
        } else {
            let up = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, step, 0);
            let more_up = self.b.ins().icmp(IntCC::SignedLessThan, start, stop);
            let more_down = self.b.ins().icmp(IntCC::SignedGreaterThan, start, stop);
            self.b.ins().select(up, more_up, more_down)
        };
        self.branch(pc, more, t)
    }

    /// `for` step: advance, and jump back while inside the range (an overflow ends the loop).
    fn for_loop(&mut self, pc: usize, st: &[T], a: Reg, t: u32) -> Lowered<bool> {
        let (V::Int(i), V::Int(stop), V::Int(step)) = (self.get(st, a)?, self.get(st, a + 1)?, self.get(st, a + 2)?)
        else {
            return Err("internal: range of non-ints".into());
        };
        let more = match self.loop_step(a, t) {
            // i < stop inside the loop, so i + 1 cannot overflow
            Some(1) => {
                let next = self.b.ins().iadd_imm_s(i, 1);
                let more = self.b.ins().icmp(IntCC::SignedLessThan, next, stop);
                (next, more)
            }
            known => {
                let (next, of) = self.b.ins().sadd_overflow(i, step);
                let inside = match known {
                    Some(k) if k > 0 => self.b.ins().icmp(IntCC::SignedLessThan, next, stop),
                    Some(_) => self.b.ins().icmp(IntCC::SignedGreaterThan, next, stop),
                    None => {
                        let up = self.b.ins().icmp_imm_s(IntCC::SignedGreaterThan, step, 0);
                        let below = self.b.ins().icmp(IntCC::SignedLessThan, next, stop);
                        let above = self.b.ins().icmp(IntCC::SignedGreaterThan, next, stop);
                        self.b.ins().select(up, below, above)
                    }
                };
                let no_of = self.b.ins().bxor_imm_u(of, 1);
                (next, self.b.ins().band(inside, no_of))
            }
        };
        let (next, more) = more;
        let counter = (self.loop_step(a, t) == Some(1)).then_some(next);
        let again = self.b.create_block();
        let done = self.block(pc + 1)?;
        // the exit is the branch's first target: Cranelift lays a block's successors out last
        // first (its reverse postorder), so the back-edge block comes right after the loop's
        // body, and an iteration ends with one taken jump instead of two
        let finished = self.b.ins().icmp_imm_s(IntCC::Equal, more, 0);
        self.b.ins().brif(finished, done, &[], again, &[]);
        self.b.seal_block(again);
        self.b.switch_to_block(again);
        self.put(a, V::Int(next));
        self.put(a + 3, V::Int(next));
        self.back_edge(pc, t as usize, counter);
        let target = self.block(t as usize)?;
        self.b.ins().jump(target, &[]);
        Ok(true)
    }

    /// The step of the counted loop whose `ForLoop` has registers `a` and jumps back to `t`, when
    /// it is a constant (the usual `range(n)`): its `ForPrep` sits just before the body.
    fn loop_step(&self, a: Reg, t: u32) -> Option<i64> {
        let prep = (t as usize).checked_sub(1)?;
        match self.plan.proto.code.get(prep)? {
            Instr::ForPrep { a: pa, .. } if *pa == a => self.plan.const_int_before(prep, a + 2),
            _ => None,
        }
    }

    /// `for x in array`: the next element, or leave the loop.
    fn iter_next(&mut self, pc: usize, st: &[T], a: Reg, t: u32) -> Lowered<bool> {
        let arr = self.get(st, a)?;
        let V::Int(pos) = self.get(st, a + 1)? else { return Err("internal: iterator position".into()) };
        let V::Arr { ptr, len, float, .. } = arr else { return Err("internal: iterating a non-array".into()) };
        let inside = self.b.ins().icmp(IntCC::UnsignedLessThan, pos, len);
        let body = self.b.create_block();
        let end = self.block(t as usize)?;
        self.b.ins().brif(inside, body, &[], end, &[]);
        self.b.seal_block(body);
        self.b.switch_to_block(body);
        let offset = self.b.ins().ishl_imm_u(pos, 3);
        let addr = self.b.ins().iadd(ptr, offset);
        let elem = if float {
            V::Float(self.b.ins().load(F64, MemFlagsData::trusted(), addr, 0))
        } else {
            V::Int(self.b.ins().load(I64, MemFlagsData::trusted(), addr, 0))
        };
        let next = self.b.ins().iadd_imm_s(pos, 1);
        self.put(a + 1, V::Int(next));
        self.put(a + 2, elem);
        let next_block = self.block(pc + 1)?;
        self.b.ins().jump(next_block, &[]);
        Ok(true)
    }
}

/// What lowering derives from a plan alone (`Lower::derived`).
struct Derived {
    loops: Loops,
    /// The reachable instructions that start a block: the first, jump targets, and those after
    /// a jump or return.
    leaders: Vec<usize>,
    owned: alloc::Owned,
}

/// The instructions of `plan` that start a block (see [`Derived`]).
fn leaders(plan: &Plan) -> Vec<usize> {
    let code = &plan.proto.code;
    let mut leader = vec![false; code.len() + 1];
    leader[0] = true;
    for (pc, ins) in code.iter().enumerate() {
        match ins.flow() {
            Flow::Next => {}
            Flow::Jump(t) | Flow::Branch(t) => {
                leader[t as usize] = true;
                leader[pc + 1] = true;
            }
            Flow::Return => leader[pc + 1] = true,
        }
    }
    plan.states.iter().enumerate().filter(|(pc, state)| leader[*pc] && state.is_some()).map(|(pc, _)| pc).collect()
}

/// The value a call of a function returning `ret` gave back, from its machine results.
fn returned(ret: Ty, values: &[CValue]) -> V {
    match (ret, values) {
        (Ty::Int, [v, ..]) => V::Int(*v),
        (Ty::Float, [v, ..]) => V::Float(*v),
        (Ty::Bool, [v, ..]) => V::Bool(*v),
        (Ty::FloatArray | Ty::IntArray, [ptr, len, own, ..]) => {
            V::Arr { ptr: *ptr, len: *len, own: *own, float: ret == Ty::FloatArray }
        }
        (Ty::FloatArrayN(_) | Ty::IntArrayN(_), _) => ndarray::from_params(ret, values),
        _ => V::Nil,
    }
}

/// The signed condition of an ordering instruction (from its operator in the instruction table).
/// The reciprocal of a constant divisor `d` (not a power of two, above 1) for dividends in
/// `0..2^63`: `(m, s)` such that `n / d == umulhi(n, m) >> s` for every such `n`. With
/// `m = ceil(2^(64+s) / d)`, the error `m*d - 2^(64+s)` is below `d`; it is exact when that error
/// is at most `2^(s+1)` (Granlund and Montgomery, theorem 4.2, for 63-bit dividends), which holds
/// at the latest when `2^(s+1) >= d`; the smallest such `s` is taken.
fn magic63(d: i64) -> (u64, i64) {
    let d = d as u128;
    for s in 0..64u32 {
        let p = 1u128 << (64 + s);
        let m = p.div_ceil(d);
        if m <= u64::MAX as u128 && m * d - p <= 1u128 << (s + 1) {
            return (m as u64, s as i64);
        }
    }
    unreachable!("2^(s+1) >= d holds by s = 62")
}

fn order_cc(ins: Instr) -> Lowered<IntCC> {
    match ins.facts().op {
        Some(BinOp::Lt) => Ok(IntCC::SignedLessThan),
        Some(BinOp::Le) => Ok(IntCC::SignedLessThanOrEqual),
        Some(BinOp::Gt) => Ok(IntCC::SignedGreaterThan),
        Some(BinOp::Ge) => Ok(IntCC::SignedGreaterThanOrEqual),
        other => Err(format!("internal: {ins:?} orders by {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::magic63;

    /// `magic63` against plain division, at the ends of the dividend range and in between.
    #[test]
    fn magic63_divides_exactly() {
        let mut divisors: Vec<i64> = (3..2000).filter(|d: &i64| d.count_ones() > 1).collect();
        divisors.extend([1_000_000_007, (1 << 40) + 1, i64::MAX, i64::MAX - 2, (1 << 62) + 1, (1 << 62) - 1]);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for d in divisors {
            let (m, s) = magic63(d);
            let check = |n: i64| {
                let q = ((n as u128 * m as u128) >> 64) as u64 >> s;
                assert_eq!(q as i64, n / d, "{n} / {d}");
            };
            for n in (0..3 * d.min(1 << 20)).chain([i64::MAX, i64::MAX - 1, i64::MAX - d, i64::MAX / 2]) {
                check(n);
            }
            for k in [1, 2, 3, 1 << 20, i64::MAX / d] {
                for off in [-1, 0, 1] {
                    if let Some(n) = d.checked_mul(k).and_then(|n| n.checked_add(off)).filter(|n| *n >= 0) {
                        check(n);
                    }
                }
            }
            for _ in 0..2000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                check((x >> 1) as i64);
            }
        }
    }
}
