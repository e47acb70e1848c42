"""The KV pool: every sequence's slot cache lives in rows of one set of tensors allocated once.

Per layer, K and V are [rows, kv_heads, capacity, head_dim] and a row holds one sequence of at most `capacity`
slots, so the decode step of any mix of policies and capacities reads the rows [0, b) of one tensor per layer in one
batched attention call, and a CUDA graph captured for b rows replays whatever sequences sit there. A sequence with
more slots than a row takes k consecutive rows: per layer they are one contiguous block, viewed as
[kv_heads, k * capacity, head_dim] (it decodes outside the batched call). The slot mask `valid` is [rows, capacity]
and follows the same layout. Nothing is allocated after construction: admission hands out rows, release returns
them, and `compact` moves single-row sequences down so that they occupy rows [0, n) (the decode batch).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch


class SlotPool:
    """Rows of slot storage for every layer; storage, when given, is a pair of flat tensors to view (K, V)."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int, rows: int, capacity: int, dtype: torch.dtype,
                 device: torch.device, storage: Optional[Tuple[torch.Tensor, torch.Tensor]] = None) -> None:
        if rows < 1 or capacity < 1:
            raise ValueError(f"pool of {rows} rows x {capacity} slots: both must be positive")
        self.layers, self.kv_heads, self.head_dim = layers, kv_heads, head_dim
        self.rows, self.capacity = rows, capacity
        self.dtype, self.device = dtype, device
        self.row_numel = kv_heads * capacity * head_dim
        n = layers * rows * self.row_numel
        if storage is None:
            k = torch.zeros(n, dtype=dtype, device=device)
            v = torch.zeros(n, dtype=dtype, device=device)
        else:
            k, v = storage
            if k.numel() < n or v.numel() < n or k.dtype != dtype or v.dtype != dtype:
                raise ValueError(f"pool storage of {k.numel()} {k.dtype} elements, want {n} {dtype}")
        self.k = k[:n].view(layers, rows, kv_heads, capacity, head_dim)
        self.v = v[:n].view(layers, rows, kv_heads, capacity, head_dim)
        self.valid = torch.zeros(rows, capacity, dtype=torch.bool, device=device)
        self.heads = torch.arange(kv_heads, device=device)
        # owner[r] is the sequence holding row r (None: free); a k-row sequence is the owner of all k.
        self.owner: List[Optional[object]] = [None] * rows

    @property
    def slot_bytes(self) -> int:
        """K and V bytes of one slot over all layers (compress.KVBytes of capacity 1)."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.k.element_size()

    @property
    def nbytes(self) -> int:
        """The bytes of K and V."""
        return self.rows * self.capacity * self.slot_bytes

    def rows_for(self, capacity: int) -> int:
        """How many consecutive rows a sequence of `capacity` slots takes."""
        return max(1, -(-capacity // self.capacity))

    def free_rows(self) -> int:
        """The number of free rows."""
        return sum(o is None for o in self.owner)

    def alloc(self, owner: object, capacity: int, high: bool = False) -> Optional[int]:
        """Takes rows for a sequence: a single row as low as possible, k rows (or one row when high: a sequence
        that does not decode in the static step) as high as possible, so that the static step's single-row
        sequences stay packed at the bottom; returns the first row, or None when none fit now."""
        k = self.rows_for(capacity)
        if k > self.rows:
            return None
        starts = range(self.rows - k, -1, -1) if k > 1 or high else range(self.rows)
        for r in starts:
            if all(self.owner[i] is None for i in range(r, r + k)):
                for i in range(r, r + k):
                    self.owner[i] = owner
                self.valid[r:r + k].zero_()
                return r
        return None

    def release(self, row: int, k: int) -> None:
        """Gives k rows starting at row back, their slot masks cleared (a free row that pads a decode batch then
        has one valid slot, the padding token's, so that decode_attn=triton reads one slot of it)."""
        for i in range(row, row + k):
            self.owner[i] = None
        self.valid[row:row + k].zero_()

    def views(self, row: int, k: int, capacity: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """K and V [layers, kv_heads, capacity, head_dim] and valid [capacity] of the sequence at rows
        [row, row + k): views into the pool, so that writes through them land in it."""
        a, b = row * self.row_numel, (row + k) * self.row_numel
        shape = (self.layers, self.kv_heads, k * self.capacity, self.head_dim)
        kk = self.k.view(self.layers, -1)[:, a:b].view(shape)[:, :, :capacity]
        vv = self.v.view(self.layers, -1)[:, a:b].view(shape)[:, :, :capacity]
        valid = self.valid.view(-1)[row * self.capacity:row * self.capacity + capacity]
        return kk, vv, valid

    def move(self, src: int, dst: int) -> None:
        """Copies single row src (every layer, and its mask) to the free row dst and hands dst to src's owner."""
        if self.owner[dst] is not None or self.owner[src] is None:
            raise RuntimeError(f"pool: cannot move row {src} to row {dst}")
        self.k[:, dst].copy_(self.k[:, src])
        self.v[:, dst].copy_(self.v[:, src])
        self.valid[dst].copy_(self.valid[src])
        self.valid[src].zero_()
        self.owner[dst], self.owner[src] = self.owner[src], None


def pool_geometry(budget_bytes: int, slot_bytes: int, rows: int, max_positions: int) -> Tuple[int, int]:
    """Rows and slots per row for a pool of at most budget_bytes: `rows` rows (fewer when the budget cannot give
    each 256 slots) of the most slots that fit, a multiple of 256, at most max_positions rounded up to 256 (no
    limit when 0). Raises ValueError when not even one row of 256 slots fits."""
    unit = 256
    cap_limit = -(-max_positions // unit) * unit if max_positions > 0 else 1 << 30
    rows = max(1, rows)
    per_row = budget_bytes // (rows * slot_bytes)
    while rows > 1 and per_row < unit:
        rows -= 1
        per_row = budget_bytes // (rows * slot_bytes)
    capacity = min(cap_limit, per_row // unit * unit)
    if capacity < unit:
        raise ValueError(f"a KV pool of {budget_bytes / 2**30:.2f} GiB holds less than {unit} slots "
                         f"({slot_bytes} bytes a slot)")
    return rows, capacity
