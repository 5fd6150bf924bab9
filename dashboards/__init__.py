"""TradeTower dashboards package."""
