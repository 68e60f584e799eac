# The SPINE core (spine.md 1-10): datagrams (datagram), the local device model (device),
# NodeManagement (nodemgmt), one session per connection (session), what we keep of a peer's
# discovery (remote) and function data as rows (table). Protocol only: no use case, no charger.
# Imports: compat, log, eejson below it; never charger, usecases or gateway
# (eejson <- spine <- usecases <- gateway; the charger model at the bottom, imported by usecases).
