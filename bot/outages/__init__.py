"""Outages and planned works: known from the catalog's ``outages.csv`` and posted live by the
network operations centre (``/api/v1/outages``); checked before any troubleshooting, and told to
affected customers who allow outage notices (docs/outages.md)."""
