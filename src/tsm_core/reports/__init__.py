"""The training-set report: its numbers, figures and HTML."""
