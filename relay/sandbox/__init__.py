"""A Brightpearl API sandbox: a real HTTP server that answers as the recorded Brightpearl API does.

app.py        the aiohttp app, ``start_sandbox`` (port 0 on loopback) and ``relay sandbox``
gateway.py    the way in: account, throttle, faults, authentication, then the resource
resources.py  Brightpearl's routes and their handlers (orders, order statuses, order-search)
search.py     resource search for any column table: filters, columns, sort, paging, reference
orders.py     an order, its GET rendering and its search row
catalogue.py  fixed data: order types, statuses, reference names, parties
account.py    one account: credentials, clock, orders, throttle, faults, request counts
state.py      the accounts by code and the app key they live under
throttle.py   200 requests per rolling minute
faults.py     injected faults: throttling, outages, slowness, bad bodies, expired tokens
envelope.py   bodies, error codes and the headers on every answer
control.py    the control API under /_sandbox
"""
