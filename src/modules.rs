//! Finding and parsing the files of a program before it compiles: the main file, then every
//! module its `import "path"` expressions name, recursively. A path is looked for next to the
//! importing file, then in each directory of `MINI_PATH`; a file imported twice (by any path
//! that reaches it) is one module; a cycle of imports is an error naming the chain.

use crate::ast::Stmt;
use crate::compiler::Source;
use crate::parser::{self, ImportSite};
use crate::source::{Diagnostic, SourceFile, SourceMap, Span};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

/// The most files one program may have (module indexes are 16 bits).
const MAX_MODULES: usize = u16::MAX as usize;

/// One parsed file of a program.
pub struct Parsed {
    pub file: Arc<SourceFile>,
    /// The directory its imports are looked for in first.
    dir: PathBuf,
    pub stmts: Vec<Stmt>,
    /// The module each import loads, by the start of the import's span.
    pub imports: HashMap<u32, u16>,
}

impl Parsed {
    /// The file as the compiler takes it; `main` for the main file (whose top-level function is
    /// `<main>`).
    pub fn source(&self, main: bool) -> Source<'_> {
        let name: Rc<str> = if main { "<main>".into() } else { module_name(&self.file.name).into() };
        let end = self.file.base as usize + self.file.text.len();
        Source {
            name,
            stmts: &self.stmts,
            span: Span::new(self.file.base as usize, end),
            imports: self.imports.clone(),
        }
    }
}

/// The name errors give a module: its file's name without directory and extension.
fn module_name(path: &str) -> String {
    let p = Path::new(path);
    p.file_stem().map_or_else(|| path.to_string(), |s| s.to_string_lossy().into_owned())
}

/// Parses the program whose main file is the first of `map` (read from `main_path`, or from
/// standard input when `None`) and every module it imports, adding the modules to `map`. The
/// main file comes first in the result, then the modules in the order they were found.
pub fn load(map: &mut SourceMap, main_path: Option<&Path>) -> Result<Vec<Parsed>, Diagnostic> {
    let dir = main_path.and_then(Path::parent).map_or_else(PathBuf::new, Path::to_path_buf);
    let main = map.main().clone();
    let mut loader =
        Loader { map, files: Vec::new(), by_path: HashMap::new(), open: Vec::new(), search: search_path() };
    if let Some(key) = main_path.and_then(|p| std::fs::canonicalize(p).ok()) {
        loader.by_path.insert(key, 0);
    }
    loader.visit(main, dir)?;
    Ok(loader.files)
}

/// The directories of `MINI_PATH` (separated as the platform separates `PATH`).
fn search_path() -> Vec<PathBuf> {
    std::env::var_os("MINI_PATH")
        .map(|v| std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()).collect())
        .unwrap_or_default()
}

struct Loader<'m> {
    map: &'m mut SourceMap,
    files: Vec<Parsed>,
    /// The module of each file found so far, by its canonical path.
    by_path: HashMap<PathBuf, u16>,
    /// The files being loaded (each importing the next), with the import that reached each
    /// after the first: the chain a cycle is named by.
    open: Vec<u16>,
    search: Vec<PathBuf>,
}

impl Loader<'_> {
    /// Parses `file` (looking for its imports in `dir` first), then the modules it imports.
    fn visit(&mut self, file: Arc<SourceFile>, dir: PathBuf) -> Result<u16, Diagnostic> {
        let (stmts, sites) = parser::parse_file(&file.text, file.base)?;
        let index = self.files.len() as u16;
        self.files.push(Parsed { file, dir, stmts, imports: HashMap::new() });
        self.open.push(index);
        for site in sites {
            let m = self.import(index, &site)?;
            self.files[index as usize].imports.insert(site.1.start, m);
        }
        self.open.pop();
        Ok(index)
    }

    /// The module that import `site` of file `from` loads, loading it first if it is new.
    fn import(&mut self, from: u16, (path, span): &ImportSite) -> Result<u16, Diagnostic> {
        let (shown, key) = self.resolve(from, path, *span)?;
        if let Some(&m) = self.by_path.get(&key) {
            if let Some(at) = self.open.iter().position(|&o| o == m) {
                return Err(self.cycle(at, m, *span));
            }
            return Ok(m);
        }
        if self.files.len() >= MAX_MODULES {
            return Err(Diagnostic::new("too many modules", *span));
        }
        let text = read(&shown, *span)?;
        let dir = shown.parent().map_or_else(PathBuf::new, Path::to_path_buf);
        let Some(file) = self.map.add(tidy(&shown).display().to_string(), text) else {
            return Err(Diagnostic::new("program too large (its files pass 4 GiB)", *span));
        };
        self.by_path.insert(key, self.files.len() as u16);
        self.visit(file, dir)
    }

    /// The path of the file `path` names from file `from` (as shown in messages) and its
    /// canonical form: next to `from` first, then in each directory of `MINI_PATH`.
    fn resolve(&self, from: u16, path: &str, span: Span) -> Result<(PathBuf, PathBuf), Diagnostic> {
        let dirs = std::iter::once(&self.files[from as usize].dir).chain(&self.search);
        let mut tried: Vec<PathBuf> = Vec::new();
        for candidate in dirs.map(|d| d.join(path)) {
            if candidate.is_file()
                && let Ok(key) = std::fs::canonicalize(&candidate)
            {
                return Ok((candidate, key));
            }
            let shown = tidy(&candidate);
            if !tried.contains(&shown) {
                tried.push(shown);
            }
        }
        let looked: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
        let msg = format!("cannot find module '{path}' (looked for {})", looked.join(", "));
        Err(Diagnostic::new(msg, span))
    }

    /// The error of an import at `span` of the innermost open file that reaches module `m`,
    /// the file open at `at`: `import cycle: a.mini -> b.mini -> a.mini`.
    fn cycle(&self, at: usize, m: u16, span: Span) -> Diagnostic {
        let name = |o: u16| self.files[o as usize].file.name.clone();
        let mut chain: Vec<String> = self.open[at..].iter().map(|&o| name(o)).collect();
        chain.push(name(m));
        Diagnostic::new(format!("import cycle: {}", chain.join(" -> ")), span)
    }
}

/// `path` with each `dir/..` left out (`lib/geometry/../util.mini` is `lib/util.mini`) and `.`
/// components dropped, for the names reports give files. (Through a symbolic link the tidy path
/// may be another file: it is only a name; files are opened by the path as written, and a
/// module's identity is its canonical path.)
fn tidy(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.iter().collect()
}

/// The text of module file `path`, imported at `span`.
fn read(path: &Path, span: Span) -> Result<String, Diagnostic> {
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostic::new(format!("cannot read module {}: {e}", path.display()), span))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        Diagnostic::new(format!("module {} is not valid UTF-8 (at byte {at})", path.display()), span)
    })
}
