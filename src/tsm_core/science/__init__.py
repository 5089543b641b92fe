"""The science of a run: photometry, magnitudes, dereddening, layouts, filters, selections, representativeness."""
