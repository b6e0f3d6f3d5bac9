//! Imported modules at run time: each runs once per program, at the first `Import` that reaches
//! it, on the thread that reaches it; later imports return the same module value. A module's
//! top-level names are global slots of its own, read through the module value (`m.name`).

use super::{Fail, Globals, Vm};
use crate::bytecode::Module;
use crate::gil::Gil;
use crate::sync::wait::{self, Kind, Waiter};
use crate::value::{Closure, Value};
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

/// Where a module is in its one run.
#[derive(Debug)]
enum State {
    NotRun,
    /// Its top level is running on some thread; the threads that import it meanwhile wait
    /// (as Python's import lock makes them) and are woken when it ends.
    Running(Vec<Arc<Waiter>>),
    Done(Value),
}

/// The program's modules and their states, touched only under the GIL (`Shared` is reachable
/// only through `Rc<Shared>`, which is `!Send`).
#[derive(Debug)]
pub struct Modules(Vec<(Rc<Module>, RefCell<State>)>);

impl Modules {
    /// The modules of a program, none run yet (the first, the main file, is never imported).
    pub fn new(modules: &[Rc<Module>]) -> Modules {
        Modules(modules.iter().map(|m| (m.clone(), RefCell::new(State::NotRun))).collect())
    }
}

impl Vm<'_> {
    /// `import`: module `m`'s value, running its top level first if it has not run. A module
    /// whose top level fails is left not run (a later import runs it again, as Python does).
    pub(super) fn import(&mut self, m: u16) -> Result<Value, Fail> {
        let shared = self.shared.clone();
        let Some((module, state)) = shared.modules.0.get(m as usize) else {
            return Err("internal error: no such module".into());
        };
        loop {
            let waiter = match &mut *state.borrow_mut() {
                State::Done(v) => return Ok(v.clone()),
                State::Running(waiting) => {
                    let w = Waiter::new();
                    waiting.push(w.clone());
                    w
                }
                State::NotRun => break,
            };
            // another thread runs the module's top level: wait for its end, then look again
            // (it may have failed and left the module not run)
            if let Err(stop) = wait::block(&waiter, Kind::Join, "import", Some(self.here()), self.gil) {
                if let State::Running(waiting) = &mut *state.borrow_mut() {
                    waiting.retain(|w| !Arc::ptr_eq(w, &waiter));
                }
                if !waiter.is_woken() {
                    return Err(Fail::Msg(stop.message()));
                }
            }
        }
        *state.borrow_mut() = State::Running(Vec::new());
        let ran = self.run_module(module);
        let next = match &ran {
            Ok(()) => State::Done(Value::Module(module.clone())),
            Err(_) => State::NotRun,
        };
        if let State::Running(waiting) = std::mem::replace(&mut *state.borrow_mut(), next) {
            waiting.iter().for_each(|w| wait::wake(w));
        }
        ran.map(|()| Value::Module(module.clone()))
    }

    /// Runs a module's top level on this VM, its frame on top of the importing one (so that an
    /// error's stack shows the import). It always runs interpreted, as a program's main does.
    fn run_module(&mut self, module: &Module) -> Result<(), Fail> {
        if self.frames.len() >= self.frame_limit {
            return Err("stack overflow".into());
        }
        let c = Rc::new(Closure::plain(module.main.clone()));
        let top = self.stack.len();
        self.stack.push(Value::Func(c.clone()));
        self.push_frame(&c, top + 1);
        let stop = self.frames.len() - 1;
        let result = self.run(stop);
        self.stack.truncate(top);
        result.map(drop).map_err(|d| Fail::Done(Box::new(d)))
    }
}

/// `module.name`: the value of the module's top-level name `name` (a string constant).
pub fn get(module: &Module, name: &Value, globals: &Globals, gil: Gil) -> Result<Value, Fail> {
    let found = match name {
        Value::Str(s) => module.names.get(&*s.text).map(|&g| globals.get(g as usize, gil)),
        _ => None,
    };
    match found {
        Some(v) if !matches!(v, Value::Undef) => Ok(v),
        _ => {
            let name = name.to_text(gil).unwrap_or_default();
            Err(format!("module {} has no name '{name}'", module.name).into())
        }
    }
}
