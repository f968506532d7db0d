"""The scan dialect: IRDL definition, round trip of every op, verifier errors."""
import sys

import pytest
from mlir import ir

from scanaot.dialects import scan as scan_dialect
from scanaot.dialects.verify import ScanVerifyError, verify

BODY = "func.func private @step(tensor<?xf32>, tensor<?xf32>, tensor<f32>, tensor<f32>) -> (tensor<f32>, tensor<?xf32>, i1, i32)"

PROGRAM = BODY + """
func.func @main(%n: index, %u: tensor<?x?xf32>, %s: tensor<f32>, %p: tensor<f32>, %d: index)
    -> (tensor<?xf32>, tensor<?x?xf32>, index, i32) {
  %l0 = "scan.loop"(%n) {body = @step, go_backwards = false, until = true} : (index) -> !scan.chain
  %l1 = "scan.sequence"(%l0, %u) {taps = array<i64: -1, 0>} : (!scan.chain, tensor<?x?xf32>) -> !scan.chain
  %l2 = "scan.state"(%l1, %s) {keep = "all", taps = array<i64: -1>} : (!scan.chain, tensor<f32>) -> !scan.chain
  %l3 = "scan.collect"(%l2, %d) {keep = "all"} : (!scan.chain, index) -> !scan.chain
  %l4 = "scan.param"(%l3, %p) : (!scan.chain, tensor<f32>) -> !scan.chain
  %a = "scan.output"(%l4) {index = 0 : i64} : (!scan.chain) -> tensor<?xf32>
  %b = "scan.output"(%l4) {index = 1 : i64} : (!scan.chain) -> tensor<?x?xf32>
  %c = "scan.steps"(%l4) : (!scan.chain) -> index
  %e = "scan.status"(%l4) : (!scan.chain) -> i32
  %last = "scan.last"(%b) : (tensor<?x?xf32>) -> tensor<?xf32>
  %fin = "scan.final"(%b, %last) : (tensor<?x?xf32>, tensor<?xf32>) -> tensor<?xf32>
  return %a, %b, %c, %e : tensor<?xf32>, tensor<?x?xf32>, index, i32
}
"""


@pytest.fixture
def ctx():
    with ir.Context() as context, ir.Location.unknown():
        scan_dialect.load(context)
        yield context


def test_definition_round_trips(ctx):
    text = str(scan_dialect.build_definition())
    again = ir.Module.parse(text)
    assert str(again) == text
    for name in scan_dialect.OP_NAMES:
        assert f'@{name.split(".")[1]} ' in text or f'"{name.split(".")[1]}"' in text


def test_every_op_round_trips(ctx):
    module = ir.Module.parse(PROGRAM)
    printed = str(module)
    assert str(ir.Module.parse(printed)) == printed
    for name in scan_dialect.OP_NAMES:
        assert f'"{name}"' in printed
    verify(module.operation)


def test_wrapping_a_scan_op_looks_for_its_python_module_once(ctx):
    """The bindings look up an op's dialect module each time they wrap an op; the scan
    dialect's module is registered, so wrapping chains of scan ops imports nothing (a
    failed import of mlir.dialects.scan per wrap cost 60 us each)."""
    module = ir.Module.parse(PROGRAM)
    main = list(module.body.operations)[-1]
    returned = list(main.regions[0].blocks[0].operations)[-1]

    class Recorder:
        asked = []

        def find_spec(self, name, path=None, target=None):
            self.asked.append(name)
            return None

    recorder = Recorder()
    sys.meta_path.insert(0, recorder)
    try:
        for _ in range(50):
            for value in returned.operands:
                value.owner.operands[0].owner
    finally:
        sys.meta_path.remove(recorder)
    looked_up = [name for name in recorder.asked if name.endswith(".scan")]
    assert len(looked_up) <= 2, looked_up  # at most once under each search prefix


@pytest.mark.parametrize("old, new, message", [
    ('"scan.loop"(%n)', '"scan.loop"(%d)', None),  # still an index: valid
    ('(%n) {body', '(%p) {body', "index"),
    ('"scan.sequence"(%l0, %u)', '"scan.sequence"(%l0, %n)', "tensor"),
    ('{keep = "all"} : (!scan.chain, index)', ': (!scan.chain, index)', "keep"),
])
def test_irdl_rejects_malformed_ops(ctx, old, new, message):
    text = PROGRAM.replace(old, new)
    if old == '(%n) {body':
        text = text.replace("(%n: index, %u", "(%n: index, %u").replace(": (index) -> !scan.chain", ": (tensor<f32>) -> !scan.chain", 1)
    if old == '"scan.sequence"(%l0, %u)':
        text = text.replace("(!scan.chain, tensor<?x?xf32>) -> !scan.chain", "(!scan.chain, index) -> !scan.chain", 1)
    if message is None:
        ir.Module.parse(text)
        return
    with pytest.raises(ir.MLIRError, match=message):
        ir.Module.parse(text)


@pytest.mark.parametrize("old, new, message", [
    ("array<i64: -1, 0>", "array<i64: 0, -1>", "distinct and increasing"),
    ('keep = "all", taps = array<i64: -1>', 'keep = "all", taps = array<i64: 1>', "negative"),
    ('{keep = "all"} : (!scan.chain, index)', '{keep = "most"} : (!scan.chain, index)', "keep must be"),
    ("@step(tensor<?xf32>, tensor<?xf32>,", "@step(tensor<?xf64>, tensor<?xf32>,", "body @step takes"),
    ("-> (tensor<f32>, tensor<?xf32>, i1, i32)", "-> (tensor<f32>, tensor<?xf32>, i32)", "must return"),
    ("{index = 1 : i64}", "{index = 5 : i64}", "index 5"),
    ("body = @step", "body = @missing", "not a function"),
])
def test_verifier_rejects_inconsistent_chains(ctx, old, new, message):
    module = ir.Module.parse(PROGRAM.replace(old, new))
    with pytest.raises(ScanVerifyError, match=message):
        verify(module.operation)


def test_verifier_rejects_misordered_chain(ctx):
    text = PROGRAM.replace(
        '%l1 = "scan.sequence"(%l0, %u) {taps = array<i64: -1, 0>} : (!scan.chain, tensor<?x?xf32>) -> !scan.chain\n  %l2 = "scan.state"(%l1, %s)',
        '%l1 = "scan.state"(%l0, %s) {keep = "all", taps = array<i64: -1>} : (!scan.chain, tensor<f32>) -> !scan.chain\n  %l2 = "scan.sequence"(%l1, %u)').replace(
        '%l2 = "scan.sequence"(%l1, %u) {keep = "all", taps = array<i64: -1>} : (!scan.chain, tensor<f32>) -> !scan.chain',
        '%l2 = "scan.sequence"(%l1, %u) {taps = array<i64: -1, 0>} : (!scan.chain, tensor<?x?xf32>) -> !scan.chain')
    module = ir.Module.parse(text)
    with pytest.raises(ScanVerifyError, match="chain order"):
        verify(module.operation)
