"""The Rubin Data Preview 0.2 (DP0.2) Object catalog for the Training Set Maker."""
