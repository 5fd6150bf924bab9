"""Instrument rounding inside kernels: the engine's one rule, shared with strategy kernels and
mirrored by :class:`tradetower.domain.Instrument`."""

from tradetower.kernel_tools import floor_qty_nb, round_price_nb

__all__ = ["floor_qty_nb", "round_price_nb"]
