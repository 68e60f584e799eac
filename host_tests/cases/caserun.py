# The case files in this folder hold plain `case_*` functions with asserts, so that the same
# file runs under CPython (pytest) and under the MicroPython unix port (test_cases_mpy.py).


def names(mod):
    return sorted(n for n in dir(mod) if n.startswith("case_"))


def run(mod):
    """Run every case of a module in name order; returns how many ran."""
    for name in names(mod):
        getattr(mod, name)()
    return len(names(mod))
