"""The Triton kernels of decode_attn=triton (triton_decode.py launches them; splitk.py has their arithmetic in
plain torch). Imported only where Triton is installed. The running max starts at -1e30 (splitk.M_INIT), finite, so
that exp2(m - m_new) is never nan.
"""
import triton
import triton.language as tl


@triton.jit
def split_kernel(Q, K, V, VALID, HWM, MO, MML, sq_b, sq_h, sq_g, sk_b, sk_h, sk_c, sv_b, sv_h, sv_c, s_valid,
                 qk_scale, KVH: tl.constexpr, G: tl.constexpr, GP: tl.constexpr, D: tl.constexpr,
                 BLOCK_N: tl.constexpr, NSPLIT: tl.constexpr, IEEE: tl.constexpr):
    """One (pool row x KV head, split) program: the split's float32 (m, l, acc) of the row's G query heads."""
    bh = tl.program_id(0)
    s = tl.program_id(1)
    b = (bh // KVH).to(tl.int64)  # a layer of the pool may hold more than 2**31 elements
    h = bh % KVH
    hwm = tl.load(HWM + b)
    per = tl.cdiv(tl.cdiv(hwm, NSPLIT), BLOCK_N) * BLOCK_N
    start = s * per
    end = tl.minimum(start + per, hwm)
    offs_g = tl.arange(0, GP)
    offs_d = tl.arange(0, D)
    q = tl.load(Q + b * sq_b + h * sq_h + offs_g[:, None] * sq_g + offs_d[None, :],
                mask=offs_g[:, None] < G, other=0.0)
    m_i = tl.full([GP], -1.0e30, dtype=tl.float32)
    l_i = tl.zeros([GP], dtype=tl.float32)
    acc = tl.zeros([GP, D], dtype=tl.float32)
    kb = K + b * sk_b + h * sk_h
    vb = V + b * sv_b + h * sv_h
    for n0 in range(start, end, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        nmask = offs_n < end
        ok = tl.load(VALID + b * s_valid + offs_n, mask=nmask, other=0) != 0
        k = tl.load(kb + offs_n[:, None] * sk_c + offs_d[None, :], mask=nmask[:, None], other=0.0)
        if IEEE:
            qk = tl.dot(q, tl.trans(k), input_precision="ieee")
        else:
            qk = tl.dot(q, tl.trans(k))
        qk = tl.where(ok[None, :], qk * qk_scale, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(qk, 1))
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(qk - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(vb + offs_n[:, None] * sv_c + offs_d[None, :], mask=nmask[:, None], other=0.0)
        if IEEE:
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision="ieee")
        else:
            acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new
    part = bh * NSPLIT + s
    tl.store(MO + (part * G + offs_g[:, None]) * D + offs_d[None, :], acc, mask=offs_g[:, None] < G)
    tl.store(MML + (part * 2) * GP + offs_g, m_i)
    tl.store(MML + (part * 2 + 1) * GP + offs_g, l_i)

@triton.jit
def merge_kernel(MO, MML, OUT, so_b, so_h, so_g, KVH: tl.constexpr, G: tl.constexpr, GP: tl.constexpr,
                 D: tl.constexpr, NSPLIT: tl.constexpr):
    """One (pool row x KV head) program: the splits merged, divided by the sum, in the output's dtype."""
    bh = tl.program_id(0)
    b = (bh // KVH).to(tl.int64)
    h = bh % KVH
    offs_g = tl.arange(0, GP)
    offs_d = tl.arange(0, D)
    m_run = tl.full([GP], -1.0e30, dtype=tl.float32)
    l_run = tl.zeros([GP], dtype=tl.float32)
    acc = tl.zeros([GP, D], dtype=tl.float32)
    for s in range(NSPLIT):
        part = bh * NSPLIT + s
        m = tl.load(MML + (part * 2) * GP + offs_g)
        l_ = tl.load(MML + (part * 2 + 1) * GP + offs_g)
        a = tl.load(MO + (part * G + offs_g[:, None]) * D + offs_d[None, :], mask=offs_g[:, None] < G, other=0.0)
        m_new = tl.maximum(m_run, m)
        c0 = tl.exp2(m_run - m_new)
        c1 = tl.exp2(m - m_new)
        l_run = l_run * c0 + l_ * c1
        acc = acc * c0[:, None] + a * c1[:, None]
        m_run = m_new
    out = acc / tl.where(l_run > 0, l_run, 1.0)[:, None]
    tl.store(OUT + b * so_b + h * so_h + offs_g[:, None] * so_g + offs_d[None, :],
             out.to(OUT.dtype.element_ty), mask=offs_g[:, None] < G)
