"""Reverse-mode differentiation of the traced graph: the VJP engine (core.py) that
runs the rules each op registers beside its definition, and the ops that change what
flows back (stop.py). The loop's own VJP (scan/grad.py) builds on it; the public
Aesara names live in `scanaot.gradient`, above both."""
