# A console next to the running gateway: main.py runs asyncio and so holds the REPL, yet an
# installer must approve a pairing request (diag.approve()) while the CEM's connection waits.
# This task reads lines from the serial console (or the host's stdin) without blocking the
# event loop and runs them like the REPL does: an expression's value is printed, a statement
# executed, an exception printed; nothing a line does ends the gateway.
import sys

import asyncio

PROMPT = "gw> "
_MAX = 200  # a console line; longer input is cut, never grows a buffer without bound


class LineEditor:
    """Characters in, complete lines out. echo: write back what was typed (a serial console
    has no local echo; a host terminal in cooked mode echoes itself)."""

    def __init__(self, write=None):
        self.buf = []
        self.write = write

    def feed(self, ch):
        """The line when ch ends it (CR or LF; an empty line is ""), else None."""
        w = self.write
        if ch == "\r" or ch == "\n":
            line = "".join(self.buf)
            self.buf = []
            if w:
                w("\r\n")
            return line
        if ch == "\x7f" or ch == "\x08":
            if self.buf:
                self.buf.pop()
                if w:
                    w("\x08 \x08")
            return None
        if ch < " " or len(self.buf) >= _MAX:
            return None  # other control characters, or a line that is too long
        self.buf.append(ch)
        if w:
            w(ch)
        return None


def execute(line, ns):
    """Run one console line in ns; prints what the REPL would."""
    line = line.strip()
    if not line:
        return
    try:
        try:
            code = eval(line, ns)
        except SyntaxError:
            exec(line, ns)
            return
        if code is not None:
            print(repr(code))
    except Exception as e:  # the console's user made a mistake: say it, keep serving
        print("%s: %s" % (type(e).__name__, e))


def namespace(gw):
    """What a console line sees: diag bound to the running gateway gw, gw itself as app."""
    from gateway.diag import Diag

    return {"diag": Diag(gw), "app": gw, "gc": __import__("gc")}


def mode():
    """How the console runs here: "serial" (the device: echo and prompt), "tty" (the host in a
    terminal, GW_CONSOLE=tty as make run sets it: prompt only), "pipe" (GW_CONSOLE=pipe, tests:
    neither, so output lines stay whole), or None (off)."""
    if sys.platform != "linux":
        return "serial"
    import os

    m = os.getenv("GW_CONSOLE")
    return m if m in ("tty", "pipe") else None


async def run(kind, gw, period_ms=50):
    """Serve the console for the gateway gw until its input ends (EOF: nobody is there to type)."""
    import select

    stdin = sys.stdin
    poll = select.poll()
    poll.register(stdin, select.POLLIN)
    ed = LineEditor(sys.stdout.write if kind == "serial" else None)
    prompt = PROMPT if kind != "pipe" else ""
    ns = namespace(gw)
    # the first prompt waits for the first line: the start-up log is still coming
    while True:
        if not poll.poll(0):
            await asyncio.sleep_ms(period_ms)
            continue
        ch = stdin.read(1)
        if not ch:
            poll.unregister(stdin)
            return  # end of input: nobody is there to type
        line = ed.feed(ch)
        if line is not None:
            execute(line, ns)
            sys.stdout.write(prompt)
