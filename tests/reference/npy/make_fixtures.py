#!/usr/bin/python3
"""Small .npy files written by numpy itself, for the Npy codec tests.

Run with Debian's numpy:  /usr/bin/python3 make_fixtures.py   (writes next to this script)
Values are k/8 so float32 and float64 hold them exactly.
"""
import os

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
values = np.arange(6, dtype=np.float64).reshape(2, 3) / 8 - 0.25   # [[-0.25, -0.125, 0], [0.125, 0.25, 0.375]]


def save(name, array):
    np.save(os.path.join(here, name), array)


save("f8_2x3.npy", values)
save("f4_2x3.npy", values.astype(np.float32))
save("f4_third.npy", np.array([1 / 3, -2 / 3], dtype=np.float32))   # not exact: read as the float32 value
save("f8_vector.npy", values.ravel())
save("f8_scalar.npy", np.float64(2.5))
save("f8_fortran.npy", np.asfortranarray(values))
save("i8_2x3.npy", np.arange(6, dtype=np.int64).reshape(2, 3))
save("i4_labels.npy", np.array([3, 0, 9, 1], dtype=np.int32))
save("u1_labels.npy", np.array([3, 0, 9, 255], dtype=np.uint8))
save("i8_beyond_2p53.npy", np.array([7, -(2 ** 53), 2 ** 53 + 1], dtype=np.int64))
save("f2_2x3.npy", values.astype(np.float16))
save("f8_bigendian.npy", values.astype(">f8"))
with open(os.path.join(here, "f8_v2.npy"), "wb") as f:
    np.lib.format.write_array(f, values, version=(2, 0))
