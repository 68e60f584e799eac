# Runs at every reset before main.py and must return quickly: the safe-mode check (pin held
# low, or the /safe flag file) and the network bring-up the board config asks for, bounded by
# network.timeout_s (gateway/netboot.py). It never raises, so the REPL always comes up.
try:
    from gateway import netboot

    netboot.boot()
except Exception as e:  # a broken lib/ must not take the REPL with it
    import sys

    sys.print_exception(e)
