"""Analytics: occupancy from real check-ins, revenue, no-shows, energy, forecast (issue 9 §4)."""
