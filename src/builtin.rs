//! The builtin functions' names: the `Builtin` enum, defined once by the `builtins!` macro
//! (variants, `Builtin::ALL` in global-slot order, `name`, `from_name`). It sits below the
//! values, the bytecode and the compiler, which all name builtins; what each one does is in
//! `vm::builtins` (`call`, an exhaustive `match`).

macro_rules! builtins {
    ($($variant:ident = $name:literal,)*) => {
        /// A builtin function.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Builtin { $($variant),* }

        impl Builtin {
            /// Every builtin, in global-slot order.
            pub const ALL: &'static [Builtin] = &[$(Builtin::$variant),*];

            /// The name a program calls it by.
            pub fn name(self) -> &'static str {
                match self { $(Builtin::$variant => $name),* }
            }

            pub fn from_name(name: &str) -> Option<Builtin> {
                match name { $($name => Some(Builtin::$variant),)* _ => None }
            }
        }
    };
}

builtins! {
    Print = "print",
    Len = "len",
    Str = "str",
    Int = "int",
    Float = "float",
    Type = "type",
    Range = "range",
    Push = "push",
    Pop = "pop",
    Keys = "keys",
    Has = "has",
    Remove = "remove",
    Array = "array",
    Sqrt = "sqrt",
    Sin = "sin",
    Cos = "cos",
    Tan = "tan",
    Exp = "exp",
    Log = "log",
    Floor = "floor",
    Ceil = "ceil",
    Abs = "abs",
    Min = "min",
    Max = "max",
    Clock = "clock",
    Spawn = "spawn",
    Join = "join",
    Args = "args",
    CpuCount = "cpu_count",
    Assert = "assert",
    AtomicAdd = "atomic_add",
    AtomicCas = "atomic_cas",
    Pmap = "pmap",
    Lock = "lock",
    Acquire = "acquire",
    Release = "release",
    Locked = "locked",
    Queue = "queue",
    Put = "put",
    Get = "get",
    TryGet = "try_get",
    Close = "close",
    Barrier = "barrier",
    Wait = "wait",
    Sleep = "sleep",
    Split = "split",
    Strip = "strip",
    Lower = "lower",
    Upper = "upper",
    Replace = "replace",
    Find = "find",
    StartsWith = "startswith",
    EndsWith = "endswith",
    Ord = "ord",
    Chr = "chr",
    ReadFile = "read_file",
    ReadLines = "read_lines",
    WriteFile = "write_file",
    AppendFile = "append_file",
    Input = "input",
    Eprint = "eprint",
    Exit = "exit",
    Env = "env",
    Time = "time",
    Sort = "sort",
    Sorted = "sorted",
    Reverse = "reverse",
    Insert = "insert",
    Extend = "extend",
    Index = "index",
    Copy = "copy",
    Values = "values",
    Items = "items",
    Format = "format",
    Round = "round",
    // `x in c` and `x not in c` call it (parser.rs); `in` is a keyword, so no program names it
    In = "in",
    Seed = "seed",
    Random = "random",
    Randint = "randint",
    Uniform = "uniform",
    Gauss = "gauss",
    Shuffle = "shuffle",
    Choice = "choice",
    Sum = "sum",
    Any = "any",
    All = "all",
    Enumerate = "enumerate",
    Zip = "zip",
    Count = "count",
    RFind = "rfind",
    IsDigit = "isdigit",
    IsAlpha = "isalpha",
    IsSpace = "isspace",
    IsAlnum = "isalnum",
    LStrip = "lstrip",
    RStrip = "rstrip",
    SplitLines = "splitlines",
    Error = "error",
    Prange = "prange",
    SetThreads = "set_threads",
    Threads = "threads",
    Shape = "shape",
    Forked = "forked",
    SharedArray = "shared_array",
    MpiRank = "mpi_rank",
    MpiSize = "mpi_size",
    MpiBarrier = "mpi_barrier",
    MpiSend = "mpi_send",
    MpiRecv = "mpi_recv",
    MpiBcast = "mpi_bcast",
    MpiGather = "mpi_gather",
    MpiScatter = "mpi_scatter",
    MpiReduce = "mpi_reduce",
    MpiAllreduce = "mpi_allreduce",
}
