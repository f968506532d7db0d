"""`scanaot.tools`: the command line and the benchmark suite."""
