# Runs at every reset before main.py; must return quickly. Network bring-up comes with the
# device issue; for now nothing here may block.
