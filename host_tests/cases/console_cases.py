# The console's line editor and executor (lib/gateway/console.py). Runs under CPython and
# MicroPython.
from gateway.console import LineEditor, execute


def feed(ed, text):
    out = []
    for ch in text:
        line = ed.feed(ch)
        if line is not None:
            out.append(line)
    return out


def case_lines_backspace_and_echo():
    echoed = []
    ed = LineEditor(echoed.append)
    assert feed(ed, "diag.statux\x7fs()\r") == ["diag.status()"]
    assert "".join(echoed) == "diag.statux\x08 \x08s()\r\n"
    assert feed(ed, "\n\r\n") == ["", "", ""]
    assert feed(ed, "\x08\x08ab\x08c\n") == ["ac"]


def case_control_characters_and_long_lines_bounded():
    ed = LineEditor()
    assert feed(ed, "\x01\x1b[Aa\tb\n") == ["[Aab"]
    assert feed(ed, "z" * 1000 + "\n") == ["z" * 200]
    # the limit is on UTF-8 bytes: a character that would not fit whole is left out
    assert feed(ed, "z" + "\u00e9" * 150 + "\n") == ["z" + "\u00e9" * 99]


def case_backspace_takes_a_whole_character():
    ed = LineEditor()
    assert feed(ed, "a\u00e9\x7fb\u20ac\x08\U0001f50c\x7f\u00fc\n") == ["ab\u00fc"]
    assert feed(ed, "\u00e9\x7f\x7f\n") == [""]


def case_execute_prints_values_and_survives_errors():
    ns = {}
    execute("x = 2", ns)
    assert ns["x"] == 2
    execute("1/0", ns)
    execute("import nosuchmodule_here", ns)
    execute("def (", ns)
    execute("   ", ns)
    execute("y = x * 21", ns)
    assert ns["y"] == 42


def case_ctrl_d_on_an_empty_line_is_eot():
    from gateway.console import EOT

    ed = LineEditor()
    assert ed.feed("\x04") == EOT  # the serial console's Ctrl-D: soft reset
    assert feed(ed, "ab\x04c\n") == ["abc"]  # inside a line it is ignored like other controls


def case_namespace_diag_reaches_the_gateway_when_used():
    # the console's diag imports gateway.diag at its first use; a screen is bound to gw then
    from gateway.console import namespace

    class Gw:
        asked = None

        def pair(self, seconds=None):
            self.asked = seconds

    gw = Gw()
    ns = namespace(gw)
    assert ns["app"] is gw
    ns["diag"].pair(60)
    assert gw.asked == 60
    try:
        ns["diag"].no_such_screen
    except AttributeError:
        pass
    else:
        raise AssertionError("an unknown screen must raise AttributeError")


def case_typing_allocates_nothing():
    try:
        from micropython import heap_lock, heap_unlock
    except ImportError:
        return  # CPython: nothing to check
    ed = LineEditor()
    chars = list("diag.status())\x7f\x01")
    heap_lock()
    try:
        for ch in chars:
            ed.feed(ch)
    finally:
        heap_unlock()
    assert ed.feed("\n") == "diag.status()"
