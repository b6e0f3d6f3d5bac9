//! The Cranelift module that owns a program's native code: creating it, compiling a session's
//! plans (one finalize per session), and the entry trampolines through which the VM calls them.

use super::cache::Store;
use super::infer::Plan;
use super::lower::{Helper, Lower, Outlining, Region, helpers, parallel_loops, param_types, ret_types, signature};
use super::lower::{address_data, address_of_symbol, helper_id};
use super::mirror::Mirrors;
use super::prekey;
use super::types::Ty;
use cranelift::codegen::control::ControlPlane;
use cranelift::codegen::incremental_cache::{
    CacheKvStore, compute_cache_key, serialize_compiled, try_finish_recompile,
};
use cranelift::codegen::isa::CallConv;
use cranelift::codegen::{self, settings};
use cranelift::prelude::{
    AbiParam, Configurable, FunctionBuilder, FunctionBuilderContext, InstBuilder, MemFlagsData, types,
};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{DataId, FuncId, Linkage, Module, ModuleReloc, default_libcall_names};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What the VM calls: `(code, room, args) -> status`, where `code` is the compiled function's
/// address; one such trampoline serves every function of the same parameter and result types.
/// `args` holds the unboxed arguments, one 64-bit
/// slot each (three for a 1-D array: data pointer, length and own word, see alloc.rs; two for an
/// array of several dimensions: data pointer and a pointer to its dimensions); the result is
/// stored into slot 0 (an array's own word for an array).
pub type EntryFn = unsafe extern "C" fn(*const u8, i64, *mut u64) -> i64;

/// How the VM calls a compiled function: its trampoline, given its code's address.
#[derive(Clone, Copy)]
pub struct Entry {
    pub trampoline: EntryFn,
    pub code: *const u8,
}

/// A plan's outlined parallel-loop blocks: by their `PrangePrep`, and with their loops.
type Outlined = (HashMap<usize, FuncId>, Vec<(Region, FuncId)>);

/// A plan defined in [`Engine::compile`]: its entry trampoline, its IR listing, the time it
/// took, and where its code came from.
type Built = (FuncId, Option<String>, Duration, Origin);

/// Where a plan's code came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Cranelift compiled some of it.
    Compiled,
    /// All of it from the cache of compiled code (cache.rs), after lowering.
    Cache,
    /// All of it from the cache, the plan's own function without lowering it (prekey.rs).
    CacheBeforeLowering,
}

/// The result of compiling one plan.
pub struct Compiled {
    pub func_id: FuncId,
    /// None for a plan that was only inlined (see [`Engine::compile`]).
    pub entry: Option<Entry>,
    pub ir: Option<String>,
    pub time: Duration,
    /// Where the functions defined for the plan (its own, its outlined loops, the deferred ones
    /// it calls, its entry) came from: all from the cache of compiled code (cache.rs), its own
    /// also without lowering (prekey.rs), or not.
    pub cached: Origin,
}

/// The functions Cranelift's generated code may call by name (its `LibCall`s under
/// `default_libcall_names`, but for probestack, pshufb and TLS, which mini's code never
/// needs), with their addresses. Cranelift would look them up with `dlsym`, which finds nothing
/// in mini's statically linked binary (build.rs).
fn libcalls() -> [(&'static str, *const u8); 14] {
    extern "C" fn ceilf(x: f32) -> f32 {
        x.ceil()
    }
    extern "C" fn ceil(x: f64) -> f64 {
        x.ceil()
    }
    extern "C" fn floorf(x: f32) -> f32 {
        x.floor()
    }
    extern "C" fn floor(x: f64) -> f64 {
        x.floor()
    }
    extern "C" fn truncf(x: f32) -> f32 {
        x.trunc()
    }
    extern "C" fn trunc(x: f64) -> f64 {
        x.trunc()
    }
    // nearbyint rounds in the current rounding mode, which mini never changes from ties-even
    extern "C" fn nearbyintf(x: f32) -> f32 {
        x.round_ties_even()
    }
    extern "C" fn nearbyint(x: f64) -> f64 {
        x.round_ties_even()
    }
    extern "C" fn fmaf(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
    extern "C" fn fma(a: f64, b: f64, c: f64) -> f64 {
        a.mul_add(b, c)
    }
    [
        ("ceilf", ceilf as extern "C" fn(f32) -> f32 as *const u8),
        ("ceil", ceil as extern "C" fn(f64) -> f64 as *const u8),
        ("floorf", floorf as extern "C" fn(f32) -> f32 as *const u8),
        ("floor", floor as extern "C" fn(f64) -> f64 as *const u8),
        ("truncf", truncf as extern "C" fn(f32) -> f32 as *const u8),
        ("trunc", trunc as extern "C" fn(f64) -> f64 as *const u8),
        ("nearbyintf", nearbyintf as extern "C" fn(f32) -> f32 as *const u8),
        ("nearbyint", nearbyint as extern "C" fn(f64) -> f64 as *const u8),
        ("fmaf", fmaf as extern "C" fn(f32, f32, f32) -> f32 as *const u8),
        ("fma", fma as extern "C" fn(f64, f64, f64) -> f64 as *const u8),
        ("memcpy", libc::memcpy as *const u8),
        ("memset", libc::memset as *const u8),
        ("memmove", libc::memmove as *const u8),
        ("memcmp", libc::memcmp as *const u8),
    ]
}

pub struct Engine {
    module: JITModule,
    ctx: codegen::Context,
    fctx: FunctionBuilderContext,
    helper_ids: HashMap<Helper, FuncId>,
    next_name: u32,
    /// Declared functions of specializations that no compiled code called yet, with their
    /// plans (see [`Engine::compile`]).
    deferred: HashMap<FuncId, Rc<Plan>>,
    /// Deferred functions that failed to lower (they have a stub body).
    unusable: HashSet<FuncId>,
    /// The entry trampolines made so far, by parameter types and result type, with their code
    /// as the cache holds it (for pre-lowering entries, prekey.rs).
    entries: HashMap<(Vec<Ty>, Ty), (FuncId, Option<prekey::Code>)>,
    /// The cache of compiled code, unless it is off (cache.rs).
    cache: Option<Store>,
    /// Of the functions defined since the count was last reset: how many, how many came from
    /// the cache, and how many of those without lowering (prekey.rs).
    defined: (u32, u32, u32),
    /// The helpers in the order of `helpers()`, which names them in cache entries (prekey.rs).
    helper_order: Vec<Helper>,
    /// The pre-lowering key of the session being compiled (prekey.rs), if it has one.
    session: Option<[u8; 32]>,
}

/// What `Engine::define_plan` did with the plan's pre-lowering entry (prekey.rs).
enum Prekeyed {
    /// Neither used one nor made one.
    Not,
    /// Took the code from it; this is the code of the plan's entry trampoline it holds.
    Found(prekey::Code),
    /// Compiled the plan: the entry to write under the key, with these names and code, once
    /// the plan's entry trampoline is made.
    New([u8; 32], Vec<prekey::Name>, prekey::Code),
}

impl Engine {
    pub fn new() -> Result<Engine, String> {
        let mut flags = settings::builder();
        // Cranelift's IR verifier costs about half the compile time; debug builds and the test
        // suites (MINI_JIT_VERIFY=1) run it, so that malformed IR fails a test instead of
        // miscompiling quietly.
        let verify = if verifying() { "true" } else { "false" };
        for (name, value) in [
            ("opt_level", "speed"),
            ("is_pic", "false"),
            ("use_colocated_libcalls", "false"),
            ("enable_verifier", verify),
            // a function returning an array returns four values (pointer, length, own word,
            // status): more than the registers for results, so the rest go through memory
            ("enable_multi_ret_implicit_sret", "true"),
        ] {
            flags.set(name, value).map_err(|e| format!("cranelift setting {name}: {e}"))?;
        }
        let isa = isa_builder()
            .map_err(|e| format!("this machine is not supported by Cranelift: {e}"))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| format!("cranelift: {e}"))?;
        let mut builder = JITBuilder::with_isa(isa, default_libcall_names());
        // the addresses compiled code names as symbols (lower's `address`), the runtime's
        // helpers and the libcalls, found by name when a finalize needs them (a table of them
        // all, made at every start, cost more than the few lookups)
        builder.symbol_lookup_fn(Box::new(|name| {
            address_of_symbol(name)
                .or_else(|| helpers().iter().find(|h| h.name == name).map(|h| h.addr))
                .or_else(|| libcalls().iter().find(|(n, _)| *n == name).map(|(_, addr)| *addr))
        }));
        let module = JITModule::new(builder);
        let ctx = module.make_context();
        let mut engine = Engine {
            module,
            ctx,
            fctx: FunctionBuilderContext::new(),
            helper_ids: HashMap::new(),
            next_name: 0,
            deferred: HashMap::new(),
            unusable: HashSet::new(),
            entries: HashMap::new(),
            cache: Store::open(),
            defined: (0, 0, 0),
            helper_order: helpers().iter().map(|h| h.helper).collect(),
            session: None,
        };
        engine.define_safe_point_trampoline()?;
        Ok(engine)
    }

    /// The function native code calls at a safe point that needs attention, in place of
    /// `mini_jit_safe_point`: it calls that function with the same argument, and its calling
    /// convention (`preserve_all`) saves every register that call clobbers, so that a loop's
    /// call site costs its register allocation nothing. Defined with the engine, also for code
    /// without a loop, which never calls it: the code after it then starts where it always did
    /// (see ARCHITECTURE.md on fib and code placement).
    fn define_safe_point_trampoline(&mut self) -> Result<(), String> {
        let mut sig = self.module.make_signature();
        sig.call_conv = CallConv::PreserveAll;
        sig.params.push(AbiParam::new(types::I64));
        let id = self
            .module
            .declare_function("mini_jit_safe_point_saving_all", Linkage::Local, &sig)
            .map_err(|e| e.to_string())?;
        let helper = helper_id(&mut self.module, &mut self.helper_ids, Helper::SafePoint);
        self.helper_ids.insert(Helper::SafePoint, id);
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature = sig;
        let helper = self.module.declare_func_in_func(helper, &mut self.ctx.func);
        let config = self.module.target_config();
        let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        let out = b.block_params(block)[0];
        b.ins().call(helper, &[out]);
        b.ins().return_(&[]);
        b.seal_all_blocks();
        b.finalize(config);
        self.define(id)?;
        Ok(())
    }

    /// Compiles the plans of a session that native code can reach; the results are in plan
    /// order. Plan 0 (the function called) and every plan with a parallel loop are compiled;
    /// another only when compiled code calls it (a callee inlined wherever it is called is not,
    /// and gets no result: its declared function stays undefined, and once the session's
    /// specializations exist the VM hands it to [`Engine::defer`], so that a later session that
    /// calls it defines it then). Functions of earlier sessions deferred so are defined here
    /// when this session's code calls them.
    ///
    /// With `dump_ir`, every function is compiled afresh, without the cache (its listing of
    /// machine code comes from compiling).
    pub fn compile(&mut self, plans: &[Plan], mirrors: &Mirrors, dump_ir: bool) -> Result<Vec<Compiled>, String> {
        let cache = if dump_ir { self.cache.take() } else { None };
        let result = self.compile_plans(plans, mirrors, dump_ir);
        if cache.is_some() {
            self.cache = cache;
        }
        result
    }

    fn compile_plans(&mut self, plans: &[Plan], mirrors: &Mirrors, dump_ir: bool) -> Result<Vec<Compiled>, String> {
        self.session = match &self.cache {
            Some(_) if !dump_ir => prekey::session_key(plans, mirrors, self.module.isa()),
            _ => None,
        };
        let mut ids = Vec::with_capacity(plans.len());
        for p in plans {
            let sig = signature(&self.module, p.sig.tys(), p.ret_ty());
            let name = self.fresh_name(&p.proto.name);
            let id = self.module.declare_function(&name, Linkage::Local, &sig).map_err(|e| e.to_string())?;
            ids.push((id, p.ret_ty()));
        }
        let mut outlined = Vec::with_capacity(plans.len());
        for i in 0..plans.len() {
            outlined.push(self.declare_outlined(plans, i)?);
        }
        let by_id: HashMap<FuncId, usize> = ids.iter().enumerate().map(|(i, (id, _))| (*id, i)).collect();
        let mut needed: Vec<bool> = outlined.iter().map(|o| !o.1.is_empty()).collect();
        needed[0] = true;
        let mut queue: Vec<usize> = (0..plans.len()).filter(|i| needed[*i]).rev().collect();
        let mut failure = None;
        let mut built: Vec<Option<Built>> = (0..plans.len()).map(|_| None).collect();
        while let Some(i) = queue.pop() {
            let p = &plans[i];
            let start = Instant::now();
            self.defined = (0, 0, 0);
            let mut ir = None;
            let mut prekeyed = Prekeyed::Not;
            let mut calls = Vec::new();
            if failure.is_none() {
                match self.define_plan(plans, mirrors, &ids, i, &outlined[i], dump_ir) {
                    Ok((text, p)) => {
                        (ir, prekeyed) = (text, p);
                        calls.extend(self.called());
                    }
                    Err(e) => failure = Some(e),
                }
            }
            for (region, id) in &outlined[i].1 {
                if failure.is_none() {
                    match self.define_outlined(plans, mirrors, &ids, i, region, *id) {
                        Ok(()) => calls.extend(self.called()),
                        Err(e) => failure = Some(e),
                    }
                }
                if failure.is_some() {
                    self.define_block_stub(*id)?;
                }
            }
            if failure.is_some() {
                self.define_stub(ids[i].0, p)?;
            }
            if let Err(e) = self.define_deferred(&mut calls, mirrors) {
                failure.get_or_insert(e);
            }
            let found = if let Prekeyed::Found(code) = &prekeyed { Some(code) } else { None };
            let (entry_id, trampoline) = self.entry_for(p, found)?;
            if let (Prekeyed::New(key, names, code), Some(trampoline), Some(cache)) =
                (prekeyed, trampoline, &mut self.cache)
            {
                cache.insert(&key, prekey::encode(&prekey::Entry { code, names, trampoline }));
            }
            let cached = match self.defined {
                (n, c, _) if n == 0 || c < n => Origin::Compiled,
                (_, _, 0) => Origin::Cache,
                _ => Origin::CacheBeforeLowering,
            };
            built[i] = Some((entry_id, ir, start.elapsed(), cached));
            for id in calls {
                if let Some(&j) = by_id.get(&id)
                    && !needed[j]
                {
                    needed[j] = true;
                    queue.push(j);
                }
            }
        }
        self.module.finalize_definitions().map_err(|e| e.to_string())?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(built
            .into_iter()
            .zip(&ids)
            .map(|(b, (func_id, _))| {
                let Some((entry_id, ir, time, cached)) = b else {
                    let cached = Origin::Compiled;
                    return Compiled { func_id: *func_id, entry: None, ir: None, time: Duration::ZERO, cached };
                };
                let ptr = self.module.get_finalized_function(entry_id);
                // SAFETY: `entry_id` was defined by `define_entry` with exactly the signature of
                // `EntryFn` (three i64 parameters, one i64 result, the platform's C convention),
                // and its definition is finalized (executable) above or in an earlier session.
                let trampoline = unsafe { std::mem::transmute::<*const u8, EntryFn>(ptr) };
                let code = self.module.get_finalized_function(*func_id);
                Compiled { func_id: *func_id, entry: Some(Entry { trampoline, code }), ir, time, cached }
            })
            .collect())
    }

    /// Keeps the declared, undefined function `id` of a specialization that was only inlined
    /// (see [`Engine::compile`]), with its plan, until compiled code calls it.
    pub fn defer(&mut self, id: FuncId, plan: Rc<Plan>) {
        self.deferred.insert(id, plan);
    }

    /// The functions the function just defined calls (its `ctx`'s external names).
    fn called(&self) -> Vec<FuncId> {
        self.ctx
            .func
            .params
            .user_named_funcs()
            .values()
            .filter(|name| name.namespace == 0)
            .map(|name| FuncId::from_u32(name.index))
            .collect()
    }

    /// Defines the deferred functions among `calls`, and those they call in turn. One that
    /// fails to lower gets a stub body and is remembered, so that no later session calls it
    /// either: the session fails.
    fn define_deferred(&mut self, calls: &mut Vec<FuncId>, mirrors: &Mirrors) -> Result<(), String> {
        let mut failure = None;
        let mut k = 0;
        while k < calls.len() {
            let id = calls[k];
            k += 1;
            if self.unusable.contains(&id) {
                failure.get_or_insert_with(|| "calls a function that failed to compile".to_string());
                continue;
            }
            let Some(plan) = self.deferred.remove(&id) else { continue };
            let plans = std::slice::from_ref(&*plan);
            let ids = [(id, plan.ret_ty())];
            let none = (HashMap::new(), Vec::new());
            // a deferred plan calls earlier specializations: no pre-lowering key (prekey.rs)
            let session = self.session.take();
            let defined = self.define_plan(plans, mirrors, &ids, 0, &none, false);
            self.session = session;
            match defined {
                Ok(_) => calls.extend(self.called()),
                Err(e) => {
                    self.define_stub(id, &plan)?;
                    self.unusable.insert(id);
                    failure.get_or_insert(e);
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Declares an outlined block function for each loop of `plans[i]` that may run in
    /// parallel; returns them by their `PrangePrep`, and as a list.
    fn declare_outlined(&mut self, plans: &[Plan], i: usize) -> Result<Outlined, String> {
        let mut by_prep = HashMap::new();
        let mut list = Vec::new();
        for (region, verdict) in parallel_loops(plans, i) {
            note_reduction_types(&plans[i], &region);
            if let Err((why, pc)) = verdict {
                let proto = &plans[i].proto;
                if let Some(info) = proto.pranges.get(region.index) {
                    let _ = info.counts.never_parallel.set((why, pc.map(|pc| proto.spans[pc])));
                    info.counts
                        .sequential
                        .fetch_or(crate::bytecode::SEQUENTIAL_NEVER, std::sync::atomic::Ordering::Relaxed);
                }
                continue;
            }
            let name = self.fresh_name(&format!("{}_block", plans[i].proto.name));
            let sig = self.block_signature();
            let id = self.module.declare_function(&name, Linkage::Local, &sig).map_err(|e| e.to_string())?;
            by_prep.insert(region.prep, id);
            list.push((region, id));
        }
        Ok((by_prep, list))
    }

    /// The signature of an outlined block, `parallel::BlockFn`: `(room, env, k, out) -> status`.
    fn block_signature(&self) -> cranelift::prelude::Signature {
        let mut sig = self.module.make_signature();
        sig.params.extend([AbiParam::new(types::I64); 4]);
        sig.returns.push(AbiParam::new(types::I64));
        sig
    }

    /// Defines the outlined block of `region`, a loop of `plans[i]`.
    fn define_outlined(
        &mut self,
        plans: &[Plan],
        mirrors: &Mirrors,
        ids: &[(FuncId, Ty)],
        i: usize,
        region: &Region,
        id: FuncId,
    ) -> Result<(), String> {
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature = self.block_signature();
        let builder = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
        let none = HashMap::new();
        let outlining = Outlining { blocks: &none, inside: Some(region.prep) };
        let lower = Lower::new(builder, &mut self.module, plans, i, ids, &mut self.helper_ids, mirrors, outlining);
        if let Err(e) = lower.outlined_block(region, id.as_u32()) {
            self.fctx = FunctionBuilderContext::new();
            return Err(e);
        }
        self.define(id).map(drop)
    }

    /// A body for an outlined block that failed to lower (never called: see `define_stub`).
    fn define_block_stub(&mut self, id: FuncId) -> Result<(), String> {
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature = self.block_signature();
        let config = self.module.target_config();
        let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        let failed = b.ins().iconst(types::I64, -1);
        b.ins().return_(&[failed]);
        b.seal_all_blocks();
        b.finalize(config);
        self.define(id).map(drop)
    }

    fn fresh_name(&mut self, name: &str) -> String {
        self.next_name += 1;
        let clean: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
        format!("mini_{}_{}", clean, self.next_name)
    }

    /// Defines plan `i`'s function: from its pre-lowering entry when the cache has one
    /// (prekey.rs), else lowered and compiled (or taken from the cache after lowering) and
    /// filed under its key. With `dump_ir`, compiled afresh; returns the IR and machine code.
    fn define_plan(
        &mut self,
        plans: &[Plan],
        mirrors: &Mirrors,
        ids: &[(FuncId, Ty)],
        i: usize,
        outlined: &Outlined,
        dump_ir: bool,
    ) -> Result<(Option<String>, Prekeyed), String> {
        // the code under the plan's pre-lowering key (prekey.rs), when there is one: lowered
        // anyway and compared with the entry when verifying
        let prekey = self.session.filter(|_| !dump_ir && outlined.1.is_empty()).map(|s| prekey::plan_key(&s, i));
        let stored = prekey.and_then(|k| self.cache.as_ref()?.get(&k)).and_then(|b| prekey::decode(&b));
        if let Some(entry) = &stored {
            if verifying() {
                let named = self.lower_plan(plans, mirrors, ids, i, outlined)?;
                let code_key = prekey::code_key_bytes(&compute_cache_key(self.module.isa(), &self.ctx.func));
                if code_key != entry.code.key || self.names(ids, &named).as_ref() != Some(&entry.names) {
                    return Err(format!(
                        "the pre-lowering cache entry of {} differs from its lowering",
                        plans[i].proto.name
                    ));
                }
            }
            if self.define_prekeyed(plans, mirrors, ids, i, entry)? {
                return Ok((None, Prekeyed::Found(entry.trampoline.clone())));
            }
        }
        let named = self.lower_plan(plans, mirrors, ids, i, outlined)?;
        if !dump_ir {
            // the entry's names, taken before compiling (which rewrites the IR in place)
            let names = prekey.filter(|_| stored.is_none()).and_then(|key| Some((key, self.names(ids, &named)?)));
            let code = self.define(ids[i].0)?;
            return Ok(match (names, code) {
                (Some((key, names)), Some(code)) => (None, Prekeyed::New(key, names, code)),
                _ => (None, Prekeyed::Not),
            });
        }
        // compiled afresh, not taken from the cache: the listing comes from compiling
        let mut text = self.ctx.func.display().to_string();
        self.ctx.set_disasm(true);
        self.defined.0 += 1;
        self.module.define_function(ids[i].0, &mut self.ctx).map_err(|e| format!("cranelift: {e:?}"))?;
        if let Some(code) = self.ctx.compiled_code() {
            text.push_str("; machine code:\n");
            text.push_str(code.vcode.as_deref().unwrap_or(""));
        }
        self.ctx.set_disasm(false);
        Ok((Some(text), Prekeyed::Not))
    }

    /// Lowers plan `i` into `ctx`; returns what each address its code names stands for.
    fn lower_plan(
        &mut self,
        plans: &[Plan],
        mirrors: &Mirrors,
        ids: &[(FuncId, Ty)],
        i: usize,
        outlined: &Outlined,
    ) -> Result<Vec<(usize, prekey::Named)>, String> {
        let plan = &plans[i];
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature = signature(&self.module, plan.sig.tys(), plan.ret_ty());
        let builder = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
        let outlining = Outlining { blocks: &outlined.0, inside: None };
        let lower = Lower::new(builder, &mut self.module, plans, i, ids, &mut self.helper_ids, mirrors, outlining);
        lower.function(ids[i].0.as_u32()).inspect_err(|_| self.fctx = FunctionBuilderContext::new())
    }

    /// What each external name of the function in `ctx` stands for (prekey.rs), in its order;
    /// None when one is neither a helper, a plan of the session, nor an address whose meaning
    /// lowering recorded in `named`.
    fn names(&self, ids: &[(FuncId, Ty)], named: &[(usize, prekey::Named)]) -> Option<Vec<prekey::Name>> {
        use prekey::{Name, Named};
        let mut out = Vec::new();
        for user in self.ctx.func.params.user_named_funcs().values() {
            out.push(match user.namespace {
                0 => {
                    let id = FuncId::from_u32(user.index);
                    if let Some(j) = ids.iter().position(|(f, _)| *f == id) {
                        Name::Plan(j as u32)
                    } else {
                        let (h, _) = self.helper_ids.iter().find(|(_, f)| **f == id)?;
                        Name::Helper(self.helper_order.iter().position(|o| o == h)? as u32)
                    }
                }
                1 => {
                    let decl = self.module.declarations().get_data_decl(DataId::from_u32(user.index));
                    let addr = address_of_symbol(decl.name.as_deref()?)? as usize;
                    let mut meanings: Vec<Named> = Vec::new();
                    for (_, m) in named.iter().filter(|(a, _)| *a == addr) {
                        if *m == Named::Unknown {
                            return None;
                        }
                        if !meanings.contains(m) {
                            meanings.push(m.clone());
                        }
                    }
                    if meanings.is_empty() {
                        return None;
                    }
                    Name::Data(meanings)
                }
                _ => return None,
            });
        }
        Some(out)
    }

    /// Defines plan `i` from the cache without lowering it (prekey.rs): names what the code
    /// refers to, in the entry's order, from their meanings in this run, then takes the code as
    /// `define` does. Ok(false) when the entry cannot serve (the code's own entry is gone, or a
    /// name does not resolve to what it stood for).
    fn define_prekeyed(
        &mut self,
        plans: &[Plan],
        mirrors: &Mirrors,
        ids: &[(FuncId, Ty)],
        i: usize,
        entry: &prekey::Entry,
    ) -> Result<bool, String> {
        use cranelift::codegen::entity::EntityRef;
        use cranelift::codegen::ir::UserExternalName;
        use prekey::Name;
        self.module.clear_context(&mut self.ctx);
        for (k, name) in entry.names.iter().enumerate() {
            let user = match name {
                Name::Helper(h) => {
                    let Some(&helper) = self.helper_order.get(*h as usize) else { return Ok(false) };
                    let id = helper_id(&mut self.module, &mut self.helper_ids, helper);
                    UserExternalName::new(0, id.as_u32())
                }
                Name::Plan(j) => {
                    let Some((id, _)) = ids.get(*j as usize) else { return Ok(false) };
                    UserExternalName::new(0, id.as_u32())
                }
                Name::Data(meanings) => {
                    let addrs: Option<Vec<usize>> =
                        meanings.iter().map(|m| prekey::resolve(m, plans, mirrors)).collect();
                    let Some(addrs) = addrs.filter(|a| !a.is_empty() && a.iter().all(|x| *x == a[0])) else {
                        return Ok(false);
                    };
                    let Some(id) = address_data(&mut self.module, addrs[0]) else { return Ok(false) };
                    UserExternalName::new(1, id.as_u32())
                }
            };
            // two names resolving to one would shift every later index
            if self.ctx.func.params.ensure_user_func_name(user).index() != k {
                return Ok(false);
            }
        }
        let Ok(code) = try_finish_recompile(&self.ctx.func, &entry.code.bytes) else { return Ok(false) };
        self.defined_before_lowering();
        self.define_code(ids[i].0, &code)?;
        Ok(true)
    }

    /// Compiles the function in `ctx` and defines it as `id`: its machine code from the cache
    /// when the cache has the code of the same IR (cache.rs), else compiled by Cranelift (and
    /// stored in the cache); returns that code as the cache holds it (None without a cache).
    /// What Cranelift's `compile_with_cache` does, keeping the code it stores. Counts it in
    /// `defined`.
    fn define(&mut self, id: FuncId) -> Result<Option<prekey::Code>, String> {
        self.defined.0 += 1;
        let Some(cache) = &mut self.cache else {
            self.module.define_function(id, &mut self.ctx).map_err(|e| format!("cranelift: {e:?}"))?;
            return Ok(None);
        };
        let key = prekey::code_key_bytes(&compute_cache_key(self.module.isa(), &self.ctx.func));
        let found =
            cache.get(&key).and_then(|b| Some((try_finish_recompile(&self.ctx.func, &b).ok()?, b.into_owned())));
        let (code, bytes) = match found {
            Some((code, bytes)) => {
                self.defined.1 += 1;
                (code, Some(bytes))
            }
            None => {
                let stencil = self
                    .ctx
                    .compile_stencil(self.module.isa(), &mut ControlPlane::default())
                    .map_err(|e| format!("cranelift: {e:?}"))?;
                let (stencil, bytes) = serialize_compiled(stencil);
                let bytes = bytes.ok();
                if let Some(bytes) = &bytes {
                    cache.insert(&key, bytes.clone());
                }
                (stencil.apply_params(&self.ctx.func.params), bytes)
            }
        };
        self.define_code(id, &code)?;
        Ok(bytes.map(|bytes| prekey::Code { key, bytes }))
    }

    /// Defines `id` as `code`, compiled from the function in `ctx` or made for its names by
    /// `try_finish_recompile` (what cranelift-jit's own `define_function` does with the code it
    /// compiles).
    fn define_code(&mut self, id: FuncId, code: &codegen::CompiledCode) -> Result<(), String> {
        let relocs: Vec<ModuleReloc> =
            code.buffer.relocs().iter().map(|r| ModuleReloc::from_mach_reloc(r, &self.ctx.func, id)).collect();
        let alignment = u64::from(code.buffer.alignment);
        self.module
            .define_function_bytes(id, alignment, code.code_buffer(), &relocs)
            .map_err(|e| format!("cranelift: {e:?}"))
    }

    /// Counts in `defined` a function defined from a pre-lowering entry.
    fn defined_before_lowering(&mut self) {
        self.defined.0 += 1;
        self.defined.1 += 1;
        self.defined.2 += 1;
    }

    /// A body for a plan that failed to lower, so that finalizing the session stays sound; it
    /// is never called (the plan gets no specialization).
    fn define_stub(&mut self, id: FuncId, plan: &Plan) -> Result<(), String> {
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature = signature(&self.module, plan.sig.tys(), plan.ret_ty());
        let config = self.module.target_config();
        let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        let mut values: Vec<_> = ret_types(plan.ret_ty())
            .iter()
            .map(|t| match *t {
                types::F64 => b.ins().f64const(0.0),
                t => b.ins().iconst(t, 0),
            })
            .collect();
        values.push(b.ins().iconst(types::I64, -1));
        b.ins().return_(&values);
        b.seal_all_blocks();
        b.finalize(config);
        self.define(id).map(drop)
    }

    /// The entry trampoline for a plan's parameter and result types, and its code as the cache
    /// holds it: made at the first plan with them, shared by the later ones (each made one costs
    /// about as much to compile as a small function). `found` is its code from the plan's
    /// pre-lowering entry (prekey.rs), which spares building its IR and reading its own cache
    /// file; when verifying, the trampoline is built anyway and its key compared.
    fn entry_for(
        &mut self,
        plan: &Plan,
        found: Option<&prekey::Code>,
    ) -> Result<(FuncId, Option<prekey::Code>), String> {
        let key = (plan.sig.tys().to_vec(), plan.ret_ty());
        if let Some((id, code)) = self.entries.get(&key) {
            return Ok((*id, code.clone()));
        }
        let mut taken = None;
        if let Some(code) = found {
            if verifying() {
                self.lower_entry(plan, self.entry_signature());
                if prekey::code_key_bytes(&compute_cache_key(self.module.isa(), &self.ctx.func)) != code.key {
                    let name = plan.sig.display(&plan.proto.name);
                    return Err(format!("the pre-lowering cache entry of {name} differs in its entry trampoline"));
                }
            }
            taken = self.define_entry_from(code)?.map(|id| (id, Some(code.clone())));
        }
        let (id, code) = match taken {
            Some(made) => made,
            None => self.define_entry(plan)?,
        };
        self.entries.insert(key, (id, code.clone()));
        Ok((id, code))
    }

    /// The signature of an entry trampoline (`EntryFn`).
    fn entry_signature(&self) -> cranelift::prelude::Signature {
        let mut sig = self.module.make_signature();
        sig.params.extend([AbiParam::new(types::I64), AbiParam::new(types::I64), AbiParam::new(types::I64)]);
        sig.returns.push(AbiParam::new(types::I64));
        sig
    }

    /// Declares a new entry trampoline.
    fn declare_entry(&mut self) -> Result<FuncId, String> {
        let name = self.fresh_name("entry");
        self.module.declare_function(&name, Linkage::Local, &self.entry_signature()).map_err(|e| e.to_string())
    }

    /// An entry trampoline defined as `code` (see `entry_for`); None if the code does not load.
    fn define_entry_from(&mut self, code: &prekey::Code) -> Result<Option<FuncId>, String> {
        self.module.clear_context(&mut self.ctx);
        let Ok(compiled) = try_finish_recompile(&self.ctx.func, &code.bytes) else { return Ok(None) };
        let id = self.declare_entry()?;
        self.defined_before_lowering();
        self.define_code(id, &compiled)?;
        Ok(Some(id))
    }

    /// The trampoline `EntryFn` for a plan's types: unpacks the argument slots, calls the code
    /// it is given, stores the result. Returns it with its code as the cache holds it.
    fn define_entry(&mut self, plan: &Plan) -> Result<(FuncId, Option<prekey::Code>), String> {
        let id = self.declare_entry()?;
        self.lower_entry(plan, self.entry_signature());
        let code = self.define(id)?;
        Ok((id, code))
    }

    /// Builds the IR of the entry trampoline for `plan`'s types (signature `sig`) in `ctx`.
    fn lower_entry(&mut self, plan: &Plan, sig: cranelift::prelude::Signature) {
        let i64t = types::I64;
        self.module.clear_context(&mut self.ctx);
        self.ctx.func.signature = sig;
        let target_sig = signature(&self.module, plan.sig.tys(), plan.ret_ty());
        let callee = self.ctx.func.import_signature(target_sig);
        let config = self.module.target_config();
        let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        let p = b.block_params(block).to_vec();
        let (code, room, buf) = (p[0], p[1], p[2]);
        let mut args = vec![room];
        let mut slot = 0;
        for t in plan.sig.tys() {
            if t.rank() > 0 {
                // an array of several dimensions has three slots, the data pointer, a pointer
                // to its dimensions (`ArrayObj::dims`), which the function takes one by one,
                // and its own word
                let ptr = b.ins().load(i64t, MemFlagsData::trusted(), buf, slot * 8);
                let dims = b.ins().load(i64t, MemFlagsData::trusted(), buf, slot * 8 + 8);
                args.push(ptr);
                for k in 0..t.rank() as i32 {
                    args.push(b.ins().load(i64t, MemFlagsData::trusted(), dims, k * 8));
                }
                args.push(b.ins().load(i64t, MemFlagsData::trusted(), buf, slot * 8 + 16));
                slot += 3;
                continue;
            }
            for ty in param_types(*t) {
                let load_ty = if *ty == types::F64 { types::F64 } else { i64t };
                let mut v = b.ins().load(load_ty, MemFlagsData::trusted(), buf, slot * 8);
                if *ty == types::I8 {
                    v = b.ins().ireduce(types::I8, v);
                }
                args.push(v);
                slot += 1;
            }
        }
        let call = b.ins().call_indirect(callee, code, &args);
        let results = b.inst_results(call).to_vec();
        let (values, status) = results.split_at(results.len() - 1);
        // an array's own word says all the VM needs (alloc::take_result)
        let mut value = *values.last().expect("every result type has a value");
        if plan.ret_ty() == Ty::Bool {
            value = b.ins().uextend(i64t, value);
        }
        b.ins().store(MemFlagsData::trusted(), value, buf, 0);
        b.ins().return_(&[status[0]]);
        b.seal_all_blocks();
        b.finalize(config);
    }
}

/// Records in a loop's counters the types its reductions start with in this plan (the bits of
/// `PrangeCounts::types`, which the interpreter sets as it runs the loop), for `--stats`.
fn note_reduction_types(plan: &Plan, region: &Region) {
    use super::infer::T;
    let (Some(info), Some(Some(st))) = (plan.proto.pranges.get(region.index), plan.states.get(region.prep)) else {
        return;
    };
    let mut bits = 0u64;
    for (j, red) in info.reductions.iter().enumerate().take(32) {
        bits |= match st[red.acc as usize] {
            T::Val(Ty::Int) => 1 << (2 * j),
            T::Val(Ty::Float) => 2 << (2 * j),
            _ => 0,
        };
    }
    info.counts.types.fetch_or(bits, std::sync::atomic::Ordering::Relaxed);
}

/// Whether the test suites' checks are on (`MINI_JIT_VERIFY`): Cranelift's IR verifier, and
/// lowering a plan even when its code comes from the cache under its pre-lowering key.
fn verifying() -> bool {
    cfg!(debug_assertions) || std::env::var_os("MINI_JIT_VERIFY").is_some()
}

/// Cranelift's target for this machine, with the instruction set extensions it has.
/// `cranelift_native::builder` asks the processor (through `std::is_x86_feature_detected`) with
/// about ten CPUID instructions, and on a virtual machine each traps to the hypervisor (4-5 µs
/// each measured, 40-50 µs in all at every start of the JIT); glibc asked them already when the
/// process started, so with glibc they are read from its table instead.
fn isa_builder() -> Result<codegen::isa::Builder, &'static str> {
    #[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
    {
        let mut builder = cranelift_native::builder_with_options(false)?;
        for flag in glibc_x86_flags()? {
            builder.enable(flag).map_err(|_| "unknown x86 setting")?;
        }
        Ok(builder)
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu")))]
    cranelift_native::builder()
}

/// Cranelift's x86 settings for the extensions glibc found usable (its `CPU_FEATURE_ACTIVE`:
/// present, and enabled by the operating system where they need its support, as AVX does), the
/// ones `cranelift_native::infer_native_flags` sets: each with its CPUID leaf (glibc's index),
/// register (eax, ebx, ecx, edx) and bit.
#[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
fn glibc_x86_flags() -> Result<Vec<&'static str>, &'static str> {
    /// glibc's `struct cpuid_feature` (<bits/platform/x86.h>, glibc 2.33 and later).
    #[repr(C)]
    struct CpuidFeature {
        cpuid: [u32; 4],
        active: [u32; 4],
    }
    unsafe extern "C" {
        fn __x86_get_cpuid_feature_leaf(leaf: u32) -> *const CpuidFeature;
    }
    // glibc's leaf indices: CPUID_INDEX_1, _7, _80000001 and _7_ECX_1
    const L1: u32 = 0;
    const L7: u32 = 1;
    const L80000001: u32 = 2;
    const L7_1: u32 = 6;
    // the registers
    const EAX: usize = 0;
    const EBX: usize = 1;
    const ECX: usize = 2;
    const EDX: usize = 3;
    const FLAGS: [(&str, u32, usize, u32); 19] = [
        ("has_cmpxchg16b", L1, ECX, 13),
        ("has_sse3", L1, ECX, 0),
        ("has_ssse3", L1, ECX, 9),
        ("has_sse41", L1, ECX, 19),
        ("has_sse42", L1, ECX, 20),
        ("has_popcnt", L1, ECX, 23),
        ("has_avx", L1, ECX, 28),
        ("has_avx2", L7, EBX, 5),
        ("has_fma", L1, ECX, 12),
        ("has_avx_vnni", L7_1, EAX, 4),
        ("has_avx512vnni", L7, ECX, 11),
        ("has_bmi1", L7, EBX, 3),
        ("has_bmi2", L7, EBX, 8),
        ("has_avx512bitalg", L7, ECX, 12),
        ("has_avx512dq", L7, EBX, 17),
        ("has_avx512f", L7, EBX, 16),
        ("has_avx512vl", L7, EBX, 31),
        ("has_avx512vbmi", L7, ECX, 1),
        ("has_lzcnt", L80000001, ECX, 5),
    ];
    let active = |leaf: u32, reg: usize, bit: u32| {
        // SAFETY: glibc's `__x86_get_cpuid_feature_leaf` takes any leaf index and returns a
        // pointer to static data it filled before `main` (a zeroed entry for an index it does
        // not know), valid and never written for the rest of the process.
        let feature = unsafe { &*__x86_get_cpuid_feature_leaf(leaf) };
        feature.active[reg] & (1 << bit) != 0
    };
    if !active(L1, EDX, 26) {
        return Err("x86 support requires SSE2");
    }
    Ok(FLAGS.iter().filter(|(_, leaf, reg, bit)| active(*leaf, *reg, *bit)).map(|f| f.0).collect())
}

#[cfg(test)]
mod tests {
    /// The settings read from glibc's table are the ones Cranelift infers by asking the
    /// processor.
    #[test]
    #[cfg(all(target_arch = "x86_64", target_os = "linux", target_env = "gnu"))]
    fn glibc_gives_the_extensions_cranelift_infers() {
        use cranelift::codegen::settings::{self, Configurable};
        let isa = |b: cranelift::codegen::isa::Builder| {
            b.finish(settings::Flags::new(settings::builder()))
                .map(|isa| isa.isa_flags())
                .map(|flags| flags.iter().map(|v| format!("{} = {}", v.name, v.value_string())).collect::<Vec<_>>())
        };
        let mut ours = cranelift_native::builder_with_options(false).unwrap();
        for flag in super::glibc_x86_flags().unwrap() {
            ours.enable(flag).unwrap();
        }
        let inferred = isa(cranelift_native::builder().unwrap()).unwrap();
        assert_eq!(isa(ours).unwrap(), inferred);
        assert!(inferred.iter().any(|f| f == "has_sse41 = true"), "{inferred:?}");
    }
}
