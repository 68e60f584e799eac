# Freezes the gateway into a MicroPython ESP32 firmware (bytecode runs from flash, saving the
# RAM that importing lib/ from the file system costs). Build with ESP-IDF:
#   make -C ports/esp32 BOARD_DIR=$PWD/firmware/boards/OPENEVGW_ESP32   (firmware/README.md)
# The boards in firmware/boards/ name this manifest; host_tests/test_firmware.py checks that it
# names every module of lib/.
# native/ holds the viper modules (ws_mask, utf8, eejson_lexer, eejson_escape); they freeze as
# native code: the esp32 port compiles frozen code with its MICROPY_CROSS_FLAGS, -march=xtensawin
# (ESP32, S3) or -march=rv32imc (C3, C6), and that machine code too runs from flash.
include("$(PORT_DIR)/boards/manifest.py")

package("controller", base_path="../lib")
package("echonet", base_path="../lib")
package("eejson", base_path="../lib")
package("gateway", base_path="../lib")
package("mdns", base_path="../lib")
package("modbus", base_path="../lib")
package("ship", base_path="../lib")
package("spine", base_path="../lib")
package("usecases", base_path="../lib")
package("ws", base_path="../lib")
module("charger.py", base_path="../lib")
module("check.py", base_path="../lib")
module("doccheck.py", base_path="../lib")
module("compat.py", base_path="../lib")
module("jsonfile.py", base_path="../lib")
module("log.py", base_path="../lib")
module("eejson_escape.py", base_path="../native")
module("eejson_lexer.py", base_path="../native")
module("utf8.py", base_path="../native")
module("ws_mask.py", base_path="../native")
