//! The locations of errors raised around the interpreter's fused instructions
//! (`bytecode::fuse`), which the program harness does not check (it checks the line): an error
//! of the first instruction of a pair points at its operator or index, an error of the second
//! at the second's, in every execution mode.

#[path = "../common/mod.rs"]
mod common;

use common::{MODES, ScratchFile, text};

/// Runs `program` in every mode; each must print `stdout` and fail with `message` at `line:col`.
fn fails_at(program: &str, stdout: &str, message: &str, line: usize, col: usize) {
    let file = ScratchFile::new("fused.mini", program);
    for (mode, flags) in MODES {
        let out = common::mini_cmd().arg("run").args(flags).arg(file.path()).output().expect("run mini");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "[{mode}] {err}");
        assert_eq!(text(&out.stdout), stdout, "[{mode}]");
        assert!(err.starts_with(&format!("error: {message}\n")), "[{mode}] {err}");
        assert!(err.contains(&format!("--> {}:{line}:{col}\n", file.as_str())), "[{mode}] {err}");
    }
}

#[test]
fn the_second_of_a_product_and_a_sum_fails_at_the_sum() {
    let program = "fn f(s, b, c) {\n    return s + b * c\n}\nprint(f(1.0, 1.5, 2.0))\nprint(f(\"x\", 1.5, 2.0))\n";
    fails_at(program, "4.0\n", "unsupported operand types for +: string and float", 2, 12);
    let program = "fn f(s, b, c) {\n    return s - b * c\n}\nprint(f([1], 1.5, 2.0))\n";
    fails_at(program, "", "unsupported operand types for -: list and float", 2, 12);
}

#[test]
fn the_first_of_a_product_and_a_sum_fails_at_the_product() {
    let program = "fn f(b, c, x) {\n    return x + b * c\n}\nprint(f(2.0, 2.0, 1.0))\nprint(f(\"s\", 2.0, 1.0))\n";
    fails_at(program, "5.0\n", "unsupported operand types for *: string and float", 2, 16);
}

#[test]
fn an_element_out_of_range_fails_at_the_index_and_a_bad_operand_at_the_operator() {
    let program =
        "fn f(a, i, x) {\n    return x - a[i]\n}\nprint(f(array(2, 1.0), 1, 3.0))\nprint(f(array(2, 1.0), 2, 3.0))\n";
    fails_at(program, "2.0\n", "index 2 out of range for array of length 2", 2, 16);
    let program =
        "fn f(a, i, x) {\n    return x * a[i]\n}\nprint(f(array(2, 1.0), 1, 3.0))\nprint(f(array(2, 1.0), 1, \"s\"))\n";
    fails_at(program, "3.0\n", "unsupported operand types for *: string and float", 2, 12);
}

#[test]
fn an_int_overflow_fails_at_the_operation_that_overflows() {
    let program = "fn f(b, c, x) {\n    return x + b * c\n}\nprint(f(3, 4, 5))\nprint(f(3, 4, 9223372036854775800))\n";
    fails_at(program, "17\n", "integer overflow", 2, 12);
    let program = "fn f(b, c, x) {\n    return x - b * c\n}\nprint(f(3, 4, 5))\nprint(f(4611686018427387904, 2, 5))\n";
    fails_at(program, "-7\n", "integer overflow", 2, 16);
}

#[test]
fn an_int_element_overflowing_a_sum_fails_at_the_sum() {
    let program = "fn f(a, i, x) {\n    return x + a[i]\n}\nlet a = array(2, 9223372036854775800)\nprint(f(a, 1, 7))\nprint(f(a, 1, 8))\n";
    fails_at(program, "9223372036854775807\n", "integer overflow", 2, 12);
}
