"""What an operator's tools read: `/readyz`, `/metrics`, and the workers' heartbeats behind them."""
