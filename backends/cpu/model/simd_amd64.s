//go:build !purego

#include "textflag.h"

// Every dot product below is accumulated in one 8-lane register (lane l sums k = l, l+8, l+16, ... with
// fused multiply-add, k ascending) and reduced as ((l0+l4)+(l1+l5)) + ((l2+l6)+(l3+l7)). All kernels share
// this order, so a result does not depend on which kernel (how many rows) computed it.

// RED reduces the 8 lanes of Y register acc (low half xacc) and stores the float32 at dst.
#define RED(acc, xacc, dst) \
	VEXTRACTF128 $1, acc, X15 \
	VADDPS       X15, xacc, xacc \
	VHADDPS      xacc, xacc, xacc \
	VHADDPS      xacc, xacc, xacc \
	VMOVSS       xacc, dst

// BF loads 8 bf16 values at mem and widens them to float32 in Y register y.
// PFDIST is how far past the next tile's first weight row the multi-row bf16 kernels prefetch (bytes).
#define PFDIST 4096

#define BF(mem, y) \
	VPMOVZXWD mem, y \
	VPSLLD    $16, y, y

// GV8STEP is one 8-column step of eight bf16 weight rows (R12, stride BX; R9 = 3, R10 = 5, R11 = 7 rows)
// against x at R13 into Y0..Y7, prefetching the next block's rows at AX; R14 counts the columns left. Shared
// by gemvBF16 and gemvSegBF16, whose results must have the same bits.
#define GV8STEP \
	PREFETCHT0  (AX) \
	PREFETCHT0  64(AX) \
	ADDQ        $128, AX \
	VMOVUPS     (R13), Y8 \
	BF((R12), Y9) \
	VFMADD231PS Y8, Y9, Y0 \
	BF((R12)(BX*1), Y10) \
	VFMADD231PS Y8, Y10, Y1 \
	BF((R12)(BX*2), Y11) \
	VFMADD231PS Y8, Y11, Y2 \
	BF((R12)(R9*1), Y12) \
	VFMADD231PS Y8, Y12, Y3 \
	BF((R12)(BX*4), Y13) \
	VFMADD231PS Y8, Y13, Y4 \
	BF((R12)(R10*1), Y14) \
	VFMADD231PS Y8, Y14, Y5 \
	BF((R12)(R9*2), Y9) \
	VFMADD231PS Y8, Y9, Y6 \
	BF((R12)(R11*1), Y10) \
	VFMADD231PS Y8, Y10, Y7 \
	ADDQ        $32, R13 \
	ADDQ        $16, R12 \
	SUBQ        $8, R14

// RED8 reduces Y0..Y7 into the eight float32 at R8.
#define RED8 \
	RED(Y0, X0, 0(R8)) \
	RED(Y1, X1, 4(R8)) \
	RED(Y2, X2, 8(R8)) \
	RED(Y3, X3, 12(R8)) \
	RED(Y4, X4, 16(R8)) \
	RED(Y5, X5, 20(R8)) \
	RED(Y6, X6, 24(R8)) \
	RED(Y7, X7, 28(R8))

// func gemvBF16(x *float32, w *uint16, ldw, k8, rows int, y *float32)
// y[j] = dot(x[:k8], w[j*ldw:][:k8]) for j < rows (bf16 weights); k8 > 0.
TEXT ·gemvBF16(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), SI
	MOVQ w+8(FP), DI
	MOVQ ldw+16(FP), BX
	SHLQ $1, BX
	MOVQ k8+24(FP), CX
	MOVQ rows+32(FP), DX
	MOVQ y+40(FP), R8
	LEAQ (BX)(BX*2), R9  // 3 rows
	LEAQ (BX)(BX*4), R10 // 5 rows
	LEAQ (R9)(BX*4), R11 // 7 rows

// Prefetch the first block (up to eight rows): the loop below prefetches each next block while it
// computes the current one, so without this the first block of every call waits on memory.
	MOVQ  DX, AX
	CMPQ  AX, $8
	JLE   gvpf0
	MOVQ  $8, AX
gvpf0:
	IMULQ BX, AX
	MOVQ  DI, R12
	ADDQ  DI, AX
gvpf:
	PREFETCHT0 (R12)
	ADDQ       $64, R12
	CMPQ       R12, AX
	JLT        gvpf

// Eight rows at a time: eight independent FMA chains keep both FMA pipes busy (four chains wait on
// the FMA latency), one pass over x for eight weight rows.
gv8:
	CMPQ DX, $8
	JLT  gv4
	MOVQ DI, R12
	MOVQ SI, R13
	MOVQ CX, R14
	LEAQ (DI)(BX*8), AX // prefetch the next block's weight rows (one block ahead: 2026-12-03, dev box, 2 threads, 6% faster decode than two blocks ahead, 20% faster than none)
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

gv8k:
	GV8STEP
	JNZ         gv8k

	RED8
	LEAQ (DI)(BX*8), DI
	ADDQ $32, R8
	SUBQ $8, DX
	JMP  gv8

gv4:
	CMPQ DX, $4
	JLT  gv1
	MOVQ DI, R10
	LEAQ (DI)(BX*1), R11
	LEAQ (R11)(BX*1), R12
	LEAQ (R12)(BX*1), R13
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ AX, AX

gv4k:
	CMPQ AX, CX
	JGE  gv4r
	VMOVUPS (SI)(AX*4), Y8
	BF((R10)(AX*2), Y4)
	BF((R11)(AX*2), Y5)
	BF((R12)(AX*2), Y6)
	BF((R13)(AX*2), Y7)
	VFMADD231PS Y8, Y4, Y0
	VFMADD231PS Y8, Y5, Y1
	VFMADD231PS Y8, Y6, Y2
	VFMADD231PS Y8, Y7, Y3
	ADDQ $8, AX
	JMP  gv4k

gv4r:
	RED(Y0, X0, 0(R8))
	RED(Y1, X1, 4(R8))
	RED(Y2, X2, 8(R8))
	RED(Y3, X3, 12(R8))
	LEAQ (R13)(BX*1), DI
	ADDQ $16, R8
	SUBQ $4, DX
	JMP  gv4

gv1:
	TESTQ DX, DX
	JLE   gvdone
	VXORPS Y0, Y0, Y0
	XORQ   AX, AX

gv1k:
	CMPQ AX, CX
	JGE  gv1r
	BF((DI)(AX*2), Y4)
	VFMADD231PS (SI)(AX*4), Y4, Y0
	ADDQ $8, AX
	JMP  gv1k

gv1r:
	RED(Y0, X0, 0(R8))
	ADDQ BX, DI
	ADDQ $4, R8
	DECQ DX
	JMP  gv1

gvdone:
	VZEROUPPER
	RET

// func gemm4x3BF16(x *float32, ldx int, w *uint16, ldw, k8 int, y *float32, ldy int)
// y[r*ldy+j] = dot(x[r*ldx:][:k8], w[j*ldw:][:k8]) for r < 4, j < 3.
TEXT ·gemm4x3BF16(SB), NOSPLIT, $0-56
	MOVQ x+0(FP), R10
	MOVQ ldx+8(FP), BX
	SHLQ $2, BX
	LEAQ (R10)(BX*1), R11
	LEAQ (R11)(BX*1), R12
	LEAQ (R12)(BX*1), R13
	MOVQ w+16(FP), DI
	MOVQ ldw+24(FP), BX
	SHLQ $1, BX
	LEAQ (DI)(BX*1), R14
	LEAQ (R14)(BX*1), R9
	MOVQ k8+32(FP), CX
	MOVQ y+40(FP), R8
	MOVQ ldy+48(FP), DX
	SHLQ $2, DX
	LEAQ (R9)(BX*1), SI // prefetch the weights of the next tiles (rows are contiguous in matmulRows)
	ADDQ $PFDIST, SI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	XORQ   AX, AX

gmk:
	CMPQ AX, CX
	JGE  gmr
	PREFETCHT0 (SI)(AX*8)
	BF((DI)(AX*2), Y12)
	BF((R14)(AX*2), Y13)
	BF((R9)(AX*2), Y14)
	VMOVUPS     (R10)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y0
	VFMADD231PS Y15, Y13, Y1
	VFMADD231PS Y15, Y14, Y2
	VMOVUPS     (R11)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y3
	VFMADD231PS Y15, Y13, Y4
	VFMADD231PS Y15, Y14, Y5
	VMOVUPS     (R12)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y6
	VFMADD231PS Y15, Y13, Y7
	VFMADD231PS Y15, Y14, Y8
	VMOVUPS     (R13)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y9
	VFMADD231PS Y15, Y13, Y10
	VFMADD231PS Y15, Y14, Y11
	ADDQ        $8, AX
	JMP         gmk

gmr:
	RED(Y0, X0, 0(R8))
	RED(Y1, X1, 4(R8))
	RED(Y2, X2, 8(R8))
	ADDQ DX, R8
	RED(Y3, X3, 0(R8))
	RED(Y4, X4, 4(R8))
	RED(Y5, X5, 8(R8))
	ADDQ DX, R8
	RED(Y6, X6, 0(R8))
	RED(Y7, X7, 4(R8))
	RED(Y8, X8, 8(R8))
	ADDQ DX, R8
	RED(Y9, X9, 0(R8))
	RED(Y10, X10, 4(R8))
	RED(Y11, X11, 8(R8))
	VZEROUPPER
	RET

// func packBF16(dst *float32, w *uint16, ldw, k8, n int)
// Widens n bf16 weight rows w[j*ldw:][:k8] (j < n) to float32 and interleaves them by 8 lanes:
// dst[(s*n+j)*8+l] = w[j*ldw+8*s+l]; k8, n > 0. The layout gemm4x3F32 (n = 3) and gemm4x6F32Z (n = 6)
// read as one stream.
TEXT ·packBF16(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ w+8(FP), SI
	MOVQ ldw+16(FP), BX
	SHLQ $1, BX
	MOVQ k8+24(FP), CX
	MOVQ n+32(FP), DX
	MOVQ DX, R8
	SHLQ $5, R8 // bytes per k-step of the panel

pr:
	MOVQ DI, R9
	XORQ AX, AX

pk:
	BF((SI)(AX*2), Y0)
	VMOVUPS Y0, (R9)
	ADDQ    R8, R9
	ADDQ    $8, AX
	CMPQ    AX, CX
	JLT     pk
	ADDQ    BX, SI
	ADDQ    $32, DI
	DECQ    DX
	JNZ     pr
	VZEROUPPER
	RET

// func gemm4x3F32(x *float32, ldx int, p *float32, k8 int, y *float32, ldy int)
// y[r*ldy+j] = dot(x[r*ldx:][:k8], row j of the panel p) for r < 4, j < 3, where p holds three weight
// rows already widened to float32 and interleaved by packBF16x3; k8 > 0. Same FMAs in the same order as
// gemm4x3BF16 (the widening is exact), so the results are bit-identical; only the conversion is gone.
TEXT ·gemm4x3F32(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), R10
	MOVQ ldx+8(FP), BX
	SHLQ $2, BX
	LEAQ (R10)(BX*1), R11
	LEAQ (R11)(BX*1), R12
	LEAQ (R12)(BX*1), R13
	MOVQ p+16(FP), DI
	MOVQ k8+24(FP), CX
	MOVQ y+32(FP), R8
	MOVQ ldy+40(FP), DX
	SHLQ $2, DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	XORQ   AX, AX

gfk:
	VMOVUPS     (DI), Y12
	VMOVUPS     32(DI), Y13
	VMOVUPS     64(DI), Y14
	VMOVUPS     (R10)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y0
	VFMADD231PS Y15, Y13, Y1
	VFMADD231PS Y15, Y14, Y2
	VMOVUPS     (R11)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y3
	VFMADD231PS Y15, Y13, Y4
	VFMADD231PS Y15, Y14, Y5
	VMOVUPS     (R12)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y6
	VFMADD231PS Y15, Y13, Y7
	VFMADD231PS Y15, Y14, Y8
	VMOVUPS     (R13)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y9
	VFMADD231PS Y15, Y13, Y10
	VFMADD231PS Y15, Y14, Y11
	ADDQ        $96, DI
	ADDQ        $8, AX
	CMPQ        AX, CX
	JLT         gfk

	RED(Y0, X0, 0(R8))
	RED(Y1, X1, 4(R8))
	RED(Y2, X2, 8(R8))
	ADDQ DX, R8
	RED(Y3, X3, 0(R8))
	RED(Y4, X4, 4(R8))
	RED(Y5, X5, 8(R8))
	ADDQ DX, R8
	RED(Y6, X6, 0(R8))
	RED(Y7, X7, 4(R8))
	RED(Y8, X8, 8(R8))
	ADDQ DX, R8
	RED(Y9, X9, 0(R8))
	RED(Y10, X10, 4(R8))
	RED(Y11, X11, 8(R8))
	VZEROUPPER
	RET

// func gemm4x3F32A(x *float32, ldx int, p *float32, k8 int, acc *float32, flags int, y *float32, ldy int)
// gemm4x3F32 over one segment of the columns (x and p point at the segment, k8 its length), with the
// twelve 8-lane accumulators kept in acc (96 float32) between segments: flags&1 starts from acc (else
// from zero), flags&2 reduces them into y as gemm4x3F32 does (else stores them back to acc). The FMAs
// and the reduction are those of one gemm4x3F32 call over all the columns, so the results are the same bits.
TEXT ·gemm4x3F32A(SB), NOSPLIT, $0-64
	MOVQ x+0(FP), R10
	MOVQ ldx+8(FP), BX
	SHLQ $2, BX
	LEAQ (R10)(BX*1), R11
	LEAQ (R11)(BX*1), R12
	LEAQ (R12)(BX*1), R13
	MOVQ p+16(FP), DI
	MOVQ k8+24(FP), CX
	MOVQ acc+32(FP), SI
	MOVQ flags+40(FP), R9
	MOVQ y+48(FP), R8
	MOVQ ldy+56(FP), DX
	SHLQ $2, DX
	TESTQ $1, R9
	JNZ  gaload
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	JMP  gastart

gaload:
	VMOVUPS 0(SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VMOVUPS 128(SI), Y4
	VMOVUPS 160(SI), Y5
	VMOVUPS 192(SI), Y6
	VMOVUPS 224(SI), Y7
	VMOVUPS 256(SI), Y8
	VMOVUPS 288(SI), Y9
	VMOVUPS 320(SI), Y10
	VMOVUPS 352(SI), Y11

gastart:
	XORQ AX, AX

gak:
	VMOVUPS     (DI), Y12
	VMOVUPS     32(DI), Y13
	VMOVUPS     64(DI), Y14
	VMOVUPS     (R10)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y0
	VFMADD231PS Y15, Y13, Y1
	VFMADD231PS Y15, Y14, Y2
	VMOVUPS     (R11)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y3
	VFMADD231PS Y15, Y13, Y4
	VFMADD231PS Y15, Y14, Y5
	VMOVUPS     (R12)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y6
	VFMADD231PS Y15, Y13, Y7
	VFMADD231PS Y15, Y14, Y8
	VMOVUPS     (R13)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y9
	VFMADD231PS Y15, Y13, Y10
	VFMADD231PS Y15, Y14, Y11
	ADDQ        $96, DI
	ADDQ        $8, AX
	CMPQ        AX, CX
	JLT         gak
	TESTQ       $2, R9
	JNZ         gared
	VMOVUPS Y0, 0(SI)
	VMOVUPS Y1, 32(SI)
	VMOVUPS Y2, 64(SI)
	VMOVUPS Y3, 96(SI)
	VMOVUPS Y4, 128(SI)
	VMOVUPS Y5, 160(SI)
	VMOVUPS Y6, 192(SI)
	VMOVUPS Y7, 224(SI)
	VMOVUPS Y8, 256(SI)
	VMOVUPS Y9, 288(SI)
	VMOVUPS Y10, 320(SI)
	VMOVUPS Y11, 352(SI)
	VZEROUPPER
	RET

gared:
	RED(Y0, X0, 0(R8))
	RED(Y1, X1, 4(R8))
	RED(Y2, X2, 8(R8))
	ADDQ DX, R8
	RED(Y3, X3, 0(R8))
	RED(Y4, X4, 4(R8))
	RED(Y5, X5, 8(R8))
	ADDQ DX, R8
	RED(Y6, X6, 0(R8))
	RED(Y7, X7, 4(R8))
	RED(Y8, X8, 8(R8))
	ADDQ DX, R8
	RED(Y9, X9, 0(R8))
	RED(Y10, X10, 4(R8))
	RED(Y11, X11, 8(R8))
	VZEROUPPER
	RET

// func gemm4x6F32Z(x *float32, ldx int, p *float32, k8 int, y *float32, ldy int)
// AVX-512F: y[r*ldy+j] = dot(x[r*ldx:][:k8], row j of the panel p) for r < 4, j < 6, p packed by
// packBF16 with n = 6. Each 16-lane accumulator holds two outputs, rows 2q (low 8 lanes) and 2q+1 (high
// 8 lanes), each lane summing the same FMAs in the same order as the 8-lane kernels, and each half is
// reduced with RED: the results are bit-identical to gemm4x3F32 and gemvBF16.
TEXT ·gemm4x6F32Z(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), R10
	MOVQ ldx+8(FP), BX
	SHLQ $2, BX
	LEAQ (R10)(BX*1), R11
	LEAQ (R11)(BX*1), R12
	LEAQ (R12)(BX*1), R13
	MOVQ p+16(FP), DI
	MOVQ k8+24(FP), CX
	MOVQ y+32(FP), R8
	MOVQ ldy+40(FP), DX
	SHLQ $2, DX
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	VPXORD Z4, Z4, Z4
	VPXORD Z5, Z5, Z5
	VPXORD Z6, Z6, Z6
	VPXORD Z7, Z7, Z7
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	XORQ   AX, AX

gzk:
	VMOVUPS         (DI), Z12
	VMOVUPS         64(DI), Z13
	VMOVUPS         128(DI), Z14
	VBROADCASTF64X4 (R10)(AX*4), Z15
	VFMADD231PS     Z15, Z12, Z0
	VFMADD231PS     Z15, Z13, Z1
	VFMADD231PS     Z15, Z14, Z2
	VBROADCASTF64X4 (R11)(AX*4), Z15
	VFMADD231PS     Z15, Z12, Z3
	VFMADD231PS     Z15, Z13, Z4
	VFMADD231PS     Z15, Z14, Z5
	VBROADCASTF64X4 (R12)(AX*4), Z15
	VFMADD231PS     Z15, Z12, Z6
	VFMADD231PS     Z15, Z13, Z7
	VFMADD231PS     Z15, Z14, Z8
	VBROADCASTF64X4 (R13)(AX*4), Z15
	VFMADD231PS     Z15, Z12, Z9
	VFMADD231PS     Z15, Z13, Z10
	VFMADD231PS     Z15, Z14, Z11
	ADDQ            $192, DI
	ADDQ            $8, AX
	CMPQ            AX, CX
	JLT             gzk

	VEXTRACTF64X4 $1, Z0, Y12
	RED(Y0, X0, 0(R8))
	RED(Y12, X12, 4(R8))
	VEXTRACTF64X4 $1, Z1, Y12
	RED(Y1, X1, 8(R8))
	RED(Y12, X12, 12(R8))
	VEXTRACTF64X4 $1, Z2, Y12
	RED(Y2, X2, 16(R8))
	RED(Y12, X12, 20(R8))
	ADDQ DX, R8
	VEXTRACTF64X4 $1, Z3, Y12
	RED(Y3, X3, 0(R8))
	RED(Y12, X12, 4(R8))
	VEXTRACTF64X4 $1, Z4, Y12
	RED(Y4, X4, 8(R8))
	RED(Y12, X12, 12(R8))
	VEXTRACTF64X4 $1, Z5, Y12
	RED(Y5, X5, 16(R8))
	RED(Y12, X12, 20(R8))
	ADDQ DX, R8
	VEXTRACTF64X4 $1, Z6, Y12
	RED(Y6, X6, 0(R8))
	RED(Y12, X12, 4(R8))
	VEXTRACTF64X4 $1, Z7, Y12
	RED(Y7, X7, 8(R8))
	RED(Y12, X12, 12(R8))
	VEXTRACTF64X4 $1, Z8, Y12
	RED(Y8, X8, 16(R8))
	RED(Y12, X12, 20(R8))
	ADDQ DX, R8
	VEXTRACTF64X4 $1, Z9, Y12
	RED(Y9, X9, 0(R8))
	RED(Y12, X12, 4(R8))
	VEXTRACTF64X4 $1, Z10, Y12
	RED(Y10, X10, 8(R8))
	RED(Y12, X12, 12(R8))
	VEXTRACTF64X4 $1, Z11, Y12
	RED(Y11, X11, 16(R8))
	RED(Y12, X12, 20(R8))
	VZEROUPPER
	RET

// func dotsF32(q, k *float32, stride, n, d8 int, scale float32, out *float32)
// out[s] = dot(q[:d8], k[s*stride:][:d8]) * scale for s < n.
TEXT ·dotsF32(SB), NOSPLIT, $0-56
	MOVQ         q+0(FP), SI
	MOVQ         k+8(FP), DI
	MOVQ         stride+16(FP), BX
	SHLQ         $2, BX
	MOVQ         n+24(FP), DX
	MOVQ         d8+32(FP), CX
	VBROADCASTSS scale+40(FP), Y14
	MOVQ         out+48(FP), R8

ds8:
	CMPQ DX, $8
	JLT  ds4
	MOVQ DI, R10
	LEAQ (DI)(BX*4), R11
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	LEAQ (BX)(BX*2), R9
	XORQ AX, AX

ds8k:
	CMPQ        AX, CX
	JGE         ds8r
	VMOVUPS     (SI)(AX*4), Y8
	LEAQ        (R10)(AX*4), R12
	LEAQ        (R11)(AX*4), R13
	VFMADD231PS (R12), Y8, Y0
	VFMADD231PS (R12)(BX*1), Y8, Y1
	VFMADD231PS (R12)(BX*2), Y8, Y2
	VFMADD231PS (R12)(R9*1), Y8, Y3
	VFMADD231PS (R13), Y8, Y4
	VFMADD231PS (R13)(BX*1), Y8, Y5
	VFMADD231PS (R13)(BX*2), Y8, Y6
	VFMADD231PS (R13)(R9*1), Y8, Y7
	ADDQ        $8, AX
	JMP         ds8k

ds8r:
	VMULPS Y14, Y0, Y0
	VMULPS Y14, Y1, Y1
	VMULPS Y14, Y2, Y2
	VMULPS Y14, Y3, Y3
	VMULPS Y14, Y4, Y4
	VMULPS Y14, Y5, Y5
	VMULPS Y14, Y6, Y6
	VMULPS Y14, Y7, Y7
	RED8
	LEAQ (R11)(BX*4), DI
	ADDQ $32, R8
	SUBQ $8, DX
	JMP  ds8

ds4:
	CMPQ DX, $4
	JLT  ds1
	MOVQ DI, R10
	LEAQ (DI)(BX*1), R11
	LEAQ (R11)(BX*1), R12
	LEAQ (R12)(BX*1), R13
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	XORQ   AX, AX

ds4k:
	CMPQ        AX, CX
	JGE         ds4r
	VMOVUPS     (SI)(AX*4), Y8
	VFMADD231PS (R10)(AX*4), Y8, Y0
	VFMADD231PS (R11)(AX*4), Y8, Y1
	VFMADD231PS (R12)(AX*4), Y8, Y2
	VFMADD231PS (R13)(AX*4), Y8, Y3
	ADDQ        $8, AX
	JMP         ds4k

ds4r:
	VMULPS Y14, Y0, Y0
	VMULPS Y14, Y1, Y1
	VMULPS Y14, Y2, Y2
	VMULPS Y14, Y3, Y3
	RED(Y0, X0, 0(R8))
	RED(Y1, X1, 4(R8))
	RED(Y2, X2, 8(R8))
	RED(Y3, X3, 12(R8))
	LEAQ (R13)(BX*1), DI
	ADDQ $16, R8
	SUBQ $4, DX
	JMP  ds4

ds1:
	TESTQ DX, DX
	JLE   dsdone
	VXORPS Y0, Y0, Y0
	XORQ   AX, AX

ds1k:
	CMPQ        AX, CX
	JGE         ds1r
	VMOVUPS     (SI)(AX*4), Y8
	VFMADD231PS (DI)(AX*4), Y8, Y0
	ADDQ        $8, AX
	JMP         ds1k

ds1r:
	VMULPS Y14, Y0, Y0
	RED(Y0, X0, 0(R8))
	ADDQ BX, DI
	ADDQ $4, R8
	DECQ DX
	JMP  ds1

dsdone:
	VZEROUPPER
	RET

// func wsumF32(out, p, v *float32, stride, n, d8 int)
// out[i] += sum over s < n (in order) of p[s]*v[s*stride+i], for i < d8.
TEXT ·wsumF32(SB), NOSPLIT, $0-48
	MOVQ out+0(FP), R8
	MOVQ p+8(FP), SI
	MOVQ v+16(FP), DI
	MOVQ stride+24(FP), BX
	SHLQ $2, BX
	MOVQ n+32(FP), DX
	MOVQ d8+40(FP), CX

// 64 output lanes at a time: eight independent FMA chains per value row (the chain over slots is
// sequential, so fewer lanes wait on the FMA latency).
ws64:
	CMPQ    CX, $64
	JLT     ws32
	VMOVUPS 0(R8), Y0
	VMOVUPS 32(R8), Y1
	VMOVUPS 64(R8), Y2
	VMOVUPS 96(R8), Y3
	VMOVUPS 128(R8), Y4
	VMOVUPS 160(R8), Y5
	VMOVUPS 192(R8), Y6
	VMOVUPS 224(R8), Y7
	MOVQ    DI, R10
	XORQ    AX, AX

ws64s:
	CMPQ         AX, DX
	JGE          ws64e
	VBROADCASTSS (SI)(AX*4), Y8
	VFMADD231PS  0(R10), Y8, Y0
	VFMADD231PS  32(R10), Y8, Y1
	VFMADD231PS  64(R10), Y8, Y2
	VFMADD231PS  96(R10), Y8, Y3
	VFMADD231PS  128(R10), Y8, Y4
	VFMADD231PS  160(R10), Y8, Y5
	VFMADD231PS  192(R10), Y8, Y6
	VFMADD231PS  224(R10), Y8, Y7
	ADDQ         BX, R10
	INCQ         AX
	JMP          ws64s

ws64e:
	VMOVUPS Y0, 0(R8)
	VMOVUPS Y1, 32(R8)
	VMOVUPS Y2, 64(R8)
	VMOVUPS Y3, 96(R8)
	VMOVUPS Y4, 128(R8)
	VMOVUPS Y5, 160(R8)
	VMOVUPS Y6, 192(R8)
	VMOVUPS Y7, 224(R8)
	ADDQ    $256, R8
	ADDQ    $256, DI
	SUBQ    $64, CX
	JMP     ws64

ws32:
	CMPQ    CX, $32
	JLT     ws8
	VMOVUPS 0(R8), Y0
	VMOVUPS 32(R8), Y1
	VMOVUPS 64(R8), Y2
	VMOVUPS 96(R8), Y3
	MOVQ    DI, R10
	XORQ    AX, AX

ws32s:
	CMPQ         AX, DX
	JGE          ws32e
	VBROADCASTSS (SI)(AX*4), Y8
	VFMADD231PS  0(R10), Y8, Y0
	VFMADD231PS  32(R10), Y8, Y1
	VFMADD231PS  64(R10), Y8, Y2
	VFMADD231PS  96(R10), Y8, Y3
	ADDQ         BX, R10
	INCQ         AX
	JMP          ws32s

ws32e:
	VMOVUPS Y0, 0(R8)
	VMOVUPS Y1, 32(R8)
	VMOVUPS Y2, 64(R8)
	VMOVUPS Y3, 96(R8)
	ADDQ    $128, R8
	ADDQ    $128, DI
	SUBQ    $32, CX
	JMP     ws32

ws8:
	CMPQ    CX, $8
	JLT     wsdone
	VMOVUPS 0(R8), Y0
	MOVQ    DI, R10
	XORQ    AX, AX

ws8s:
	CMPQ         AX, DX
	JGE          ws8e
	VBROADCASTSS (SI)(AX*4), Y8
	VFMADD231PS  0(R10), Y8, Y0
	ADDQ         BX, R10
	INCQ         AX
	JMP          ws8s

ws8e:
	VMOVUPS Y0, 0(R8)
	ADDQ    $32, R8
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     ws8

wsdone:
	VZEROUPPER
	RET

// func expSubF32(row *float32, n8 int, mx float32) float32
// row[i] = expf(row[i]-mx) (0 below -87) for i < n8; returns the sum of the new values (8 lanes, RED order).
// Constants come from expTab (see simd_amd64.go), one 8-lane vector per entry.
TEXT ·expSubF32(SB), NOSPLIT, $0-28
	MOVQ         row+0(FP), SI
	MOVQ         n8+8(FP), CX
	VBROADCASTSS mx+16(FP), Y6
	VXORPS       Y5, Y5, Y5
	XORQ         AX, AX

exk:
	CMPQ        AX, CX
	JGE         exr
	VMOVUPS     (SI)(AX*4), Y0
	VSUBPS      Y6, Y0, Y0
	VCMPPS      $13, ·expTab+0(SB), Y0, Y9   // x >= -87
	VMULPS      ·expTab+32(SB), Y0, Y1        // x*log2e
	VADDPS      ·expTab+64(SB), Y1, Y1        // + 0.5
	VROUNDPS    $9, Y1, Y1                    // floor
	VMOVAPS     Y0, Y2
	VFNMADD231PS ·expTab+96(SB), Y1, Y2       // r = x - n*ln2hi
	VFNMADD231PS ·expTab+128(SB), Y1, Y2      // r -= n*ln2lo
	VMOVUPS     ·expTab+160(SB), Y3           // 1/5040
	VFMADD213PS ·expTab+192(SB), Y2, Y3       // p = p*r + 1/720
	VFMADD213PS ·expTab+224(SB), Y2, Y3       // 1/120
	VFMADD213PS ·expTab+256(SB), Y2, Y3       // 1/24
	VFMADD213PS ·expTab+288(SB), Y2, Y3       // 1/6
	VFMADD213PS ·expTab+64(SB), Y2, Y3        // 0.5
	VFMADD213PS ·expTab+320(SB), Y2, Y3       // 1
	VFMADD213PS ·expTab+320(SB), Y2, Y3       // 1
	VCVTPS2DQ   Y1, Y4
	VPADDD      ·expTab+352(SB), Y4, Y4       // + 127
	VPSLLD      $23, Y4, Y4
	VMULPS      Y4, Y3, Y3
	VANDPS      Y9, Y3, Y3
	VMOVUPS     Y3, (SI)(AX*4)
	VADDPS      Y3, Y5, Y5
	ADDQ        $8, AX
	JMP         exk

exr:
	VEXTRACTF128 $1, Y5, X15
	VADDPS       X15, X5, X5
	VHADDPS      X5, X5, X5
	VHADDPS      X5, X5, X5
	VMOVSS       X5, ret+24(FP)
	VZEROUPPER
	RET

// func dots4x3F32(q *float32, ldq int, k *float32, ldk, d8 int, scale float32, out *float32, ldo int)
// out[i*ldo+s] = dot(q[i*ldq:][:d8], k[s*ldk:][:d8]) * scale for i < 4, s < 3 (the order of dotsF32).
TEXT ·dots4x3F32(SB), NOSPLIT, $0-64
	MOVQ q+0(FP), R10
	MOVQ ldq+8(FP), BX
	SHLQ $2, BX
	LEAQ (R10)(BX*1), R11
	LEAQ (R11)(BX*1), R12
	LEAQ (R12)(BX*1), R13
	MOVQ k+16(FP), DI
	MOVQ ldk+24(FP), BX
	SHLQ $2, BX
	LEAQ (DI)(BX*1), R14
	LEAQ (R14)(BX*1), R9
	MOVQ d8+32(FP), CX
	MOVQ out+48(FP), R8
	MOVQ ldo+56(FP), DX
	SHLQ $2, DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	XORQ   AX, AX

dqk:
	CMPQ        AX, CX
	JGE         dqr
	VMOVUPS     (DI)(AX*4), Y12
	VMOVUPS     (R14)(AX*4), Y13
	VMOVUPS     (R9)(AX*4), Y14
	VMOVUPS     (R10)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y0
	VFMADD231PS Y15, Y13, Y1
	VFMADD231PS Y15, Y14, Y2
	VMOVUPS     (R11)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y3
	VFMADD231PS Y15, Y13, Y4
	VFMADD231PS Y15, Y14, Y5
	VMOVUPS     (R12)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y6
	VFMADD231PS Y15, Y13, Y7
	VFMADD231PS Y15, Y14, Y8
	VMOVUPS     (R13)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y9
	VFMADD231PS Y15, Y13, Y10
	VFMADD231PS Y15, Y14, Y11
	ADDQ        $8, AX
	JMP         dqk

dqr:
	VBROADCASTSS scale+40(FP), Y12
	VMULPS Y12, Y0, Y0
	VMULPS Y12, Y1, Y1
	VMULPS Y12, Y2, Y2
	VMULPS Y12, Y3, Y3
	VMULPS Y12, Y4, Y4
	VMULPS Y12, Y5, Y5
	VMULPS Y12, Y6, Y6
	VMULPS Y12, Y7, Y7
	VMULPS Y12, Y8, Y8
	VMULPS Y12, Y9, Y9
	VMULPS Y12, Y10, Y10
	VMULPS Y12, Y11, Y11
	RED(Y0, X0, 0(R8))
	RED(Y1, X1, 4(R8))
	RED(Y2, X2, 8(R8))
	ADDQ DX, R8
	RED(Y3, X3, 0(R8))
	RED(Y4, X4, 4(R8))
	RED(Y5, X5, 8(R8))
	ADDQ DX, R8
	RED(Y6, X6, 0(R8))
	RED(Y7, X7, 4(R8))
	RED(Y8, X8, 8(R8))
	ADDQ DX, R8
	RED(Y9, X9, 0(R8))
	RED(Y10, X10, 4(R8))
	RED(Y11, X11, 8(R8))
	VZEROUPPER
	RET

// func wsum2F32(out0, out1, p0, p1, v *float32, stride, n, d8 int)
// outA[i] += sum over s < n (in order) of pA[s]*v[s*stride+i] for i < d8 and A = 0, 1 (the order of wsumF32).
TEXT ·wsum2F32(SB), NOSPLIT, $0-64
	MOVQ out0+0(FP), R8
	MOVQ out1+8(FP), R9
	MOVQ p0+16(FP), SI
	MOVQ p1+24(FP), R11
	MOVQ v+32(FP), DI
	MOVQ stride+40(FP), BX
	SHLQ $2, BX
	MOVQ n+48(FP), DX
	MOVQ d8+56(FP), CX

w2_32:
	CMPQ    CX, $32
	JLT     w2_8
	VMOVUPS 0(R8), Y0
	VMOVUPS 32(R8), Y1
	VMOVUPS 64(R8), Y2
	VMOVUPS 96(R8), Y3
	VMOVUPS 0(R9), Y4
	VMOVUPS 32(R9), Y5
	VMOVUPS 64(R9), Y6
	VMOVUPS 96(R9), Y7
	MOVQ    DI, R10
	XORQ    AX, AX

w2_32s:
	CMPQ         AX, DX
	JGE          w2_32e
	VMOVUPS      0(R10), Y8
	VMOVUPS      32(R10), Y9
	VMOVUPS      64(R10), Y10
	VMOVUPS      96(R10), Y11
	VBROADCASTSS (SI)(AX*4), Y12
	VBROADCASTSS (R11)(AX*4), Y13
	VFMADD231PS  Y8, Y12, Y0
	VFMADD231PS  Y9, Y12, Y1
	VFMADD231PS  Y10, Y12, Y2
	VFMADD231PS  Y11, Y12, Y3
	VFMADD231PS  Y8, Y13, Y4
	VFMADD231PS  Y9, Y13, Y5
	VFMADD231PS  Y10, Y13, Y6
	VFMADD231PS  Y11, Y13, Y7
	ADDQ         BX, R10
	INCQ         AX
	JMP          w2_32s

w2_32e:
	VMOVUPS Y0, 0(R8)
	VMOVUPS Y1, 32(R8)
	VMOVUPS Y2, 64(R8)
	VMOVUPS Y3, 96(R8)
	VMOVUPS Y4, 0(R9)
	VMOVUPS Y5, 32(R9)
	VMOVUPS Y6, 64(R9)
	VMOVUPS Y7, 96(R9)
	ADDQ    $128, R8
	ADDQ    $128, R9
	ADDQ    $128, DI
	SUBQ    $32, CX
	JMP     w2_32

w2_8:
	CMPQ    CX, $8
	JLT     w2done
	VMOVUPS 0(R8), Y0
	VMOVUPS 0(R9), Y4
	MOVQ    DI, R10
	XORQ    AX, AX

w2_8s:
	CMPQ         AX, DX
	JGE          w2_8e
	VMOVUPS      0(R10), Y8
	VBROADCASTSS (SI)(AX*4), Y12
	VBROADCASTSS (R11)(AX*4), Y13
	VFMADD231PS  Y8, Y12, Y0
	VFMADD231PS  Y8, Y13, Y4
	ADDQ         BX, R10
	INCQ         AX
	JMP          w2_8s

w2_8e:
	VMOVUPS Y0, 0(R8)
	VMOVUPS Y4, 0(R9)
	ADDQ    $32, R8
	ADDQ    $32, R9
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     w2_8

w2done:
	VZEROUPPER
	RET

// func maxF32(row *float32, n8 int) float32
// The largest of row[:n8] (n8 > 0, a multiple of 8; no NaN).
TEXT ·maxF32(SB), NOSPLIT, $0-20
	MOVQ    row+0(FP), SI
	MOVQ    n8+8(FP), CX
	VMOVUPS (SI), Y0
	MOVQ    $8, AX

mxk:
	CMPQ   AX, CX
	JGE    mxr
	VMAXPS (SI)(AX*4), Y0, Y0
	ADDQ   $8, AX
	JMP    mxk

mxr:
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4E, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xB1, X0, X1
	VMAXPS       X1, X0, X0
	VMOVSS       X0, ret+16(FP)
	VZEROUPPER
	RET

// func siluMulF32(gate, u, a *float32, n8 int)
// a[i] = silu(gate[i]) * u[i] for i < n8, silu(x) = x/(1+e) (x >= 0) or x*e/(1+e) (x < 0) with e = expf(-|x|),
// expf as in expSubF32.
TEXT ·siluMulF32(SB), NOSPLIT, $0-32
	MOVQ gate+0(FP), SI
	MOVQ u+8(FP), DI
	MOVQ a+16(FP), DX
	MOVQ n8+24(FP), CX
	XORQ AX, AX
	VXORPS Y10, Y10, Y10

slk:
	CMPQ         AX, CX
	JGE          sldone
	VMOVUPS      (SI)(AX*4), Y0
	VORPS        ·expTab+384(SB), Y0, Y1 // y = -|x|
	VCMPPS       $13, ·expTab+0(SB), Y1, Y9
	VMULPS       ·expTab+32(SB), Y1, Y2
	VADDPS       ·expTab+64(SB), Y2, Y2
	VROUNDPS     $9, Y2, Y2
	VMOVAPS      Y1, Y4
	VFNMADD231PS ·expTab+96(SB), Y2, Y4
	VFNMADD231PS ·expTab+128(SB), Y2, Y4
	VMOVUPS      ·expTab+160(SB), Y3
	VFMADD213PS  ·expTab+192(SB), Y4, Y3
	VFMADD213PS  ·expTab+224(SB), Y4, Y3
	VFMADD213PS  ·expTab+256(SB), Y4, Y3
	VFMADD213PS  ·expTab+288(SB), Y4, Y3
	VFMADD213PS  ·expTab+64(SB), Y4, Y3
	VFMADD213PS  ·expTab+320(SB), Y4, Y3
	VFMADD213PS  ·expTab+320(SB), Y4, Y3
	VCVTPS2DQ    Y2, Y5
	VPADDD       ·expTab+352(SB), Y5, Y5
	VPSLLD       $23, Y5, Y5
	VMULPS       Y5, Y3, Y3
	VANDPS       Y9, Y3, Y3              // e
	VMULPS       Y3, Y0, Y6              // x*e
	VCMPPS       $13, Y10, Y0, Y8        // x >= 0
	VBLENDVPS    Y8, Y0, Y6, Y6          // x >= 0 ? x : x*e
	VADDPS       ·expTab+320(SB), Y3, Y7 // 1+e
	VDIVPS       Y7, Y6, Y6
	VMULPS       (DI)(AX*4), Y6, Y6
	VMOVUPS      Y6, (DX)(AX*4)
	ADDQ         $8, AX
	JMP          slk

sldone:
	VZEROUPPER
	RET

// RED2 scales and reduces six accumulators at once: the scores of two queries (a0, a1, a2 of the first,
// b0, b1, b2 of the second) for three keys. Each lane gets exactly the operations of VMULPS + RED:
// x*scale lane by lane, then l+l4 (VPERM2F128 pairs the 128-bit halves), then the two pairwise sums of
// VHADDPS twice; float addition is commutative, so the result is the bits of RED. a0 ends as
// (a0, a1, a2, a2 | b0, b1, b2, b2); t0 and t1 are scratch, sc holds the broadcast scale.
#define RED2(a0, a1, a2, b0, b1, b2, t0, t1, sc) \
	VMULPS     sc, a0, a0 \
	VMULPS     sc, a1, a1 \
	VMULPS     sc, a2, a2 \
	VMULPS     sc, b0, b0 \
	VMULPS     sc, b1, b1 \
	VMULPS     sc, b2, b2 \
	VPERM2F128 $0x20, b0, a0, t0 \
	VPERM2F128 $0x31, b0, a0, t1 \
	VADDPS     t1, t0, a0 \
	VPERM2F128 $0x20, b1, a1, t0 \
	VPERM2F128 $0x31, b1, a1, t1 \
	VADDPS     t1, t0, a1 \
	VPERM2F128 $0x20, b2, a2, t0 \
	VPERM2F128 $0x31, b2, a2, t1 \
	VADDPS     t1, t0, a2 \
	VHADDPS    a1, a0, a0 \
	VHADDPS    a2, a2, a2 \
	VHADDPS    a2, a0, a0

// func dots4xNF32(q *float32, ldq int, k *float32, ldk, d8, n3 int, scale float32, out *float32, ldo int)
// For t < n3 (a multiple of 3), the scores of dots4x3F32 for keys k[t*ldk:]..k[(t+2)*ldk:]: out[i*ldo+t+s] =
// dot(q[i*ldq:][:d8], k[(t+s)*ldk:][:d8]) * scale for i < 4, s < 3, the bits of dotsF32. Each key triple also
// writes one float past its scores, out[i*ldo+t+3], which the caller overwrites or ignores (the row needs
// room for it). The 12 results of a triple are reduced together (RED2) instead of one RED each.
TEXT ·dots4xNF32(SB), NOSPLIT, $0-72
	MOVQ q+0(FP), R10
	MOVQ ldq+8(FP), BX
	SHLQ $2, BX
	LEAQ (R10)(BX*1), R11
	LEAQ (R11)(BX*1), R12
	LEAQ (R12)(BX*1), R13
	MOVQ k+16(FP), DI
	MOVQ ldk+24(FP), BX
	SHLQ $2, BX
	LEAQ (DI)(BX*1), R14
	LEAQ (R14)(BX*1), R9
	MOVQ d8+32(FP), CX
	MOVQ n3+40(FP), SI
	MOVQ out+56(FP), R8
	MOVQ ldo+64(FP), DX
	SHLQ $2, DX

dnt:
	CMPQ   SI, $3
	JLT    dndone
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	XORQ   AX, AX

dnk:
	VMOVUPS     (DI)(AX*4), Y12
	VMOVUPS     (R14)(AX*4), Y13
	VMOVUPS     (R9)(AX*4), Y14
	VMOVUPS     (R10)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y0
	VFMADD231PS Y15, Y13, Y1
	VFMADD231PS Y15, Y14, Y2
	VMOVUPS     (R11)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y3
	VFMADD231PS Y15, Y13, Y4
	VFMADD231PS Y15, Y14, Y5
	VMOVUPS     (R12)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y6
	VFMADD231PS Y15, Y13, Y7
	VFMADD231PS Y15, Y14, Y8
	VMOVUPS     (R13)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y9
	VFMADD231PS Y15, Y13, Y10
	VFMADD231PS Y15, Y14, Y11
	ADDQ        $8, AX
	CMPQ        AX, CX
	JLT         dnk

	VBROADCASTSS scale+48(FP), Y12
	RED2(Y0, Y1, Y2, Y3, Y4, Y5, Y13, Y14, Y12)
	RED2(Y6, Y7, Y8, Y9, Y10, Y11, Y13, Y14, Y12)
	VMOVUPS      X0, (R8)
	VEXTRACTF128 $1, Y0, (R8)(DX*1)
	LEAQ         (R8)(DX*2), AX
	VMOVUPS      X6, (AX)
	VEXTRACTF128 $1, Y6, (AX)(DX*1)
	ADDQ         $12, R8
	LEAQ         (R9)(BX*1), DI
	LEAQ         (DI)(BX*1), R14
	LEAQ         (R14)(BX*1), R9
	SUBQ         $3, SI
	JMP          dnt

dndone:
	VZEROUPPER
	RET

// W4L and W4S load / store the accumulators of a query (three 8-lane registers a, b, c at lane byte
// offset R11 of its output, address in R8) for wsum4F32; W4L2 / W4S2 and W4L1 / W4S1 the first two or the first one.
#define W4L(a, b, c) \
	VMOVUPS 0(R8)(R11*1), a \
	VMOVUPS 32(R8)(R11*1), b \
	VMOVUPS 64(R8)(R11*1), c

#define W4S(a, b, c) \
	VMOVUPS a, 0(R8)(R11*1) \
	VMOVUPS b, 32(R8)(R11*1) \
	VMOVUPS c, 64(R8)(R11*1)

#define W4L2(a, b) \
	VMOVUPS 0(R8)(R11*1), a \
	VMOVUPS 32(R8)(R11*1), b

#define W4S2(a, b) \
	VMOVUPS a, 0(R8)(R11*1) \
	VMOVUPS b, 32(R8)(R11*1)

#define W4L1(a) \
	VMOVUPS 0(R8)(R11*1), a

#define W4S1(a) \
	VMOVUPS a, 0(R8)(R11*1)

// func wsum4F32(o0, o1, o2, o3, p *float32, ldp int, v *float32, stride, n, d8 int)
// oA[i] += sum over s < n (in order) of p[A*ldp+s]*v[s*stride+i] for i < d8 and A < 4 (the order of wsumF32;
// n > 0). Lanes go 24 at a time (twelve accumulators, each value row loaded once for four queries), then
// 16, then 8.
TEXT ·wsum4F32(SB), NOSPLIT, $0-80
	MOVQ p+32(FP), SI
	MOVQ ldp+40(FP), BX
	SHLQ $2, BX
	LEAQ (SI)(BX*1), R12
	LEAQ (R12)(BX*1), R13
	LEAQ (R13)(BX*1), R14
	MOVQ v+48(FP), DI
	MOVQ stride+56(FP), BX
	SHLQ $2, BX
	MOVQ n+64(FP), DX
	MOVQ d8+72(FP), CX
	XORQ R11, R11

w4_24:
	CMPQ CX, $24
	JLT  w4_16
	MOVQ o0+0(FP), R8
	W4L(Y0, Y1, Y2)
	MOVQ o1+8(FP), R8
	W4L(Y3, Y4, Y5)
	MOVQ o2+16(FP), R8
	W4L(Y6, Y7, Y8)
	MOVQ o3+24(FP), R8
	W4L(Y9, Y10, Y11)
	LEAQ (DI)(R11*1), R10
	XORQ AX, AX

w4_24s:
	VMOVUPS      0(R10), Y12
	VMOVUPS      32(R10), Y13
	VMOVUPS      64(R10), Y14
	VBROADCASTSS (SI)(AX*4), Y15
	VFMADD231PS  Y12, Y15, Y0
	VFMADD231PS  Y13, Y15, Y1
	VFMADD231PS  Y14, Y15, Y2
	VBROADCASTSS (R12)(AX*4), Y15
	VFMADD231PS  Y12, Y15, Y3
	VFMADD231PS  Y13, Y15, Y4
	VFMADD231PS  Y14, Y15, Y5
	VBROADCASTSS (R13)(AX*4), Y15
	VFMADD231PS  Y12, Y15, Y6
	VFMADD231PS  Y13, Y15, Y7
	VFMADD231PS  Y14, Y15, Y8
	VBROADCASTSS (R14)(AX*4), Y15
	VFMADD231PS  Y12, Y15, Y9
	VFMADD231PS  Y13, Y15, Y10
	VFMADD231PS  Y14, Y15, Y11
	ADDQ         BX, R10
	INCQ         AX
	CMPQ         AX, DX
	JLT          w4_24s

	MOVQ o0+0(FP), R8
	W4S(Y0, Y1, Y2)
	MOVQ o1+8(FP), R8
	W4S(Y3, Y4, Y5)
	MOVQ o2+16(FP), R8
	W4S(Y6, Y7, Y8)
	MOVQ o3+24(FP), R8
	W4S(Y9, Y10, Y11)
	ADDQ $96, R11
	SUBQ $24, CX
	JMP  w4_24

w4_16:
	CMPQ CX, $16
	JLT  w4_8
	MOVQ o0+0(FP), R8
	W4L2(Y0, Y1)
	MOVQ o1+8(FP), R8
	W4L2(Y3, Y4)
	MOVQ o2+16(FP), R8
	W4L2(Y6, Y7)
	MOVQ o3+24(FP), R8
	W4L2(Y9, Y10)
	LEAQ (DI)(R11*1), R10
	XORQ AX, AX

w4_16s:
	VMOVUPS      0(R10), Y12
	VMOVUPS      32(R10), Y13
	VBROADCASTSS (SI)(AX*4), Y15
	VFMADD231PS  Y12, Y15, Y0
	VFMADD231PS  Y13, Y15, Y1
	VBROADCASTSS (R12)(AX*4), Y15
	VFMADD231PS  Y12, Y15, Y3
	VFMADD231PS  Y13, Y15, Y4
	VBROADCASTSS (R13)(AX*4), Y15
	VFMADD231PS  Y12, Y15, Y6
	VFMADD231PS  Y13, Y15, Y7
	VBROADCASTSS (R14)(AX*4), Y15
	VFMADD231PS  Y12, Y15, Y9
	VFMADD231PS  Y13, Y15, Y10
	ADDQ         BX, R10
	INCQ         AX
	CMPQ         AX, DX
	JLT          w4_16s

	MOVQ o0+0(FP), R8
	W4S2(Y0, Y1)
	MOVQ o1+8(FP), R8
	W4S2(Y3, Y4)
	MOVQ o2+16(FP), R8
	W4S2(Y6, Y7)
	MOVQ o3+24(FP), R8
	W4S2(Y9, Y10)
	ADDQ $64, R11
	SUBQ $16, CX
	JMP  w4_16

w4_8:
	CMPQ CX, $8
	JLT  w4done
	MOVQ o0+0(FP), R8
	W4L1(Y0)
	MOVQ o1+8(FP), R8
	W4L1(Y3)
	MOVQ o2+16(FP), R8
	W4L1(Y6)
	MOVQ o3+24(FP), R8
	W4L1(Y9)
	LEAQ (DI)(R11*1), R10
	XORQ AX, AX

w4_8s:
	VMOVUPS      0(R10), Y12
	VBROADCASTSS (SI)(AX*4), Y15
	VFMADD231PS  Y12, Y15, Y0
	VBROADCASTSS (R12)(AX*4), Y15
	VFMADD231PS  Y12, Y15, Y3
	VBROADCASTSS (R13)(AX*4), Y15
	VFMADD231PS  Y12, Y15, Y6
	VBROADCASTSS (R14)(AX*4), Y15
	VFMADD231PS  Y12, Y15, Y9
	ADDQ         BX, R10
	INCQ         AX
	CMPQ         AX, DX
	JLT          w4_8s

	MOVQ o0+0(FP), R8
	W4S1(Y0)
	MOVQ o1+8(FP), R8
	W4S1(Y3)
	MOVQ o2+16(FP), R8
	W4S1(Y6)
	MOVQ o3+24(FP), R8
	W4S1(Y9)
	ADDQ $32, R11
	SUBQ $8, CX
	JMP  w4_8

w4done:
	VZEROUPPER
	RET

// func gemmNx4BF16(x *float32, ldx int, w *uint16, ldw, k8 int, y *float32, ldy int, n int)
// y[r*ldy+j] = dot(x[r*ldx:][:k8], w[j*ldw:][:k8]) for r < n, j < 4, n = 2 or 3 (bf16 weights); k8 > 0.
// The small-batch tile: each weight vector is widened once for the n input rows (8 or 12 FMA chains),
// and the next tiles' weights are prefetched. Same FMAs in the same order as gemvBF16: same bits.
TEXT ·gemmNx4BF16(SB), NOSPLIT, $0-64
	MOVQ x+0(FP), R10
	MOVQ ldx+8(FP), BX
	SHLQ $2, BX
	LEAQ (R10)(BX*1), R11
	LEAQ (R11)(BX*1), R12
	MOVQ w+16(FP), DI
	MOVQ ldw+24(FP), BX
	SHLQ $1, BX
	LEAQ (DI)(BX*1), R14
	LEAQ (R14)(BX*1), R9
	LEAQ (R9)(BX*1), R13
	MOVQ k8+32(FP), CX
	MOVQ y+40(FP), R8
	MOVQ ldy+48(FP), DX
	SHLQ $2, DX
	LEAQ (R13)(BX*1), SI
	ADDQ $PFDIST, SI
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ   AX, AX
	CMPQ   n+56(FP), $3
	JEQ    g3

g2k:
	PREFETCHT0 (SI)(AX*8)
	BF((DI)(AX*2), Y12)
	BF((R14)(AX*2), Y13)
	BF((R9)(AX*2), Y14)
	BF((R13)(AX*2), Y15)
	VMOVUPS     (R10)(AX*4), Y8
	VMOVUPS     (R11)(AX*4), Y9
	VFMADD231PS Y8, Y12, Y0
	VFMADD231PS Y8, Y13, Y1
	VFMADD231PS Y8, Y14, Y2
	VFMADD231PS Y8, Y15, Y3
	VFMADD231PS Y9, Y12, Y4
	VFMADD231PS Y9, Y13, Y5
	VFMADD231PS Y9, Y14, Y6
	VFMADD231PS Y9, Y15, Y7
	ADDQ        $8, AX
	CMPQ        AX, CX
	JLT         g2k
	JMP         gnr

g3:
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

g3k:
	PREFETCHT0 (SI)(AX*8)
	BF((DI)(AX*2), Y12)
	BF((R14)(AX*2), Y13)
	BF((R9)(AX*2), Y14)
	BF((R13)(AX*2), Y15)
	VFMADD231PS (R10)(AX*4), Y12, Y0
	VFMADD231PS (R10)(AX*4), Y13, Y1
	VFMADD231PS (R10)(AX*4), Y14, Y2
	VFMADD231PS (R10)(AX*4), Y15, Y3
	VFMADD231PS (R11)(AX*4), Y12, Y4
	VFMADD231PS (R11)(AX*4), Y13, Y5
	VFMADD231PS (R11)(AX*4), Y14, Y6
	VFMADD231PS (R11)(AX*4), Y15, Y7
	VFMADD231PS (R12)(AX*4), Y12, Y8
	VFMADD231PS (R12)(AX*4), Y13, Y9
	VFMADD231PS (R12)(AX*4), Y14, Y10
	VFMADD231PS (R12)(AX*4), Y15, Y11
	ADDQ        $8, AX
	CMPQ        AX, CX
	JLT         g3k
	RED(Y8, X8, 0(R8)(DX*2))
	RED(Y9, X9, 4(R8)(DX*2))
	RED(Y10, X10, 8(R8)(DX*2))
	RED(Y11, X11, 12(R8)(DX*2))

gnr:
	RED(Y0, X0, 0(R8))
	RED(Y1, X1, 4(R8))
	RED(Y2, X2, 8(R8))
	RED(Y3, X3, 12(R8))
	RED(Y4, X4, 0(R8)(DX*1))
	RED(Y5, X5, 4(R8)(DX*1))
	RED(Y6, X6, 8(R8)(DX*1))
	RED(Y7, X7, 12(R8)(DX*1))
	VZEROUPPER
	RET

// Q8 widens the 8 int8 weights at mem, scales them by the float32 at smem (dequantized weights, as deq
// computes them) and adds their products with the x values in Y8 to acc.
#define Q8(mem, smem, acc) \
	VPMOVSXBD    mem, Y9 \
	VCVTDQ2PS    Y9, Y9 \
	VBROADCASTSS smem, Y10 \
	VMULPS       Y10, Y9, Y9 \
	VFMADD231PS  Y8, Y9, acc

// func gemvQ8G(x *float32, q *int8, s *float32, ldq, nb, k8, groups int, y *float32)
// For groups groups of eight int8 rows (row stride ldq bytes, consecutive scale groups of nb blocks from s,
// int8.go's layout): y[i] = dot(x[:k8], dequantized row i). k8 > 0, a multiple of 8.
TEXT ·gemvQ8G(SB), NOSPLIT, $0-64
	MOVQ x+0(FP), SI
	MOVQ q+8(FP), DI
	MOVQ s+16(FP), R15
	MOVQ ldq+24(FP), BX
	MOVQ k8+40(FP), CX
	MOVQ groups+48(FP), DX
	MOVQ y+56(FP), R8
	LEAQ (BX)(BX*2), R9  // 3 rows
	LEAQ (BX)(BX*4), R10 // 5 rows
	LEAQ (R9)(BX*4), R11 // 7 rows

qg:
	TESTQ DX, DX
	JLE   qgdone
	LEAQ  (DI)(BX*8), R13 // the next group's rows, prefetched one line per step
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	XORQ   R14, R14

qgk:
	PREFETCHT0 (R13)(R14*8)
	VMOVUPS    (SI)(R14*4), Y8
	LEAQ       (DI)(R14*1), R12
	MOVQ       R14, AX
	ANDQ       $-32, AX
	ADDQ       R15, AX // this block's eight scales
	Q8((R12), 0(AX), Y0)
	Q8((R12)(BX*1), 4(AX), Y1)
	Q8((R12)(BX*2), 8(AX), Y2)
	Q8((R12)(R9*1), 12(AX), Y3)
	Q8((R12)(BX*4), 16(AX), Y4)
	Q8((R12)(R10*1), 20(AX), Y5)
	Q8((R12)(R9*2), 24(AX), Y6)
	Q8((R12)(R11*1), 28(AX), Y7)
	ADDQ       $8, R14
	CMPQ       R14, CX
	JLT        qgk

	RED8
	MOVQ R13, DI
	MOVQ nb+32(FP), AX
	SHLQ $5, AX
	ADDQ AX, R15
	ADDQ $32, R8
	DECQ DX
	JMP  qg

qgdone:
	VZEROUPPER
	RET

// func gemvQ81(x *float32, q *int8, s *float32, k8 int) float32
// dot(x[:k8], one dequantized int8 row): its scales are s[0], s[8], s[16], ... (int8.go's layout).
TEXT ·gemvQ81(SB), NOSPLIT, $0-36
	MOVQ   x+0(FP), SI
	MOVQ   q+8(FP), DI
	MOVQ   s+16(FP), R15
	MOVQ   k8+24(FP), CX
	VXORPS Y0, Y0, Y0
	XORQ   R14, R14

q1k:
	VMOVUPS (SI)(R14*4), Y8
	MOVQ    R14, AX
	ANDQ    $-32, AX
	ADDQ    R15, AX
	Q8((DI)(R14*1), 0(AX), Y0)
	ADDQ    $8, R14
	CMPQ    R14, CX
	JLT     q1k

	VEXTRACTF128 $1, Y0, X15
	VADDPS       X15, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VMOVSS       X0, ret+32(FP)
	VZEROUPPER
	RET

// func packQ8Row(dst *float32, q *int8, s *float32, k8, n int)
// One int8 row into a panel of n rows (packBF16's layout): dst[(k/8)*n*8 + l] = dequantized q[k+l] for
// k < k8 in steps of 8, with the row's scales s[0], s[8], ... (int8.go's layout).
TEXT ·packQ8Row(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ q+8(FP), SI
	MOVQ s+16(FP), R15
	MOVQ k8+24(FP), CX
	MOVQ n+32(FP), R8
	SHLQ $5, R8 // bytes per k-step of the panel
	XORQ R14, R14

pqk:
	MOVQ         R14, AX
	ANDQ         $-32, AX
	ADDQ         R15, AX
	VPMOVSXBD    (SI)(R14*1), Y9
	VCVTDQ2PS    Y9, Y9
	VBROADCASTSS (AX), Y10
	VMULPS       Y10, Y9, Y9
	VMOVUPS      Y9, (DI)
	ADDQ         R8, DI
	ADDQ         $8, R14
	CMPQ         R14, CX
	JLT          pqk
	VZEROUPPER
	RET

// DQ8 widens the 8 int8 weights at mem to float32 in y and scales them by the float32 at smem (Y15 is
// clobbered).
#define DQ8(mem, smem, y) \
	VPMOVSXBD    mem, y \
	VCVTDQ2PS    y, y \
	VBROADCASTSS smem, Y15 \
	VMULPS       Y15, y, y

// func gemm4x3Q8(x *float32, ldx int, q *int8, ldq int, s0, s1, s2 *float32, k8 int, y *float32, ldy int)
// y[r*ldy+j] = dot(x[r*ldx:][:k8], dequantized int8 row j at q+j*ldq with scales sj[0], sj[8], ...) for
// r < 4, j < 3; k8 > 0, a multiple of 8. The FMAs of gemvQ8G in the same order: the same bits.
TEXT ·gemm4x3Q8(SB), NOSPLIT, $0-80
	MOVQ x+0(FP), R10
	MOVQ ldx+8(FP), BX
	SHLQ $2, BX
	LEAQ (R10)(BX*1), R11
	LEAQ (R11)(BX*1), R12
	LEAQ (R12)(BX*1), R13
	MOVQ q+16(FP), DI
	MOVQ ldq+24(FP), BX
	LEAQ (DI)(BX*1), R14
	LEAQ (R14)(BX*1), R9
	MOVQ s0+32(FP), BX
	MOVQ s1+40(FP), R15
	MOVQ s2+48(FP), SI
	MOVQ k8+56(FP), CX
	MOVQ y+64(FP), R8
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	XORQ   AX, AX

gqk:
	CMPQ        AX, CX
	JGE         gqr
	MOVQ        AX, DX
	ANDQ        $-32, DX // this block's scale, 32 bytes per block
	DQ8((DI)(AX*1), (BX)(DX*1), Y12)
	DQ8((R14)(AX*1), (R15)(DX*1), Y13)
	DQ8((R9)(AX*1), (SI)(DX*1), Y14)
	VMOVUPS     (R10)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y0
	VFMADD231PS Y15, Y13, Y1
	VFMADD231PS Y15, Y14, Y2
	VMOVUPS     (R11)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y3
	VFMADD231PS Y15, Y13, Y4
	VFMADD231PS Y15, Y14, Y5
	VMOVUPS     (R12)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y6
	VFMADD231PS Y15, Y13, Y7
	VFMADD231PS Y15, Y14, Y8
	VMOVUPS     (R13)(AX*4), Y15
	VFMADD231PS Y15, Y12, Y9
	VFMADD231PS Y15, Y13, Y10
	VFMADD231PS Y15, Y14, Y11
	ADDQ        $8, AX
	JMP         gqk

gqr:
	MOVQ ldy+72(FP), DX
	SHLQ $2, DX
	RED(Y0, X0, 0(R8))
	RED(Y1, X1, 4(R8))
	RED(Y2, X2, 8(R8))
	ADDQ DX, R8
	RED(Y3, X3, 0(R8))
	RED(Y4, X4, 4(R8))
	RED(Y5, X5, 8(R8))
	ADDQ DX, R8
	RED(Y6, X6, 0(R8))
	RED(Y7, X7, 4(R8))
	RED(Y8, X8, 8(R8))
	ADDQ DX, R8
	RED(Y9, X9, 0(R8))
	RED(Y10, X10, 4(R8))
	RED(Y11, X11, 8(R8))
	VZEROUPPER
	RET

// func gemvSegBF16(x *float32, w *uint16, ldw, k8, rows int, acc *float32, flags int, y *float32)
// One column segment of gemvBF16 for rows rows (a multiple of 8): row j's eight lane sums continue from
// acc[8*j:] (flags&1; else from zero) over x[:k8] and w[j*ldw:][:k8], then go back to acc, or (flags&2)
// are reduced into y[j] as gemvBF16 reduces them. Segments run in column order give gemvBF16's bits.
TEXT ·gemvSegBF16(SB), NOSPLIT, $0-64
	MOVQ x+0(FP), SI
	MOVQ w+8(FP), DI
	MOVQ ldw+16(FP), BX
	SHLQ $1, BX
	MOVQ k8+24(FP), CX
	MOVQ rows+32(FP), DX
	MOVQ acc+40(FP), R15
	MOVQ y+56(FP), R8
	LEAQ (BX)(BX*2), R9  // 3 rows
	LEAQ (BX)(BX*4), R10 // 5 rows
	LEAQ (R9)(BX*4), R11 // 7 rows

sg8:
	CMPQ DX, $8
	JLT  sgdone
	MOVQ DI, R12
	MOVQ SI, R13
	MOVQ CX, R14
	LEAQ (DI)(BX*8), AX
	TESTQ $1, flags+48(FP)
	JZ    sgzero
	VMOVUPS 0(R15), Y0
	VMOVUPS 32(R15), Y1
	VMOVUPS 64(R15), Y2
	VMOVUPS 96(R15), Y3
	VMOVUPS 128(R15), Y4
	VMOVUPS 160(R15), Y5
	VMOVUPS 192(R15), Y6
	VMOVUPS 224(R15), Y7
	JMP     sgk

sgzero:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

sgk:
	GV8STEP
	JNZ         sgk

	TESTQ $2, flags+48(FP)
	JZ    sgstore
	RED8
	JMP   sgnext

sgstore:
	VMOVUPS Y0, 0(R15)
	VMOVUPS Y1, 32(R15)
	VMOVUPS Y2, 64(R15)
	VMOVUPS Y3, 96(R15)
	VMOVUPS Y4, 128(R15)
	VMOVUPS Y5, 160(R15)
	VMOVUPS Y6, 192(R15)
	VMOVUPS Y7, 224(R15)

sgnext:
	LEAQ (DI)(BX*8), DI
	ADDQ $256, R15
	ADDQ $32, R8
	SUBQ $8, DX
	JMP  sg8

sgdone:
	VZEROUPPER
	RET

// G84RED stores one input row's four results of gemm8x4BF16Z (weight rows 0|1 in za, 2|3 in zb) at R8 and
// moves R8 to the next output row.
#define G84RED(za, zb) \
	VMOVAPS       za, Z4 \
	VEXTRACTF64X4 $1, za, Y5 \
	VMOVAPS       zb, Z6 \
	VEXTRACTF64X4 $1, zb, Y7 \
	RED(Y4, X4, 0(R8)) \
	RED(Y5, X5, 4(R8)) \
	RED(Y6, X6, 8(R8)) \
	RED(Y7, X7, 12(R8)) \
	ADDQ          DX, R8

// func gemm8x4BF16Z(x *float32, ldx int, w *uint16, ldw, k8 int, y *float32, ldy int)
// y[r*ldy+j] = dot(x[r*ldx:][:k8], w[j*ldw:][:k8]) for r < 8, j < 4 (bf16 weights; AVX-512F). Each Z
// accumulator holds two dot products of one input row, weight row j in lanes 0-7 and j+1 in lanes 8-15:
// every lane sums the columns, in the order and with the reduction, of the 8-lane kernels above, so the
// results have gemv's bits; each weight row is widened once for the eight input rows.
TEXT ·gemm8x4BF16Z(SB), NOSPLIT, $0-56
	MOVQ x+0(FP), R10
	MOVQ ldx+8(FP), BX
	SHLQ $2, BX
	LEAQ (BX)(BX*2), R11 // 3 rows
	LEAQ (BX)(BX*4), R12 // 5 rows
	LEAQ (R11)(BX*4), R13 // 7 rows
	MOVQ w+16(FP), DI
	MOVQ ldw+24(FP), R14
	SHLQ $1, R14
	LEAQ (R14)(R14*2), R9 // 3 weight rows
	MOVQ k8+32(FP), CX
	MOVQ y+40(FP), R8
	MOVQ ldy+48(FP), DX
	SHLQ $2, DX
	LEAQ (DI)(R14*4), SI // prefetch the weights of the next tiles (rows are contiguous in matmulRows)
	ADDQ $PFDIST, SI
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	VPXORD Z26, Z26, Z26
	VPXORD Z27, Z27, Z27
	VPXORD Z28, Z28, Z28
	VPXORD Z29, Z29, Z29
	VPXORD Z30, Z30, Z30
	VPXORD Z31, Z31, Z31

g84k:
	PREFETCHT0      (SI)
	VMOVDQU         (DI), X0
	VINSERTI128     $1, (DI)(R14*1), Y0, Y0
	VPMOVZXWD       Y0, Z0
	VPSLLD          $16, Z0, Z0
	VMOVDQU         (DI)(R14*2), X1
	VINSERTI128     $1, (DI)(R9*1), Y1, Y1
	VPMOVZXWD       Y1, Z1
	VPSLLD          $16, Z1, Z1
	VBROADCASTF64X4 (R10), Z2
	VFMADD231PS     Z2, Z0, Z16
	VFMADD231PS     Z2, Z1, Z17
	VBROADCASTF64X4 (R10)(BX*1), Z3
	VFMADD231PS     Z3, Z0, Z18
	VFMADD231PS     Z3, Z1, Z19
	VBROADCASTF64X4 (R10)(BX*2), Z2
	VFMADD231PS     Z2, Z0, Z20
	VFMADD231PS     Z2, Z1, Z21
	VBROADCASTF64X4 (R10)(R11*1), Z3
	VFMADD231PS     Z3, Z0, Z22
	VFMADD231PS     Z3, Z1, Z23
	VBROADCASTF64X4 (R10)(BX*4), Z2
	VFMADD231PS     Z2, Z0, Z24
	VFMADD231PS     Z2, Z1, Z25
	VBROADCASTF64X4 (R10)(R12*1), Z3
	VFMADD231PS     Z3, Z0, Z26
	VFMADD231PS     Z3, Z1, Z27
	VBROADCASTF64X4 (R10)(R11*2), Z2
	VFMADD231PS     Z2, Z0, Z28
	VFMADD231PS     Z2, Z1, Z29
	VBROADCASTF64X4 (R10)(R13*1), Z3
	VFMADD231PS     Z3, Z0, Z30
	VFMADD231PS     Z3, Z1, Z31
	ADDQ            $64, SI
	ADDQ            $16, DI
	ADDQ            $32, R10
	SUBQ            $8, CX
	JNZ             g84k

	G84RED(Z16, Z17)
	G84RED(Z18, Z19)
	G84RED(Z20, Z21)
	G84RED(Z22, Z23)
	G84RED(Z24, Z25)
	G84RED(Z26, Z27)
	G84RED(Z28, Z29)
	G84RED(Z30, Z31)
	VZEROUPPER
	RET
