"""Durable records of the hotline's calls, kept apart from the telephony code that makes them.

The telephony side writes through ``crm.calls.CallLog``; people read through the HTTP API in
``web.calls``. Nothing here talks to Asterisk.
"""
