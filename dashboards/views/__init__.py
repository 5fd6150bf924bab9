"""Panel views: one backtest, a comparison, the sweep explorer."""
