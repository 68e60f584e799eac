# Freezes the gateway into a MicroPython ESP32 firmware (bytecode runs from flash, saving the
# RAM that importing lib/ from the file system costs). Build with ESP-IDF:
#   make -C ports/esp32 BOARD=ESP32_GENERIC FROZEN_MANIFEST=$PWD/firmware/manifest.py
# The full board definition (mDNS responder off, sdkconfig fragments) comes with the device
# issue; host_tests/test_firmware.py checks that this names every module of lib/.
include("$(PORT_DIR)/boards/manifest.py")

package("eejson", base_path="../lib")
package("gateway", base_path="../lib")
package("modbus", base_path="../lib")
package("ship", base_path="../lib")
package("spine", base_path="../lib")
package("ws", base_path="../lib")
module("bridge.py", base_path="../lib")
module("charger.py", base_path="../lib")
module("compat.py", base_path="../lib")
module("diag.py", base_path="../lib")
module("log.py", base_path="../lib")
