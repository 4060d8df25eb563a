"""Requests people act on: connection leads, call-backs, visits, complaints, terminations and
feedback. The board stores them with their history; the desk is what the bot and the console
call; the webhook sender mirrors every change to the provider's CRM."""
