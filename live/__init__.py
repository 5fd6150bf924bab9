"""TradeTower live package."""
