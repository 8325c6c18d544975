#!/usr/bin/env python3
"""Regenerates the malformed-input corpus in this folder, deterministically.

Run with the project's venv (it needs onnx and numpy):

    .venv/bin/python tests/malformed/make_corpus.py

Each file is small and is one class of malformed input that
tests/robustness.rs feeds to the frontend (and to `smelt inspect`), expecting
a specific error kind and a message naming the offending tensor, node or
location. Files named `ok_*` are well-formed fixtures the tests need next to
them (models and weights to bind). Symbolic and hard links cannot live in git,
so the tests create those in a temporary folder from `external_link.onnx`.
"""

import json
import os
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

HERE = os.path.dirname(os.path.abspath(__file__))
F32 = TensorProto.FLOAT


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def tensor(name, dims, raw=None, dtype=F32, external=None):
    """A TensorProto built field by field, so that it can be inconsistent."""
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(dims)
    if raw is not None:
        t.raw_data = raw
    if external is not None:
        t.data_location = TensorProto.EXTERNAL
        for k, v in external.items():
            e = t.external_data.add()
            e.key, e.value = k, str(v)
    return t


def out(name):
    return helper.make_tensor_value_info(name, F32, None)


def inp(name, dims, dtype=F32):
    return helper.make_tensor_value_info(name, dtype, dims)


def model(nodes, inits=(), inputs=(), outputs=("y",), opset=17):
    g = helper.make_graph(list(nodes), "g", list(inputs), [out(o) for o in outputs], list(inits))
    m = helper.make_model(g, producer_name="smelt-corpus", opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m.SerializeToString()


def f32(values):
    return np.asarray(values, dtype="<f4").tobytes()


def relu_of(t):
    """y = Relu(w) with initializer `t` named w: no run-time inputs needed."""
    return model([helper.make_node("Relu", ["w"], ["y"], name="relu")], [t])


def field(number, payload):
    """A length-delimited protobuf field (wire type 2), encoded by hand."""
    key, n, varint = (number << 3) | 2, len(payload), b""
    varint = bytes([key])
    while True:
        byte, n = n & 0x7F, n >> 7
        varint += bytes([byte | (0x80 if n else 0)])
        if not n:
            return varint + payload


def nested_if(depth):
    """`depth` Ifs nested through their then_branch, all with constant true
    conditions. Python's protobuf refuses to build messages nested this deep
    (its own recursion limit), so each level is serialized separately and
    embedded as bytes: a message's fields may come in any order on the wire."""
    fields = {
        "graph.node": GraphProto_node,
        "node.attribute": NodeProto_attribute,
        "attr.g": AttributeProto_g,
        "model.graph": ModelProto_graph,
    }

    def level(k):
        if k == depth:
            g = helper.make_graph([helper.make_node("Relu", ["w"], [f"y{k}"], name=f"relu{k}")], f"g{k}", [], [out(f"y{k}")])
            return g.SerializeToString()
        other = helper.make_graph(
            [helper.make_node("Relu", ["w"], [f"e{k}"], name=f"else{k}")], f"else{k}", [], [out(f"e{k}")]
        )
        node = helper.make_node("If", ["cond"], [f"y{k}"], name=f"if{k}", else_branch=other)
        then = helper.make_attribute("then_branch", helper.make_graph([], "placeholder", [], []))
        then.ClearField("g")
        attr = then.SerializeToString() + field(fields["attr.g"], level(k + 1))
        node_bytes = node.SerializeToString() + field(fields["node.attribute"], attr)
        g = helper.make_graph([], f"g{k}", [], [out(f"y{k}")])
        if k == 0:
            g.initializer.extend([tensor("w", [2], f32([1, -1])), helper.make_tensor("cond", TensorProto.BOOL, [], [True])])
        return g.SerializeToString() + field(fields["graph.node"], node_bytes)

    m = helper.make_model(helper.make_graph([], "g", [], []), producer_name="smelt-corpus", opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    m.ClearField("graph")
    return m.SerializeToString() + field(fields["model.graph"], level(0))


GraphProto_node = onnx.GraphProto.DESCRIPTOR.fields_by_name["node"].number
NodeProto_attribute = onnx.NodeProto.DESCRIPTOR.fields_by_name["attribute"].number
AttributeProto_g = onnx.AttributeProto.DESCRIPTOR.fields_by_name["g"].number
ModelProto_graph = onnx.ModelProto.DESCRIPTOR.fields_by_name["graph"].number


def safetensors(entries, data, metadata=None):
    """A safetensors file from (name, dtype, shape, [begin, end]) entries and raw data."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, offsets in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": offsets}
    text = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(text)) + text + data


def raw_safetensors(header_text, data, length=None):
    text = header_text.encode() if isinstance(header_text, str) else header_text
    return struct.pack("<Q", len(text) if length is None else length) + text + data


def main():
    # --- protobuf-level damage -------------------------------------------
    good = relu_of(tensor("w", [4], f32([1, -2, 3, -4])))
    write("truncated.onnx", good[: len(good) // 2])
    write("empty.onnx", b"")

    # --- tensor sizes ------------------------------------------------------
    write("dims_overflow.onnx", relu_of(tensor("w", [2**40, 2**40, 2**40], f32([1]))))
    write("raw_data_short.onnx", relu_of(tensor("w", [4], f32([1, 2]))))
    write("raw_data_long.onnx", relu_of(tensor("w", [2], f32([1, 2, 3, 4]))))
    write("negative_dim.onnx", relu_of(tensor("w", [-3, 2], f32([1] * 6))))
    write("string_initializer.onnx", relu_of(helper.make_tensor("w", TensorProto.STRING, [1], [b"x"])))

    # --- graph structure ---------------------------------------------------
    w = tensor("w", [2], f32([1, 2]))
    write(
        "cycle.onnx",
        model(
            [
                helper.make_node("Add", ["w", "b"], ["a"], name="first"),
                helper.make_node("Add", ["a", "w"], ["b"], name="second"),
                helper.make_node("Relu", ["b"], ["y"], name="relu"),
            ],
            [w],
        ),
    )
    write(
        "undefined_value.onnx",
        model([helper.make_node("Add", ["w", "ghost"], ["y"], name="adder")], [w]),
    )

    # --- amplification ---------------------------------------------------------
    # 64 broadcasting Adds of two 8 KiB constants: 16 MiB each once folded, a
    # GiB in all from a 16 KiB file unless folding has a total budget (found
    # by review while fuzzing the importer).
    col = tensor("col", [2048, 1], f32(np.zeros(2048)))
    row = tensor("row", [1, 2048], f32(np.zeros(2048)))
    adds = [helper.make_node("Add", ["col", "row"], [f"y{i}"], name=f"add{i}") for i in range(64)]
    write("fold_bomb.onnx", model(adds, [col, row], outputs=[f"y{i}" for i in range(64)]))

    # A 250-byte file asking to fold a convolution of ~10^12 MACs on constants
    # it builds with ConstantOfShape: without a MAC budget on folding, the
    # reference convolution's im2col buffer alone is 121 GB (found by review
    # while fuzzing the importer).
    shape = lambda name, dims: tensor(name, [len(dims)], np.asarray(dims, "<i8").tobytes(), TensorProto.INT64)
    one = helper.make_tensor("one", F32, [1], [1.0])
    write(
        "conv_bomb.onnx",
        model(
            [
                helper.make_node("ConstantOfShape", ["xs"], ["x"], value=one, name="make_x"),
                helper.make_node("ConstantOfShape", ["ws"], ["w"], value=one, name="make_w"),
                helper.make_node("Conv", ["x", "w"], ["y"], name="conv"),
            ],
            [shape("xs", [1, 64, 512, 512]), shape("ws", [64, 64, 32, 32])],
        ),
    )

    # --- external data -----------------------------------------------------
    def ext(location, **kw):
        return relu_of(tensor("w", [4], external={"location": location, **kw}))

    write("external_dotdot.onnx", ext("../outside.bin"))
    write("external_a_dotdot.onnx", ext("a/../../outside.bin"))
    write("external_absolute.onnx", ext("/etc/passwd"))
    write("external_drive.onnx", ext("C:\\outside.bin"))
    write("external_link.onnx", ext("link.bin"))
    write("external_out_of_range.onnx", ext("external_out_of_range.bin", offset=8))
    write("external_out_of_range.bin", f32([1, 2, 3, 4]))

    # --- limits --------------------------------------------------------------
    write("nested_if_33.onnx", nested_if(33))
    write("ok_nested_if_32.onnx", nested_if(32))
    # Deeper than the protobuf parser follows at the default max-depth.
    write("nested_if_40.onnx", nested_if(40))
    write("rank_9.onnx", relu_of(tensor("w", [1] * 9, f32([1]))))
    write(
        "input_rank_9.onnx",
        model([helper.make_node("Relu", ["x"], ["y"], name="relu")], inputs=[inp("x", [1] * 9)]),
    )
    write("huge_tensor.onnx", relu_of(tensor("w", [2**32, 4])))  # 64 GiB of f32, no data
    write("huge_external.onnx", relu_of(tensor("w", [2**32, 4], external={"location": "nowhere.bin"})))
    write(
        "huge_input.onnx",
        model([helper.make_node("Relu", ["x"], ["y"], name="relu")], inputs=[inp("x", [2**20, 2**20, 1024])]),
    )
    chain = [helper.make_node("Relu", ["w" if i == 0 else f"r{i}"], [f"r{i + 1}"], name=f"relu{i}") for i in range(20)]
    chain.append(helper.make_node("Relu", ["r20"], ["y"], name="last"))
    write("ok_21_nodes.onnx", model(chain, [tensor("w", [2], f32([1, -1]))]))
    kib = [tensor(f"w{i}", [256], f32(np.arange(256) + i)) for i in range(3)]
    write(
        "ok_3_kib_weights.onnx",
        model(
            [
                helper.make_node("Add", ["w0", "w1"], ["s"], name="add0"),
                helper.make_node("Add", ["s", "w2"], ["y"], name="add1"),
            ],
            kib,
        ),
    )

    # --- safetensors ---------------------------------------------------------
    write(
        "st_overlap.safetensors",
        safetensors([("a", "F32", [2], [0, 8]), ("b", "F32", [2], [4, 12])], bytes(12)),
    )
    write(
        "st_gap.safetensors",
        safetensors([("a", "F32", [1], [0, 4]), ("b", "F32", [1], [8, 12])], bytes(12)),
    )
    write(
        "st_out_of_range.safetensors",
        safetensors([("a", "F32", [1], [0, 4]), ("b", "F32", [4], [4, 20])], bytes(8)),
    )
    write("st_huge_header.safetensors", raw_safetensors("{}", b"", length=2**60))
    write("st_header_past_eof.safetensors", raw_safetensors("{}", b"", length=1000))
    write("st_bad_utf8.safetensors", raw_safetensors(b'{"\xff":1}', b""))
    write("st_bad_json.safetensors", raw_safetensors('{"a":{"dtype":"F32",', b""))
    write("st_trailing.safetensors", safetensors([("a", "F32", [1], [0, 4])], bytes(8)))
    write("st_size_mismatch.safetensors", safetensors([("a", "F32", [3], [0, 8])], bytes(8)))
    write("st_shape_overflow.safetensors", safetensors([("a", "F32", [2**32, 2**32, 2**32], [0, 4])], bytes(4)))
    write("st_negative_dim.safetensors", safetensors([("a", "F32", [-1], [0, 4])], bytes(4)))
    write("st_rank_9.safetensors", safetensors([("a", "F32", [1] * 9, [0, 4])], bytes(4)))
    write("st_unknown_dtype.safetensors", safetensors([("a", "Q4_K", [2], [0, 2])], bytes(2)))
    write(
        "st_duplicate.safetensors",
        raw_safetensors(
            '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}',
            bytes(2),
        ),
    )
    write("st_empty.safetensors", b"")

    # --- binding weights ---------------------------------------------------
    # ok_weights.onnx: y = x * w + b where w's external file does not exist and
    # b has no data at all; ok_weights.safetensors supplies both.
    graph = [
        helper.make_node("Mul", ["x", "w"], ["xw"], name="mul"),
        helper.make_node("Add", ["xw", "b"], ["y"], name="add"),
    ]
    write(
        "ok_weights.onnx",
        model(graph, [tensor("w", [2, 3], external={"location": "absent.bin"}), tensor("b", [3])], [inp("x", [2, 3])]),
    )
    write(
        "ok_bind.onnx",
        model(graph, [tensor("w", [2, 3], f32([0] * 6)), tensor("b", [3], f32([0] * 3))], [inp("x", [2, 3])]),
    )
    w_bytes = f32(np.arange(6))
    b_bytes = f32([10, 20, 30])
    write(
        "ok_weights.safetensors",
        safetensors(
            [("w", "F32", [2, 3], [0, 24]), ("b", "F32", [3], [24, 36])],
            w_bytes + b_bytes,
            metadata={"format": "pt"},
        ),
    )
    # --- opsets, outputs, defaults ---------------------------------------------
    relu = helper.make_node("Relu", ["x"], ["y"], name="relu")
    write("opset_99.onnx", model([relu], inputs=[inp("x", [2])], opset=99))
    gelu = helper.make_node("Gelu", ["x"], ["y"], name="gelu")  # ONNX added Gelu in opset 20
    write("opset_1_gelu.onnx", model([gelu], inputs=[inp("x", [2])], opset=1))
    write("no_outputs.onnx", model([], outputs=()))
    # An input whose initializer of the same name is its default value.
    add = helper.make_node("Add", ["x", "w"], ["y"], name="add")
    default = model([add], [tensor("w", [2], f32([10, 20]))], inputs=[inp("x", [2]), inp("w", [2])])
    write("ok_default_input.onnx", default)
    ir3 = onnx.load_from_string(default)
    ir3.ir_version = 3
    write("ir3_initializer_input.onnx", ir3.SerializeToString())
    # Every way a file can fail to fit ok_weights.onnx, all in one file.
    write(
        "st_mismatch.safetensors",
        safetensors(
            [
                ("w", "F16", [2, 3], [0, 12]),
                ("b", "F32", [4], [12, 28]),
                ("ghost", "U8", [1], [28, 29]),
                ("q", "F8_E4M3", [2], [29, 31]),
            ],
            bytes(31),
        ),
    )


if __name__ == "__main__":
    if onnx.__version__.split(".")[0] != "1":
        sys.exit(f"unexpected onnx version {onnx.__version__}")
    main()
