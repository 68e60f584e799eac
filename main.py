# Entry point on the device: keep tiny, the application lives in lib/ (gateway.app.main:
# safe mode, crash back-off, the gateway, restart on a crash).
import gateway.app

gateway.app.main()
