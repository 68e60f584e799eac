# The ROMFS variants freeze only the port's own modules (asyncio, _boot, ...): lib/ goes to the
# romfs partition with `tools/gw deploy --romfs` and runs from there in place (firmware/README.md).
# A frozen lib/ would come first on sys.path ('.frozen' before '/rom') and hide the deployed one.
include("$(PORT_DIR)/boards/manifest.py")
