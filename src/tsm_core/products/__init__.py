"""Training-set products: the registry, process identity, cancellation, output files."""
