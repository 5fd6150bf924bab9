"""TradeTower simulator package."""
