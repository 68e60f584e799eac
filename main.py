# Entry point on the device: keep tiny, the application lives in lib/.
import gateway.app

gateway.app.main()
