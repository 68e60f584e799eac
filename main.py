# Entry point on the device: keep tiny, the application lives in lib/ (gateway.app.main:
# safe mode, crash back-off, the gateway, restart on a crash).
import sys

import gateway.app
from gateway import diag

sys.modules["diag"] = diag  # `import diag` at the REPL (safe mode, or after Ctrl-C)
gateway.app.main()
