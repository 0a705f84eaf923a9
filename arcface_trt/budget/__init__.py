"""Drift budgets: the fewest nodes kept in full precision such that the worst-sample drift stays within a budget."""
