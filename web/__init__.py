"""Everything HTTP: the service's aiohttp application, its JSON API, the live feed and pages.

``telephony`` and ``crm`` hold no HTTP code; the handlers here call into them.
"""
