# The case files in this folder hold plain `case_*` functions with asserts, so that the same
# file runs under CPython (pytest, one test per case, asserts rewritten to show their values) and
# under the MicroPython unix port (test_cases_mpy.py, one process per file, through run_all).
#
# What run_all prints, one block per failing case, then a summary line:
#   CASE FAIL <name>
#     <traceback, each frame followed by its source line>
#   CASES ran=<n> failed=<m>
import sys

try:
    from sys import print_exception  # MicroPython
except ImportError:  # CPython
    print_exception = None


def names(mod):
    return sorted(n for n in dir(mod) if n.startswith("case_"))


def _source_line(path, lineno):
    try:
        with open(path) as f:
            i = 0
            for line in f:
                i += 1
                if i == lineno:
                    return line.strip()
    except OSError:
        pass
    return None


def _traceback_text(e):
    if print_exception is None:
        import traceback

        return "".join(traceback.format_exception(type(e), e, e.__traceback__)).rstrip("\n")
    import io

    buf = io.StringIO()
    print_exception(e, buf)
    # MicroPython's traceback names file and line only: add each frame's source line, as
    # CPython does, so that the failing assert itself is shown.
    out = []
    for line in buf.getvalue().rstrip("\n").split("\n"):
        out.append(line)
        s = line.strip()
        if s.startswith('File "') and '", line ' in s:
            path, rest = s[6:].split('", line ', 1)
            num = rest.split(",", 1)[0]
            src = _source_line(path, int(num)) if num.isdigit() else None
            if src:
                out.append("    " + src)
    return "\n".join(out)


def run_all(mod):
    """Run every case of a module in name order, each one even when an earlier one failed, and
    print a block for each failure and the summary line. Returns the names of the failed cases."""
    failed = []
    all_names = names(mod)
    for name in all_names:
        try:
            getattr(mod, name)()
        except Exception as e:  # noqa: BLE001 - a failing case is reported, the others still run
            failed.append(name)
            print("CASE FAIL", name)
            for line in _traceback_text(e).split("\n"):
                print("  " + line)
    print("CASES ran=%d failed=%d" % (len(all_names), len(failed)))
    return failed


if __name__ == "__main__":
    # micropython caserun.py <module>: run one case file (the folder and host_tests/ on the path)
    failed = run_all(__import__(sys.argv[1]))
    sys.exit(1 if failed else 0)
