"""The staff's pages: server-rendered, for a signed-in session, with a little JavaScript.

Each page reads the crm repositories directly (no HTTP round trip to our own API) and
goes through the same rules the API does: web/permissions.py for the route, web/privacy.py
for whose calls may be heard, web/masking.py for numbers, web/audit.py for every read of
a recording or transcript.
"""
