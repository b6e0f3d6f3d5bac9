//! The `mini` executable: hands the command line to `mini::cli`.

fn main() -> std::process::ExitCode {
    mini::cli::main()
}
