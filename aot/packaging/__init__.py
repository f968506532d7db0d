"""Packaging: traced functions into sealed libraries and callables.

    manifest.py    each function's spec, argument names and manifest entry
    shape_expr.py  output shapes as expressions over the arguments
    header.py      the C header
    artifact.py    `compile`/`compile_many` and the cached `build` behind them
    function.py    `function`: a build loaded through scanaot.runtime
"""
