"""Brightpearl's public REST API, as far as the relay needs it."""
