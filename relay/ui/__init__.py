"""The dashboard at ``/ui``: server-rendered pages over the API's own code, no script and no build step.

``pages`` has the routes and handlers, ``session`` the login cookie, ``queries`` what a caller may see,
``chart`` the deliveries-per-hour chart (pure), ``display`` how values are worded, ``render`` the templates.
"""
