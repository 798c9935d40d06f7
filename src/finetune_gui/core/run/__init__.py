"""A finished run: its folder, evaluation, comparison."""
