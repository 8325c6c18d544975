"""Write the ONNX backend node tests of the installed onnx wheel to a folder.

onnx >= 1.23 wheels no longer ship `onnx/backend/test/data/node` on disk, but they
still carry the case definitions. This script turns those definitions into the
usual layout (`<out>/<test>/model.onnx`, `test_data_set_N/{input,output}_K.pb`)
using onnx's own `generate_data`. Nothing is downloaded; the output is
byte-identical across runs for one onnx version.

usage: python materialize.py OUT_DIR
"""

from __future__ import annotations

import argparse
import os
import sys

import onnx
import onnx.backend.test.case.model as model_test
from onnx.backend.test import cmd_tools
from onnx.backend.test.loader import load_node_model_tests


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    out = sys.argv[1]
    cases = load_node_model_tests()
    # generate_data() collects the cases through model_test.collect_testcases;
    # point that at the node cases only.
    model_test.collect_testcases = lambda: cases
    tmp = out + ".tmp"
    cmd_tools.generate_data(argparse.Namespace(output=tmp))
    stamp = os.path.join(tmp, "node", "ONNX_VERSION")
    with open(stamp, "w") as f:
        f.write(onnx.__version__ + "\n")
    if os.path.exists(out):
        import shutil

        shutil.rmtree(out)
    os.rename(os.path.join(tmp, "node"), out)
    os.rmdir(tmp)
    print(f"materialized {len(cases)} node tests (onnx {onnx.__version__}) in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
