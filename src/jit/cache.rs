//! The cache of compiled code across runs (numba's `cache=True`, Python's `__pycache__`): the
//! machine code Cranelift made for a function, in a file named by the function's cache key, so
//! that a later run that lowers the same IR takes the code instead of compiling it again.
//!
//! The key is Cranelift's incremental-cache key (`compute_cache_key`: a SHA-256 of the
//! function's IR without its table of external names, the ISA's name and triple, the shared
//! flags and the ISA's flags), in a directory named by the Cranelift version and mini's build id
//! (build.rs: a hash of mini's sources, Cargo.lock, the compiler and the profile), so a changed
//! program (other IR), a changed machine (other ISA flags) or a changed mini (another
//! directory) never finds another's code. The IR holds no address of the process (lower's
//! `address` names them as imported symbols, resolved when the code is linked), so the same
//! program lowers to the same IR in every run.
//!
//! An entry is `MAGIC`, then the SHA-256 of the key and the payload, then the payload (what
//! `incremental_cache::serialize_compiled` wrote): a truncated or otherwise damaged file fails
//! the checksum and is compiled as if absent (and written anew). Entries are written to a
//! temporary file and renamed into place, so that processes compiling at once (the tests, the
//! threads' own engines) never read half a file. The cache is bounded: once per process, at its
//! first write, the files of all builds under the root that exceed [`LIMIT`] bytes in all are
//! removed, least recently used first (a hit sets its file's modification time, when that is
//! older than [`TOUCH_AFTER`]) until [`LIMIT`]` * 3 / 4` remain. Any failure to read, write or
//! remove is ignored: the code is compiled as without a cache.
//!
//! Where: `$MINI_CACHE_DIR`, else `$XDG_CACHE_HOME/mini`, else `$HOME/.cache/mini`; an empty
//! `MINI_CACHE_DIR`, or `mini run --jit --no-cache`, turns it off (lang-spec/jit.md).

use cranelift::codegen::incremental_cache::CacheKvStore;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// The first bytes of every entry (the format's version is its last digit).
const MAGIC: &[u8; 8] = b"MINIJIT1";

/// The size in bytes above which the cache's oldest entries are removed.
pub const LIMIT: u64 = 64 << 20;

/// The age after which a temporary file is taken to be left by a process that died mid-write.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// How old an entry's modification time may be before a hit sets it again (see `get`): the
/// trimming orders entries by it, to within this.
const TOUCH_AFTER: Duration = Duration::from_secs(60);

/// Set by `--no-cache`.
static DISABLED: AtomicBool = AtomicBool::new(false);

/// Set once a process trimmed the cache (see the module's comment).
static TRIMMED: AtomicBool = AtomicBool::new(false);

/// Numbers the temporary files of this process.
static TEMP: AtomicU64 = AtomicU64::new(0);

/// Turns the cache off for the rest of the process (`--no-cache`).
pub fn disable() {
    DISABLED.store(true, Ordering::Relaxed);
}

/// The cache's root directory (see the module's comment), or None when it is off.
pub fn root() -> Option<PathBuf> {
    if DISABLED.load(Ordering::Relaxed) {
        return None;
    }
    let nonempty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = std::env::var_os("MINI_CACHE_DIR") {
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
    if let Some(dir) = nonempty("XDG_CACHE_HOME").filter(|d| d.is_absolute()) {
        return Some(dir.join("mini"));
    }
    nonempty("HOME").map(|home| home.join(".cache").join("mini"))
}

/// The directory of this build's entries under `root`.
fn build_dir(root: &Path) -> PathBuf {
    root.join(format!("jit-{}-{}", cranelift::codegen::VERSION, env!("MINI_BUILD_ID")))
}

/// A program's view of the cache: the directory of this build's entries.
pub struct Store {
    dir: PathBuf,
    /// Whether this process made (or found) the directory.
    made: bool,
}

impl Store {
    /// The store of this build, or None when the cache is off. Its directory is made at the
    /// first write (a run that only reads the cache makes no directory: two system calls fewer
    /// at every start of the JIT).
    pub fn open() -> Option<Store> {
        Some(Store { dir: build_dir(&root()?), made: false })
    }

    /// The file of the entry under `key`: the key in hex, `.bin`.
    fn path(&self, key: &[u8]) -> PathBuf {
        let mut name = String::with_capacity(key.len() * 2 + 4);
        for b in key {
            name.push_str(&format!("{b:02x}"));
        }
        name.push_str(".bin");
        self.dir.join(name)
    }
}

/// The checksum an entry stores: SHA-256 of its key and its payload.
fn checksum(key: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update((key.len() as u64).to_le_bytes());
    h.update(key);
    h.update(payload);
    h.finalize().into()
}

/// The payload of entry `bytes` stored under `key`, if the entry is whole.
fn payload<'b>(key: &[u8], bytes: &'b [u8]) -> Option<&'b [u8]> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (sum, payload) = rest.split_at_checked(32)?;
    (checksum(key, payload) == sum).then_some(payload)
}

impl CacheKvStore for Store {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        let mut file = std::fs::File::open(self.path(key)).ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        let payload = payload(key, &bytes)?.to_vec();
        // the least recently used entries go first when the cache is trimmed; an entry used
        // within the last `TOUCH_AFTER` keeps its time (one open and no write per hit: a run of
        // spectral_norm takes 9 entries)
        let now = SystemTime::now();
        let recent = file
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age < TOUCH_AFTER) || t > now);
        if !recent {
            let _ = file.set_modified(now);
        }
        Some(Cow::Owned(payload))
    }

    fn insert(&mut self, key: &[u8], val: Vec<u8>) {
        if !self.made {
            if std::fs::create_dir_all(&self.dir).is_err() {
                return;
            }
            self.made = true;
        }
        let path = self.path(key);
        let temp = path.with_extension(format!("{}.{}.tmp", std::process::id(), TEMP.fetch_add(1, Ordering::Relaxed)));
        let written = std::fs::File::create(&temp).and_then(|mut f| {
            f.write_all(MAGIC)?;
            f.write_all(&checksum(key, &val))?;
            f.write_all(&val)
        });
        if written.and_then(|()| std::fs::rename(&temp, &path)).is_err() {
            let _ = std::fs::remove_file(&temp);
            return;
        }
        if !TRIMMED.swap(true, Ordering::Relaxed)
            && let Some(root) = self.dir.parent()
        {
            trim(root, LIMIT);
        }
    }
}

/// Bounds the cache under `root` (every build's directory) to `limit` bytes: when it holds
/// more, removes files least recently used first until `limit * 3 / 4` remain; also removes
/// temporary files older than [`STALE_TEMP`], and build directories left empty.
pub fn trim(root: &Path, limit: u64) {
    let Ok(dirs) = std::fs::read_dir(root) else { return };
    let now = SystemTime::now();
    let mut files = Vec::new();
    let mut total = 0;
    for dir in dirs.flatten() {
        let dir = dir.path();
        if !dir.file_name().is_some_and(|n| n.to_string_lossy().starts_with("jit-")) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        let mut empty = true;
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            let path = entry.path();
            let modified = meta.modified().unwrap_or(now);
            if path.extension().is_some_and(|e| e == "tmp") {
                if now.duration_since(modified).is_ok_and(|age| age > STALE_TEMP) {
                    let _ = std::fs::remove_file(&path);
                }
                empty = false;
                continue;
            }
            empty = false;
            total += meta.len();
            files.push((modified, meta.len(), path));
        }
        if empty {
            let _ = std::fs::remove_dir(&dir);
        }
    }
    if total <= limit {
        return;
    }
    files.sort();
    for (_, len, path) in files {
        if total <= limit / 4 * 3 {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_damage_is_refused() {
        let dir = std::env::temp_dir().join(format!("mini-cache-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // the directory is made at the first write
        let mut store = Store { dir: dir.clone(), made: false };
        let key = [7u8; 32];
        assert!(store.get(&key).is_none());
        assert!(!dir.exists());
        store.insert(&key, b"payload".to_vec());
        assert_eq!(store.get(&key).as_deref(), Some(&b"payload"[..]));
        // another key never finds this entry's payload, even under its name
        let other = [8u8; 32];
        std::fs::copy(store.path(&key), store.path(&other)).unwrap();
        assert!(store.get(&other).is_none());
        // a truncated or flipped entry is refused
        let path = store.path(&key);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(store.get(&key).is_none());
        std::fs::write(&path, &bytes[..20]).unwrap();
        assert!(store.get(&key).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn trim_removes_the_least_recently_used_down_to_three_quarters() {
        let root = std::env::temp_dir().join(format!("mini-cache-trim-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("jit-test");
        std::fs::create_dir_all(&dir).unwrap();
        let base = SystemTime::now() - Duration::from_secs(100);
        for i in 0..8u64 {
            let path = dir.join(format!("{i}.bin"));
            std::fs::write(&path, [0u8; 100]).unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(base + Duration::from_secs(i)).unwrap();
        }
        trim(&root, 1000);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 8, "800 bytes are within the limit");
        trim(&root, 400);
        let mut left: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, ["5.bin", "6.bin", "7.bin"], "the newest, at most 300 bytes");
        let _ = std::fs::remove_dir_all(&root);
    }
}
