//! Files and the process (lang-spec/io.md): `read_file`, `read_lines`, `write_file`,
//! `append_file`, `input`, `eprint`, `exit`, `env` and `time`.
//!
//! What it may touch without the GIL: only bytes and paths it owns. Every file and terminal
//! operation runs inside `Gil::allow_threads`, so other threads run while it waits; values are
//! made from the bytes once the GIL is held again.

use super::Fail;
use crate::builtin::Builtin;
use crate::gil::Gil;
use crate::value::Value;
use std::io::{BufRead, Read, Write};

type BResult = Result<Value, Fail>;

/// Calls the files-and-process builtin `b`.
pub fn call(b: Builtin, args: &[Value], gil: Gil) -> BResult {
    use Builtin as B;
    match b {
        B::ReadFile => read_file(args, gil),
        B::ReadLines => read_lines(args, gil),
        B::WriteFile => write(b, args, false, gil),
        B::AppendFile => write(b, args, true, gil),
        B::Input => input(args, gil),
        B::Eprint => eprint(args, gil),
        B::Exit => exit(args),
        B::Env => env(args),
        B::Time => time(args),
        _ => Err(format!("internal error: {} is not a file builtin", b.name()).into()),
    }
}

fn arity(n: usize, args: &[Value]) -> Result<(), Fail> {
    if args.len() != n {
        let s = if n == 1 { "" } else { "s" };
        return Err(format!("expected {n} argument{s}, got {}", args.len()).into());
    }
    Ok(())
}

/// The string argument `what` of `b`, or `b expects a string what, not int`.
fn str_arg<'a>(b: Builtin, what: &str, v: &'a Value) -> Result<&'a str, Fail> {
    match v {
        Value::Str(s) => Ok(&s.text),
        other => Err(format!("{} expects a string {what}, not {}", b.name(), other.type_name()).into()),
    }
}

/// The operating system's reason for `e`, without Rust's ` (os error N)` suffix.
fn reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The error `cannot <verb> 'path': reason`.
fn file_error(verb: &str, path: &str, e: &std::io::Error) -> Fail {
    format!("cannot {verb} '{path}': {}", reason(e)).into()
}

/// Where reading a file failed.
enum ReadError {
    Open(std::io::Error),
    Read(std::io::Error),
}

/// Reads the whole file at `path`, without the GIL.
fn read_bytes(path: &str, gil: Gil) -> Result<Vec<u8>, Fail> {
    let owned = path.to_string();
    let result = gil.allow_threads(move || {
        let mut file = std::fs::File::open(&owned).map_err(ReadError::Open)?;
        let mut bytes = Vec::new();
        if let Ok(meta) = file.metadata() {
            bytes.reserve(usize::try_from(meta.len()).unwrap_or(0));
        }
        file.read_to_end(&mut bytes).map_err(ReadError::Read)?;
        Ok(bytes)
    });
    result.map_err(|e| match e {
        ReadError::Open(e) => file_error("open", path, &e),
        ReadError::Read(e) => file_error("read", path, &e),
    })
}

/// The text of a file's bytes, or `cannot read 'path': not valid UTF-8`.
fn utf8<'a>(path: &str, bytes: &'a [u8]) -> Result<&'a str, Fail> {
    std::str::from_utf8(bytes).map_err(|_| format!("cannot read '{path}': not valid UTF-8").into())
}

/// `read_file(path)`.
fn read_file(args: &[Value], gil: Gil) -> BResult {
    arity(1, args)?;
    let path = str_arg(Builtin::ReadFile, "path", &args[0])?;
    let bytes = read_bytes(path, gil)?;
    Ok(Value::str(utf8(path, &bytes)?))
}

/// How much of a file `read_lines` reads at a time: small enough that the lines are copied out
/// of a buffer still in the cache (reading a whole 100 MB file first was 2x slower).
const CHUNK: usize = 256 * 1024;

/// `read_lines(path)`: lines end at `\n`, `\r\n` or a lone `\r` (Python's universal newlines).
/// The file is read in chunks without the GIL, and each chunk's whole lines made into strings
/// with it.
fn read_lines(args: &[Value], gil: Gil) -> BResult {
    arity(1, args)?;
    let path = str_arg(Builtin::ReadLines, "path", &args[0])?;
    let owned = path.to_string();
    let mut file = gil.allow_threads(move || std::fs::File::open(owned)).map_err(|e| file_error("open", path, &e))?;
    let mut lines = Vec::new();
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK);
    loop {
        let (file_back, buf_back, read) = gil.allow_threads(move || {
            let read = fill(&mut file, &mut buf);
            (file, buf, read)
        });
        (file, buf) = (file_back, buf_back);
        let at_end = read.map_err(|e| file_error("read", path, &e))?;
        let cut = if at_end { buf.len() } else { whole_lines(&buf) };
        let text = utf8(path, &buf[..cut])?;
        lines.extend(split_lines(text).map(Value::str));
        if at_end {
            return Ok(Value::list(lines, gil));
        }
        buf.drain(..cut);
    }
}

/// Reads [`CHUNK`] more bytes into `buf` (fewer at the end of the file); true at the end.
fn fill(file: &mut std::fs::File, buf: &mut Vec<u8>) -> std::io::Result<bool> {
    let want = buf.len() + CHUNK;
    while buf.len() < want {
        let old = buf.len();
        buf.resize(want, 0);
        match file.read(&mut buf[old..]) {
            Ok(n) => {
                buf.truncate(old + n);
                if n == 0 {
                    return Ok(true);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(old),
            Err(e) => {
                buf.truncate(old);
                return Err(e);
            }
        }
    }
    Ok(false)
}

/// The length of `buf`'s whole lines: up to its last line end, where a `\r` as the last byte
/// does not count (a `\n` may follow it in the next chunk).
fn whole_lines(buf: &[u8]) -> usize {
    let search = match buf.last() {
        Some(b'\r') => &buf[..buf.len() - 1],
        _ => buf,
    };
    search.iter().rposition(|&b| b == b'\n' || b == b'\r').map_or(0, |i| i + 1)
}

/// The lines of `text` without their ends; a final line end starts no empty line.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let has_cr = text.as_bytes().contains(&b'\r');
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = if has_cr { rest.find(['\n', '\r']) } else { rest.find('\n') };
        let Some(end) = end else {
            let line = rest;
            rest = "";
            return Some(line);
        };
        let line = &rest[..end];
        let skip = if rest[end..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[end + skip..];
        Some(line)
    })
}

/// `write_file(path, s)` and `append_file(path, s)`.
fn write(b: Builtin, args: &[Value], append: bool, gil: Gil) -> BResult {
    arity(2, args)?;
    let path = str_arg(b, "path", &args[0])?;
    let text = str_arg(b, "to write", &args[1])?;
    let (owned_path, owned_text) = (path.to_string(), text.to_string());
    let result = gil.allow_threads(move || {
        let mut options = std::fs::OpenOptions::new();
        options.create(true);
        if append {
            options.append(true);
        } else {
            options.write(true).truncate(true);
        }
        let mut file = options.open(&owned_path).map_err(ReadError::Open)?;
        file.write_all(owned_text.as_bytes()).map_err(ReadError::Read)
    });
    result.map_err(|e| match e {
        ReadError::Open(e) => file_error("open", path, &e),
        ReadError::Read(e) => file_error("write", path, &e),
    })?;
    Ok(Value::Nil)
}

/// `input()` and `input(prompt)`: one line of standard input without its `\n` or `\r\n`, or
/// `nil` at the end of input. The prompt goes to stdout, flushed before reading.
fn input(args: &[Value], gil: Gil) -> BResult {
    let prompt = match args {
        [] => None,
        [p] => Some(str_arg(Builtin::Input, "prompt", p)?.to_string()),
        _ => return Err(format!("expected 0 to 1 arguments, got {}", args.len()).into()),
    };
    let read = gil.allow_threads(move || {
        if let Some(p) = prompt {
            let mut out = super::stdout();
            let _ = out.write_all(p.as_bytes());
            let _ = out.flush();
        } else {
            super::flush_stdout();
        }
        let mut line = Vec::new();
        std::io::stdin().lock().read_until(b'\n', &mut line).map(|n| (n, line))
    });
    let (n, mut line) = read.map_err(|e| Fail::from(format!("cannot read standard input: {}", reason(&e))))?;
    if n == 0 {
        return Ok(Value::Nil);
    }
    if line.ends_with(b"\n") {
        line.pop();
        if line.ends_with(b"\r") {
            line.pop();
        }
    }
    let text = std::str::from_utf8(&line).map_err(|_| Fail::from("standard input is not valid UTF-8"))?;
    Ok(Value::str(text))
}

/// `eprint(...)`: `print`'s line, to stderr, after flushing stdout so that the two keep their
/// order on a terminal.
fn eprint(args: &[Value], gil: Gil) -> BResult {
    let line = super::builtins::print_line(args, gil)?;
    gil.allow_threads(move || {
        super::flush_stdout();
        // a closed or failing stderr is not an error of the program
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    });
    Ok(Value::Nil)
}

/// `exit()` and `exit(code)`: flushes stdout and ends the process from any thread, without
/// waiting for other threads.
fn exit(args: &[Value]) -> BResult {
    let code = match args {
        [] => 0,
        [Value::Int(c)] if (0..=255).contains(c) => *c as i32,
        [Value::Int(_)] => return Err("exit code must be between 0 and 255".into()),
        [other] => return Err(format!("exit expects an int code, not {}", other.type_name()).into()),
        _ => return Err(format!("expected 0 to 1 arguments, got {}", args.len()).into()),
    };
    // if another thread has begun to end the process (an error report, Ctrl-C), it wins
    crate::interrupt::claim_end();
    super::flush_stdout();
    std::process::exit(code)
}

/// `env(name)`: the variable's value, or `nil` when it is not set (or its name could not be
/// one: empty, or holding `=` or a NUL).
fn env(args: &[Value]) -> BResult {
    arity(1, args)?;
    let name = str_arg(Builtin::Env, "name", &args[0])?;
    if name.is_empty() || name.contains(['=', '\0']) {
        return Ok(Value::Nil);
    }
    match std::env::var_os(name) {
        None => Ok(Value::Nil),
        Some(v) => match v.to_str() {
            Some(s) => Ok(Value::str(s)),
            None => Err(format!("environment variable '{name}' is not valid UTF-8").into()),
        },
    }
}

/// `time()`: seconds since the Unix epoch (negative before it).
fn time(args: &[Value]) -> BResult {
    arity(0, args)?;
    let now = std::time::SystemTime::now();
    let secs = match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    Ok(Value::Float(secs))
}

#[cfg(test)]
mod tests {
    use super::split_lines;

    fn lines(text: &str) -> Vec<&str> {
        split_lines(text).collect()
    }

    #[test]
    fn lines_end_at_every_universal_newline() {
        assert_eq!(lines(""), Vec::<&str>::new());
        assert_eq!(lines("a"), ["a"]);
        assert_eq!(lines("a\n"), ["a"]);
        assert_eq!(lines("a\n\nb"), ["a", "", "b"]);
        assert_eq!(lines("a\r\nb\rc\n"), ["a", "b", "c"]);
        assert_eq!(lines("\n"), [""]);
        assert_eq!(lines("\r\n\r\n"), ["", ""]);
        assert_eq!(lines("a\n\r\nb"), ["a", "", "b"]);
    }
}
