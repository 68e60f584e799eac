"""mDNS / DNS-SD: the DNS message codec, the responder announcing _ship._tcp, the browser that
finds CEMs, and the UDP 5353 adapter. May import the ground floor (compat, log, check) only;
the gateway starts it (gateway/mdns_service.py)."""
