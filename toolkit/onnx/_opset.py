"""The ONNX opset of an export (``export(..., target_opset=N)``).

Every graph is built at :data:`toolkit._export_spec.OPSET`; an export at another opset converts
each finished graph with onnx's version converter, whose adapters rewrite the operators whose
signature moved between the two (a Reduce's axes between attribute and input, Split's sizes,
...). A converted graph is checked like any other, and refused when the converter left it at
another opset. How low a graph can go depends on its operators, so each spec states its lowest
(``InferenceSpec.min_opset``: what its family is tested at) and a lower target is refused,
naming the estimator and that opset, before any graph is made. A Pipeline's scikit-learn steps
are converted by skl2onnx at the target opset directly.
"""

from __future__ import annotations

from numbers import Integral

import onnx
import onnx.version_converter
from onnx import helper

from toolkit._export_spec import OPSET, InferenceSpec

# The newest opset every family is tested at: onnx 1.23's newest, each family exported at it and
# validated under onnxruntime 1.32 (a Pipeline's skl2onnx steps written at skl2onnx's newest and
# converted up). With an older onnx, its own newest; a higher target is refused.
TESTED_NEWEST_OPSET = 28
NEWEST_OPSET = min(TESTED_NEWEST_OPSET, onnx.defs.onnx_opset_version())
# The ai.onnx.ml opset of a Pipeline's scikit-learn steps at most (what skl2onnx's converters
# were written for); below opset 16 the one released with the target opset.
ML_OPSET = 3


def default_domain_opset(model: onnx.ModelProto) -> int:
    """The version of the default (``ai.onnx``) domain a graph imports."""
    return next(entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx"))


def one_import_per_domain(model: onnx.ModelProto) -> None:
    """List each domain once in ``model``'s opset imports (at its highest version):
    ``onnx.compose.merge_models`` lists a domain once per graph it joins, and the version
    converter would convert only the first."""
    versions: dict[str, int] = {}
    for entry in model.opset_import:
        domain = "" if entry.domain == "ai.onnx" else entry.domain
        versions[domain] = max(versions.get(domain, 0), entry.version)
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(domain, version) for domain, version in versions.items())


def ml_opset(opset: int) -> int:
    """The ai.onnx.ml opset that goes with ``opset``: the one onnx released beside it, at most
    :data:`ML_OPSET`."""
    released = [ml for _, _, default, ml, *_ in helper.VERSION_TABLE if default <= opset]
    return min(max(released), ML_OPSET)


def lowest_opset(specs: list[InferenceSpec]) -> int:
    """The lowest opset every one of ``specs`` can be exported at (a spec built from parts states
    it for the whole graph, which is what is converted)."""
    return max(spec.min_opset for spec in specs)


def check_target_opset(target_opset, lowest: int, owner: str) -> int:
    """The opset to export ``owner`` at: ``target_opset`` (None: :data:`OPSET`) once it is an
    integer between ``lowest`` and :data:`NEWEST_OPSET`; a ValueError naming the limit otherwise."""
    if target_opset is None:
        return max(OPSET, lowest)
    if isinstance(target_opset, bool) or not isinstance(target_opset, Integral):
        raise TypeError(f"target_opset must be an integer opset version, got {target_opset!r}")
    target_opset = int(target_opset)
    if target_opset < lowest:
        raise ValueError(f"{owner} exports at opset {lowest} at the lowest; target_opset={target_opset} is below it")
    if target_opset > NEWEST_OPSET:
        raise ValueError(
            f"target_opset={target_opset} is above opset {NEWEST_OPSET}, the newest that this onnx "
            f"({onnx.__version__}) writes and toolkit's exports are tested at"
        )
    return target_opset


def subgraphs(graph: onnx.GraphProto):
    """The bodies of a graph's Loop / Scan / If nodes (one level down)."""
    for node in graph.node:
        for attribute in node.attribute:
            yield from [attribute.g] if attribute.HasField("g") else attribute.graphs


def graph_nodes(graph: onnx.GraphProto):
    """Every node of a graph, those of its Loop / Scan / If bodies included."""
    yield from graph.node
    for body in subgraphs(graph):
        yield from graph_nodes(body)


def _without_reduce_default(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` without the Reduce operators' ``noop_with_empty_axes=0``: opset 18 added
    the attribute (its default, 0, is what the earlier versions do), and onnx's adapters that move
    a Reduce's axes back to an attribute keep it, which the earlier versions reject."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for node in graph_nodes(model.graph):
        if node.op_type.startswith("Reduce"):
            kept = [a for a in node.attribute if not (a.name == "noop_with_empty_axes" and a.i == 0)]
            del node.attribute[:]
            node.attribute.extend(kept)
    return model


def _converted(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """``model`` converted to ``opset`` and checked; a ValueError with the converter's or the
    checker's reason when it cannot be."""
    try:
        source = _without_reduce_default(model) if opset < 18 else model
        converted = onnx.version_converter.convert_version(source, opset)
        onnx.checker.check_model(converted, full_check=True)
    except Exception as error:  # the converter and the checker raise several types
        raise ValueError(str(error).strip().splitlines()[-1]) from None
    reached = default_domain_opset(converted)
    if reached != opset:
        raise ValueError(f"the converter left it at opset {reached}")
    return converted


def at_opset(model: onnx.ModelProto, opset: int, what: str) -> onnx.ModelProto:
    """``model`` converted to ``opset`` (itself when it is there already). When it cannot be
    (an operator with no earlier version, as LayerNormalization before 17, or none that onnx
    can convert to), a ValueError names ``what``, the lowest opset it does convert to, and why."""
    one_import_per_domain(model)
    built = default_domain_opset(model)
    if built == opset:
        return model
    try:
        return _converted(model, opset)
    except ValueError as error:
        reason = error
    if opset > built:
        raise ValueError(f"{what} could not be converted to opset {opset} ({reason})")
    lowest = next((k for k in range(opset + 1, built) if _converts(model, k)), built)
    raise ValueError(
        f"{what} exports at opset {lowest} at the lowest with these settings; target_opset={opset} is below it "
        f"({reason})"
    )


def _converts(model: onnx.ModelProto, opset: int) -> bool:
    try:
        _converted(model, opset)
    except ValueError:
        return False
    return True
