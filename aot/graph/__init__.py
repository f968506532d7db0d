"""The graph of a traced program: types, variables, nodes, the op base class, dtype
rules and the rule tables every op registers in. Nothing here imports MLIR."""
