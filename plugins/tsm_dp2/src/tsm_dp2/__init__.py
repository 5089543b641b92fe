"""The Rubin Data Preview 2 (DP2) Object catalog for the Training Set Maker."""
