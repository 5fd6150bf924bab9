"""TradeTower tradetower package."""
