"""The Rubin Data Preview 1 (DP1) Object catalog for the Training Set Maker."""
