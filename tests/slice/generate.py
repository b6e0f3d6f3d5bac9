#!/usr/bin/env python3
"""Writes the generated slicing programs of tests/slice/: `python3 tests/slice/generate.py`.

Each program slices with many bounds and steps, and its `# expect:` lines are what Python's own
slicing gives for the same cases: this script is the Python twin of every program it writes.
The other programs of the folder are written by hand.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))

# Bounds around and beyond both ends of 10 elements, and steps of both signs and beyond the length.
BOUNDS = [None, -13, -10, -7, -1, 0, 1, 4, 9, 10, 12]
STEPS = [None, 1, 2, 3, -1, -2, -4, 11, -11]


def mini(v):
    """A Python value as mini source (and as mini prints it)."""
    return "nil" if v is None else str(v)


def write(name, lines, expected):
    """Writes program `name`: its `lines`, then one `# expect:` line per expected output line."""
    out = lines + [f"# expect: {e}" if e else "# expect:" for e in expected]
    with open(os.path.join(HERE, name), "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


def loops(what, setup, show):
    """Mini lines printing, for each step and start, `show(x[start:stop:step])` for every stop."""
    return [
        f"# Tests {what}, for every start, stop and step among bounds beyond both ends and steps of",
        "# both signs (nil is an omitted bound); the expected lines are Python's (generate.py).",
        *setup,
        f"let bounds = [{', '.join(mini(b) for b in BOUNDS)}]",
        f"for step in [{', '.join(mini(s) for s in STEPS)}] {{",
        "    for start in bounds {",
        '        let line = str(step) + " " + str(start) + ":"',
        "        for stop in bounds {",
        f'            line = line + " " + {show}',
        "        }",
        "        print(line)",
        "    }",
        "}",
    ]


def table(show):
    """Python's lines for `loops`: `show(start, stop, step)` gives one cell."""
    return [
        f"{mini(step)} {mini(start)}:" + "".join(" " + show(start, stop, step) for stop in BOUNDS)
        for step in STEPS
        for start in BOUNDS
    ]


def bounds_programs():
    s = "0123456789"
    write("bounds_string.mini",
          loops("slicing a string", ['let s = "0123456789"'], '"|" + s[start:stop:step]'),
          table(lambda a, b, c: "|" + s[a:b:c]))
    l = list(range(10, 20))
    write("bounds_list.mini",
          loops("slicing a list", ["let l = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]"], "str(l[start:stop:step])"),
          table(lambda a, b, c: str(l[a:b:c])))
    checksum = [
        "fn checksum(a) {",
        "    let t = 0",
        "    for i in range(len(a)) {",
        "        t = t * 31 + a[i] + 1",
        "    }",
        "    return t",
        "}",
        "fn weighted(a) {",
        "    let t = 0.0",
        "    for i in range(len(a)) {",
        "        t += (i + 1) * a[i]",
        "    }",
        "    return t",
        "}",
        "let a = array(10, 0)",
        "let f = array(10, 0.0)",
        "for i in range(10) {",
        "    a[i] = i * 7 % 10",
        "    f[i] = i * 0.75 - 2.0",
        "}",
    ]
    ints = [i * 7 % 10 for i in range(10)]
    floats = [i * 0.75 - 2.0 for i in range(10)]

    def py_checksum(xs):
        t = 0
        for x in xs:
            t = t * 31 + x + 1
        return t

    def py_weighted(xs):
        t = 0.0
        for i, x in enumerate(xs):
            t += (i + 1) * x
        return t

    lines = loops("slicing arrays", checksum,
                  'str(len(a[start:stop:step])) + "/" + str(checksum(a[start:stop:step])) + "/" + str(weighted(f[start:stop:step]))')
    lines[0:2] = [
        "# Tests slicing int and float arrays for every start, stop and step among bounds beyond both",
        "# ends and steps of both signs (nil is an omitted bound): each slice is a new array that",
        "# compiled functions check (a checksum that depends on the order, a weighted sum). The",
        "# expected lines are Python's (generate.py).",
    ]
    expected = table(lambda a, b, c: f"{len(ints[a:b:c])}/{py_checksum(ints[a:b:c])}/{py_weighted(floats[a:b:c])!r}")
    lines += ["# jit-compiles: checksum(int array)", "# jit-compiles: weighted(float array)"]
    write("compiled_bounds_array.mini", lines, expected)


def forms_program():
    """Every way of writing a slice (each part present or omitted, with one colon or two)."""
    forms = ["[:]", "[::]", "[2:]", "[:5]", "[2:5]", "[2:5:]", "[::2]", "[::-1]", "[1::3]", "[:5:2]",
             "[6:1:-2]", "[-3:]", "[:-3]", "[-1::-1]", "[:-4:-1]", "[::-3]", "[nil:nil:-2]", "[5:nil]",
             "[-100:100]", "[100:-100:-1]", "[4:4]", "[5:2]"]
    values = {"s": "abcdefgh", "u": "añb€c😀dé", "l": [10, 11, 12, 13, 14, 15, 16, 17]}
    lines = [
        "# Tests every form of slice (start, stop and step each present or omitted, with one colon",
        "# or two) on an ASCII string, a string of 1- to 4-byte characters, a list and int and float",
        "# arrays; the expected lines are Python's (generate.py).",
        'let s = "abcdefgh"',
        'let u = "añb€c😀dé"',
        "let l = [10, 11, 12, 13, 14, 15, 16, 17]",
        "let a = array(8, 0)",
        "let f = array(8, 0.0)",
        "for i in range(8) {",
        "    a[i] = 20 + i",
        "    f[i] = i / 4",
        "}",
    ]
    expected = []
    ints = [20 + i for i in range(8)]
    floats = [i / 4 for i in range(8)]
    for form in forms:
        py = form.replace("nil", "None")
        lines.append(f"print(s{form}, u{form}, l{form}, a{form}, f{form})")
        s_, u_, l_ = (eval(f"v{py}", {"v": values[k]}) for k in "sul")
        a_ = eval(f"v{py}", {"v": ints})
        f_ = eval(f"v{py}", {"v": floats})
        expected.append(f"{s_} {u_} {l_} array({a_}) array({f_})")
    write("forms.mini", lines, expected)


def unicode_program():
    """Slices of a long string of mixed widths, across the offset table's 32-character strides."""
    text = "".join("aé€😀 Zß漢"[(i * i + 3 * i) // 3 % 8] for i in range(100))
    cases = [(0, 40, None), (31, 33, None), (30, 70, 3), (63, 95, None), (99, None, None), (None, 5, None),
             (-1, None, -1), (95, 2, -7), (None, None, 13), (None, None, -13), (33, 97, 32), (-40, -31, None),
             (64, 64, None), (5, 90, -1), (None, 64, 33)]
    lines = [
        "# Tests slices of a 100-character string of 1- to 4-byte characters (with a step of 1 and",
        "# others, across the 32-character strides of its offset table); the expected lines are",
        "# Python's (generate.py).",
        f'let t = "{text}"',
        "print(len(t))",
    ]
    expected = [str(len(text))]
    for a, b, c in cases:
        lines.append(f"print(t[{mini(a)}:{mini(b)}:{mini(c)}])")
        expected.append(text[a:b:c])
    lines.append("let whole = t[::-1]")
    lines.append("print(whole[::-1] == t, len(whole), whole[0:10])")
    expected.append(f"true {len(text)} {text[::-1][0:10]}")
    write("unicode.mini", lines, expected)


def main():
    bounds_programs()
    forms_program()
    unicode_program()


if __name__ == "__main__":
    main()
