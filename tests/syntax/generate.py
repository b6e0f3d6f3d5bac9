#!/usr/bin/env python3
"""Writes the deep-input regression programs of tests/syntax/: `python3 tests/syntax/generate.py`.

Each err_ program nests one construct far past the parser's limit of 200 levels (30,000 deep
where the file stays near 100 KB, else as deep as fits), so that without the limit the parser
or the compiler would overflow its stack. Line 1 says what the program holds, since the deep
line itself is too long to read.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def program(name, what, setup, line):
    """Writes `name`: a comment, the `setup` lines, then `line`, which is too deep to parse."""
    lines = [f"# Tests that {what} is the syntax error 'nesting too deep'."] + setup + [line]
    expect = f"# expect-error line {len(lines)}: nesting too deep"
    with open(os.path.join(HERE, name), "w") as f:
        f.write("\n".join(lines + [expect]) + "\n")


def nested(opener, middle, closer, n):
    """`opener` n times, `middle`, then `closer` n times."""
    return opener * n + middle + closer * n


def main():
    program("err_deep_call_chain.mini", "a chain of 30,000 calls f()()()...",
            ["fn f() { return f }"], "f" + "()" * 30000)
    program("err_deep_index_chain.mini", "a chain of 30,000 indexes a[0][0]...",
            ["let a = [0]"], "a" + "[0]" * 30000)
    program("err_deep_index_assignment.mini", "assigning to a chain of 30,000 indexes",
            ["let a = [0]"], "a" + "[0]" * 30000 + " = 1")
    program("err_deep_call_index_chain.mini", "a chain of 20,000 calls and indexes f()[0]()[0]...",
            ["fn f() { return [f] }"], "f" + "()[0]" * 20000)
    program("err_deep_field_chain.mini", "a chain of 30,000 fields a.b.b...",
            ["let a = {}"], "print(a" + ".b" * 30000 + ")")
    program("err_deep_field_assignment.mini", "assigning to a chain of 20,000 fields and indexes",
            ["let a = {}"], "a" + ".b[0]" * 20000 + ".c = 1")
    program("err_deep_unary_minus.mini", "30,000 unary minuses - - - x",
            ["let x = 1"], "print(" + "- " * 30000 + "x)")
    program("err_deep_not.mini", "25,000 nots not not not x",
            ["let x = true"], "print(" + "not " * 25000 + "x)")
    program("err_deep_power.mini", "a chain of 20,000 ** operators",
            [], "print(" + "1 ** " * 20000 + "1)")
    program("err_deep_power_negative.mini", "a chain of 20,000 ** - operators 2 ** -2 ** -...",
            [], "print(" + "2 ** -" * 20000 + "1)")
    program("err_deep_parentheses.mini", "30,000 nested parentheses",
            [], "print(" + nested("(", "1", ")", 30000) + ")")
    program("err_deep_list_literals.mini", "30,000 nested list literals",
            [], "print(" + nested("[", "", "]", 30000) + ")")
    program("err_deep_dict_literals.mini", "30,000 nested dict literals",
            [], "print(" + nested("{1:", "1", "}", 30000) + ")")
    program("err_deep_call_arguments.mini", "30,000 calls nested as arguments f(f(f(...)))",
            ["fn f(x) { return x }"], "print(" + nested("f(", "1", ")", 30000) + ")")
    program("err_deep_comparison_operands.mini", "20,000 comparisons nested as operands 1 < (1 < (...))",
            [], "print(" + nested("1 < (", "1", ")", 20000) + ")")
    program("err_deep_function_literals.mini", "8,000 nested function literals fn() { return fn() { ... } }",
            [], "let f = " + nested("fn(){return ", "1", "}", 8000))
    program("err_deep_if_blocks.mini", "20,000 nested if blocks",
            [], nested("if 1{", "print(1)", "}", 20000))
    program("err_deep_else_blocks.mini", "10,000 nested else blocks if 0 {} else { if 0 {} else { ... } }",
            [], nested("if 0{}else{", "print(1)", "}", 10000))
    program("err_deep_while_blocks.mini", "12,000 nested while blocks",
            [], nested("while 0{", "", "}", 12000))
    program("err_deep_for_blocks.mini", "8,000 nested for blocks",
            [], nested("for i in []{", "", "}", 8000))
    program("err_long_plus_chain.mini", "a chain of 30,000 + operators (each operator counts as a level)",
            [], "print(" + "1+" * 30000 + "1)")
    program("err_long_and_chain.mini", "a chain of 20,000 and operators (each operator counts as a level)",
            ["let t = true"], "print(" + "t and " * 20000 + "t)")
    program("err_long_or_chain.mini", "a chain of 20,000 or operators (each operator counts as a level)",
            ["let f = false"], "print(" + "f or " * 20000 + "true)")
    else_if_chain(8000)


def else_if_chain(n):
    """A valid program: an `else if` chain is flat, so a chain of any length is accepted."""
    arms = "".join(f" else if x=={i}{{y={i}}}" for i in range(1, n))
    lines = [f"# Tests that an else-if chain of {n:,} arms is accepted: like Lua's elseif, it nests no",
             "# deeper than a single if.",
             f"let x = {n - 1}",
             "let y = -1",
             f"if x==0{{y=0}}{arms} else {{y=-2}}",
             f"print(y)  # expect: {n - 1}"]
    with open(os.path.join(HERE, "else_if_chain_long.mini"), "w") as f:
        f.write("\n".join(lines) + "\n")


main()
