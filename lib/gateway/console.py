# A console next to the running gateway: main.py runs asyncio and so holds the REPL, yet an
# installer must approve a pairing request (diag.approve()) while the CEM's connection waits.
# This task reads lines from the serial console (or the host's stdin) without blocking the
# event loop and runs them like the REPL does: an expression's value is printed, a statement
# executed, an exception printed; nothing a line does ends the gateway.
import sys

import asyncio

from compat import const

_PROMPT = const("gw> ")
_MAX = const(200)  # bytes of a console line (UTF-8); longer input is cut
EOT = "\x04"  # Ctrl-D: what LineEditor.feed returns for it on an empty line
# the host runners (make run, tools/gw run) start the gateway again when it exits with this
# status: Ctrl-D there is the soft reset that Ctrl-D is on the device
_RESTART_STATUS = const(4)


class LineEditor:
    """Characters in, complete lines out. echo: write back what was typed (a serial console
    has no local echo; a host terminal in cooked mode echoes itself). The line is gathered as
    UTF-8 in a buffer made once, of _MAX bytes: typing allocates nothing (a list of characters
    grew by doubling, to a 512 B block on the device for a long line)."""

    def __init__(self, write=None):
        self.buf = bytearray(_MAX)
        self.n = 0
        self.write = write

    def feed(self, ch):
        """The line when ch ends it (CR or LF; an empty line is ""), EOT for Ctrl-D on an
        empty line, else None."""
        w = self.write
        n = self.n
        if ch == EOT:
            return None if n else EOT
        if ch == "\r" or ch == "\n":
            line = str(memoryview(self.buf)[:n], "utf-8")
            self.n = 0
            if w:
                w("\r\n")
            return line
        buf = self.buf
        if ch == "\x7f" or ch == "\x08":
            if n:
                n -= 1
                while n and buf[n] & 0xC0 == 0x80:  # the rest of a multi-byte character
                    n -= 1
                self.n = n
                if w:
                    w("\x08 \x08")
            return None
        if ch < " ":
            return None  # other control characters
        c = ord(ch)
        if c < 0x80:
            if n >= _MAX:
                return None  # a line that is too long
            buf[n] = c
            n += 1
        else:
            b = ch.encode()
            if n + len(b) > _MAX:
                return None
            for c in b:
                buf[n] = c
                n += 1
        self.n = n
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


class _Diag:
    """The console's `diag`: gateway.diag.Diag(gw) once a line uses it. The device runs its
    console all the time and its screens rarely: the module (~1 KB of resident heap, 32-bit
    frozen) is imported at the first diag.<screen>, not when the console starts."""

    def __init__(self, gw):
        self._gw = gw

    def __getattr__(self, name):
        from gateway.diag import Diag

        return getattr(Diag(self._gw), name)


def namespace(gw):
    """What a console line sees: diag bound to the running gateway gw, gw itself as app."""
    return {"diag": _Diag(gw), "app": gw, "gc": __import__("gc")}


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
    """Serve the console for the gateway gw until its input ends (EOF: nobody is there to type;
    in a terminal Ctrl-D, which restarts the gateway)."""
    import select

    stdin = sys.stdin
    poll = select.poll()
    poll.register(stdin, select.POLLIN)
    ed = LineEditor(sys.stdout.write if kind == "serial" else None)
    prompt = _PROMPT if kind != "pipe" else ""
    ns = namespace(gw)
    # the first prompt at once, as the README shows it: the console is there from the start
    sys.stdout.write(prompt)
    while True:
        if not poll.poll(0):
            await asyncio.sleep_ms(period_ms)
            continue
        ch = stdin.read(1)
        if not ch and kind == "pipe":
            poll.unregister(stdin)
            return  # end of input: nobody is there to type
        # EOF: a terminal's Ctrl-D on an empty line (cooked mode); EOT: the serial console's 0x04
        line = ed.feed(ch) if ch else EOT
        if line is EOT:
            # Ctrl-D: restart the gateway as Ctrl-D at the device's REPL does. On the device
            # machine.soft_reset() (boot.py and main.py run again; supervisor.early_feed keeps a
            # running watchdog fed meanwhile); on the host the process ends with
            # _RESTART_STATUS and make run / tools/gw run start it again. SystemExit either
            # way: nothing in the gateway catches it, so asyncio.run ends and the sockets close
            # with the process. The SHIP sessions end with connectionClose first, not cut.
            await gw.shutdown()
            print("Ctrl-D: soft reset, the gateway restarts")
            if kind == "serial":
                import machine

                machine.soft_reset()
            raise SystemExit(_RESTART_STATUS)
        if line is not None:
            execute(line, ns)
            sys.stdout.write(prompt)
