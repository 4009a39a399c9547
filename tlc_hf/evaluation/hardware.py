"""How close a CPU runtime gets to the hardware: multiply-adds counted from an ONNX graph, and this machine's
int8 peak measured through the same runtime (a large int8 matrix multiply), so a latency becomes a fraction
of what the CPU can do rather than a guess from its datasheet."""

from __future__ import annotations

import statistics
import time

import numpy as np

MATMUL_OPS = ("MatMul", "MatMulInteger", "Gemm", "QLinearMatMul", "DynamicQuantizeMatMul", "MatMulIntegerToFloat")


def graph_multiply_adds(onnx_path: str, batch_size: int = 8, seq_len: int = 128) -> dict:
    """Multiply-adds of one forward pass of an exported graph at `batch_size` x `seq_len`, from its matrix
    multiplies (shapes by ONNX shape inference with the inputs fixed): `total`, and `int8` (the integer ones).

    Example:
        ```python
        graph_multiply_adds("out/int8/model.onnx")  # {"total": 5.2e9, "int8": 4.9e9, ...}
        ```
    """
    import onnx

    model = onnx.load(onnx_path)
    for value in model.graph.input:
        dims = value.type.tensor_type.shape.dim
        if len(dims) >= 2:
            dims[0].dim_value, dims[1].dim_value = batch_size, seq_len
    del model.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    shapes = {}
    for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]:
        shapes[value.name] = [
            d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim
        ]
    for initializer in inferred.graph.initializer:
        shapes[initializer.name] = list(initializer.dims)
    total = integer = 0
    unknown = []
    for node in inferred.graph.node:
        if node.op_type not in MATMUL_OPS:
            continue
        a = shapes.get(node.input[0])
        b = shapes.get(node.input[3] if node.op_type == "QLinearMatMul" else node.input[1])
        if not a or not b or None in a or None in b:
            unknown.append(node.name)
            continue
        if node.op_type == "Gemm":
            transposed = any(att.name == "transB" and att.i for att in node.attribute)
            n = b[0] if transposed else b[-1]
        else:
            n = b[-1]
        count = int(np.prod(a)) * n  # every output of [..., M, N] is a K-long dot product: prod(A) * N
        total += count
        if node.op_type in ("MatMulInteger", "QLinearMatMul", "DynamicQuantizeMatMul", "MatMulIntegerToFloat"):
            integer += count
    return {"total": total, "int8": integer, "unshaped_nodes": unknown, "batch_size": batch_size, "seq_len": seq_len}


def onnxruntime_int8_peak(m: int = 1024, k: int = 1024, n: int = 1024, threads: int = 2, repeats: int = 20) -> dict:
    """This CPU's int8 multiply-add rate through ONNX Runtime: `MatMulInteger` of a uint8 [m, k] by an int8
    [k, n] constant (the kernel dynamic int8 runs), best of `repeats` calls after warm-up; GMAC/s."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.integers(-127, 127, (k, n), dtype=np.int8), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["Y"])],
        "int8_peak",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feed = {"A": rng.integers(0, 255, (m, k), dtype=np.uint8)}
    return _rate(lambda: session.run(None, feed), m * k * n, repeats, "onnxruntime MatMulInteger u8s8", (m, k, n))


def openvino_int8_peak(m: int = 1024, k: int = 1024, n: int = 1024, threads: int = 2, repeats: int = 20) -> dict:
    """The same through OpenVINO: an fp32 input quantized to uint8 by a FakeQuantize, times an int8-quantized
    constant (how OpenVINO expresses int8; its CPU plugin runs a u8s8 GEMM); GMAC/s."""
    import openvino as ov
    from openvino import opset13 as ops

    rng = np.random.default_rng(0)
    x = ops.parameter([m, k], np.float32, name="A")
    low, high = ops.constant(np.float32(0)), ops.constant(np.float32(2.55))
    xq = ops.fake_quantize(x, low, high, low, high, 256)
    w = ops.constant(rng.integers(-127, 127, (k, n)).astype(np.int8))
    w = ops.multiply(ops.convert(w, np.float32), ops.constant(np.float32(0.01)))
    y = ops.matmul(xq, w, False, False)
    model = ov.Model([y], [x], "int8_peak")
    compiled = ov.Core().compile_model(
        model,
        "CPU",
        {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"},
    )
    request = compiled.create_infer_request()
    feed = {0: rng.random((m, k), dtype=np.float32) * 2.55}
    return _rate(lambda: request.infer(feed), m * k * n, repeats, "openvino FakeQuantize u8 x i8 MatMul", (m, k, n))


def _rate(call, multiply_adds: int, repeats: int, kernel: str, shape) -> dict:
    for _ in range(3):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    best, median = min(times), statistics.median(times)
    return {
        "kernel": kernel,
        "shape": list(shape),
        "gmacs_best": multiply_adds / best / 1e9,
        "gmacs_median": multiply_adds / median / 1e9,
    }
