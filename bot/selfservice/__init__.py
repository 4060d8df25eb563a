"""Self-service: account actions, the provider rules behind them, invoices."""
