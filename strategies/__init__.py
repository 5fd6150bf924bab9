"""TradeTower strategies package."""
