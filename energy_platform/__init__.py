"""energy_platform: day-ahead forecasts of Colombia's wholesale electricity price, run as a product."""

__version__ = "0.1.0"
