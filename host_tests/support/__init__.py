# Test helpers, imported by name (`from support import mpyrun`, `from support.paths import CAPTURES`).
# host_tests/conftest.py puts host_tests/ on sys.path; paths.py also runs under MicroPython.
