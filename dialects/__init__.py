"""`scanaot.dialects`: the scan MLIR dialect (IRDL definition, verifier)."""
