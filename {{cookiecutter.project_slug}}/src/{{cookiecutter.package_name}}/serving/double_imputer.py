"""scikit-learn's SimpleImputer in double precision, for skl2onnx (training only).

skl2onnx converts a SimpleImputer to ONNX ML's ``Imputer``, which ONNX Runtime implements for
float32 only ("Could not find an implementation for Imputer(1)") and whose fill values are float32
attributes. A double-precision export of a pipeline that imputes therefore did not load, and a
float32 one misses 1e-6 on regression targets in the hundreds (issue 13). The same step in standard
operators, ``Where(IsNaN(X), fill, X)`` with the fitted statistics as a float64 tensor, runs in
double and answers as scikit-learn does (measured: 5.7e-14 on the sample's regression pipeline).

Anything else (another missing-value marker, ``add_indicator``, a column with no statistic, float32
input) goes to skl2onnx's own converter unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def convert(scope: Any, operator: Any, container: Any) -> None:
    """A skl2onnx converter (``custom_conversion_functions={SimpleImputer: convert}``)."""
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer
    from skl2onnx.proto import onnx_proto

    imputer = operator.raw_operator
    statistics = np.asarray(getattr(imputer, "statistics_", []), dtype=np.float64)
    marker = imputer.missing_values
    if not (
        isinstance(operator.inputs[0].type, DoubleTensorType)
        and len(operator.inputs) == 1
        and isinstance(marker, float)
        and np.isnan(marker)
        and not imputer.add_indicator
        and statistics.size
        and np.isfinite(statistics).all()
    ):
        convert_sklearn_imputer(scope, operator, container)
        return
    source, target = operator.inputs[0].full_name, operator.outputs[0].full_name
    fill = scope.get_unique_variable_name("fill")
    container.add_initializer(fill, onnx_proto.TensorProto.DOUBLE, [statistics.size], statistics.tolist())
    missing = scope.get_unique_variable_name("missing")
    container.add_node("IsNaN", [source], [missing], name=scope.get_unique_operator_name("IsNaN"))
    container.add_node(
        "Where", [missing, fill, source], [target], name=scope.get_unique_operator_name("Where")
    )
