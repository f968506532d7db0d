"""Emission: the traced graph becomes the scan dialect plus upstream tensor, linalg,
arith and math ops (builders.py: the shared MLIR helpers; function.py: the walk
that calls each op's registered rule)."""
