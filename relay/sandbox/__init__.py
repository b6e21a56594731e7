"""A Brightpearl API sandbox: a real HTTP server that answers as the recorded Brightpearl API does.

app.py        the aiohttp app, ``start_sandbox`` (port 0 on loopback) and ``relay sandbox``
gateway.py    the way in: account, throttle (the private apps' pool or the OAuth app's own), faults,
              authentication (private tokens or Bearer), then the resource
resources.py  Brightpearl's routes and their handlers (orders, products, availability, goods movements,
              goods-out notes, contacts)
search.py     resource search for any column table: filters, columns, sort, paging, reference; what a strict
              account refuses of a search
strictness.py what a strict account refuses of a GET; every refusal kept in the request log
idsets.py     ID sets (``1-5,7``) read and written by the sandbox's own code, not the client's
times.py      date-times read and rendered by the sandbox's own code, not the client's
orders.py     an order and its rows, its GET rendering and its search row
products.py   a product, its GET rendering and its search row
stock.py      stock figures per product and warehouse, and the goods movements that log changes
goods_out.py  a goods-out note, its stages and events, its GET rendering and its search row
contacts.py   a contact, its GET rendering and its search row
webhooks.py   native webhook subscriptions (``integration-service/webhook``) and the book that keeps them
webhook_api.py      their Brightpearl routes: create, list, get, delete, simulate (recorded answers, INTC-064)
webhook_events.py   the events the sandbox knows, which a ``subscribeTo`` covers, templates rendered (pure)
hints.py      firing webhooks: a bounded queue, a background sender, QoS retries, faults, the log of calls
oauth.py      the account's OAuth instance app and its install: codes, access and refresh tokens, lifetimes,
              rotation, revocation, counters, its own throttle (pure; the time is passed in)
oauth_api.py  Brightpearl's OAuth server: ``/oauth/authorize/{account}`` (302 at once) and ``/oauth/token/{account}``
catalogue.py  fixed data: order types, statuses, reference names, parties
account.py    one account (``SandboxAccount``), put together from the modules below; where changes that touch
              several resources meet
account_state.py     what an account holds: credentials, clock, throttle, faults, request log, collections
account_products.py  its products and their stock
account_orders.py    its orders and their allocation
account_goods_out.py its goods-out notes, and shipping them
account_contacts.py  its contacts
account_errors.py    what an account refuses: unknown ids, changes its state does not allow
request_log.py       the requests an account answered, counted, and those it refused, with the reason
state.py      the accounts by code and the app key they live under
throttle.py   200 requests per rolling minute
faults.py     injected faults: throttling, outages, slowness, bad bodies, expired tokens
envelope.py   bodies, error codes and the headers on every answer
control.py    the control API under /_sandbox: its routes and its error middleware
control_requests.py  reading a control request; control_accounts.py, control_orders.py,
              control_products.py, control_contacts.py, control_faults.py, control_hints.py, control_oauth.py:
              its bodies and handlers by resource
"""
