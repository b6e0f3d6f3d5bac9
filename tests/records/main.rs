//! The locations of record field errors, which the program harness does not check (it checks the
//! line): every error of `p.x`, `p.x = v` and `p.x op= v` points at the field's name, in every
//! execution mode, and the source line under it is marked from the name to its end.

#[path = "../common/mod.rs"]
mod common;

use common::{MODES, ScratchFile, text};

/// Runs `program` in every mode; each must fail with `message` at `line:col` with carets of
/// `width` under the name.
fn fails_at(program: &str, message: &str, line: usize, col: usize, width: usize) {
    let file = ScratchFile::new("fields.mini", program);
    for (mode, flags) in MODES {
        let out = common::mini_cmd().arg("run").args(flags).arg(file.path()).output().expect("run mini");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "[{mode}] {err}");
        assert!(err.starts_with(&format!("error: {message}\n")), "[{mode}] {err}");
        assert!(err.contains(&format!("--> {}:{line}:{col}\n", file.as_str())), "[{mode}] {err}");
        let marks = format!("{}{}\n", " ".repeat(col - 1), "^".repeat(width));
        assert!(err.contains(&format!("| {marks}")), "[{mode}] {err}");
    }
}

#[test]
fn a_missing_field_points_at_its_name() {
    fails_at("let p = {\"a\": {\"b\": 1}}\nprint(p.a.b + p.a.cc)\n", "key \"cc\" not found", 2, 19, 2);
    fails_at("let p = {\"a\": 1}\nprint(p\n  .zz)\n", "key \"zz\" not found", 3, 4, 2);
}

#[test]
fn a_field_of_a_value_that_is_not_a_dict_points_at_its_name() {
    fails_at("let rows = [1]\nprint(rows[0].x)\n", "int has no field 'x'", 2, 15, 1);
    fails_at("let s = \"t\"\ns.size = 1\n", "cannot assign to field 'size' of string", 2, 3, 4);
}

#[test]
fn a_compound_assignment_reports_a_missing_field_at_its_name() {
    fails_at("let p = {}\nfn f(r) {\n    r.total += 1\n}\nf(p)\n", "key \"total\" not found", 3, 7, 5);
}

#[test]
fn an_operator_error_in_a_compound_field_assignment_is_the_statement() {
    fails_at("let p = {\"n\": \"s\"}\np.n += 1\n", "unsupported operand types for +: string and int", 2, 1, 8);
}
