# Runs the gateway on the host under the MicroPython unix port (make run, end-to-end tests):
#   MICROPYPATH=lib:.frozen micropython tools/host_run.py BOARD_CONFIG DATA_DIR
import sys

from gateway import app

if len(sys.argv) != 3:
    print("usage: micropython tools/host_run.py BOARD_CONFIG DATA_DIR")
    sys.exit(2)
app.run(sys.argv[1], sys.argv[2])
