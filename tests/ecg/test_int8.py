"""evospikenet.quant.int8: the INT8 grids the integer core and the Loihi 2 export share."""

import torch

from evospikenet.quant.int8 import int8_pow2, int8_symmetric, to_int8


def test_to_int8_rounds_to_the_grid_and_saturates():
    v = torch.tensor([0.24, 0.26, -0.26, 100.0, -100.0])
    assert to_int8(v, 0.5).tolist() == [0.0, 1.0, -1.0, 127.0, -127.0]
    assert to_int8(v, 0.5).dtype == torch.float64


def test_symmetric_scale_puts_the_largest_weight_at_127():
    w = torch.tensor([[0.5, -2.54], [1.0, 0.0]], dtype=torch.float64)
    q, s = int8_symmetric(w)
    assert s == 2.54 / 127 and q.abs().max() == 127 and q[0, 1] == -127
    assert (q * s - w).abs().max() <= s / 2 + 1e-12


def test_pow2_exponent_is_the_smallest_that_fits():
    for top in (0.3, 1.0, 127.0, 128.0, 1000.0):
        w = torch.tensor([top, -top / 3])
        q, e = int8_pow2(w)
        assert 63.5 < float(q.abs().max()) <= 127  # one more halving would overflow INT8
        assert top / 2.0**e <= 127 < top / 2.0 ** (e - 1)
        assert (q * 2.0**e - w).abs().max() <= 2.0**e / 2
