# The SPINE use cases of the charging station, one module per use case or tight family, each
# declaring its announcement (name, version, scenarios, sub-revision) and its feature ids next
# to the code that serves them: station (the SPINE application: device layout, wiring, notify
# plumbing, heartbeat, the SHIP endpoint), evse (EVSECC and the operating state), ev (the EV
# entity, EVCC), evcem, opev (OPEV + OSCEV), lpc (LPC + LPP and the failsafe store), mpc, cevc,
# evcs; measurement holds the ElectricalConnection / Measurement tables they share.
# Imports: spine, eejson, the charger model (charger), compat/log/jsonfile; never gateway
# (eejson <- spine <- usecases <- gateway; the charger model at the bottom, imported by usecases).
