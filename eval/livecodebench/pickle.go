package livecodebench

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Pickle opcodes the private-test blobs use (protocol 4, one string). Nothing else is accepted.
const (
	opProto           = 0x80
	opFrame           = 0x95
	opShortBinUnicode = 0x8c
	opBinUnicode      = 'X'
	opMemoize         = 0x94
	opStop            = '.'
)

// unpickleString decodes a pickle that holds exactly one str, accepting only the opcodes PROTO, FRAME,
// SHORT_BINUNICODE, BINUNICODE, MEMOIZE and STOP. It never runs a general unpickler: any other opcode is an error.
func unpickleString(b []byte) (string, error) {
	var stack []string
	i := 0
	need := func(n int, what string) error {
		if n < 0 || len(b)-i < n {
			return fmt.Errorf("pickle: truncated %s at byte %d", what, i)
		}
		return nil
	}
	for i < len(b) {
		op := b[i]
		at := i
		i++
		switch op {
		case opProto:
			if err := need(1, "PROTO"); err != nil {
				return "", err
			}
			if v := b[i]; v < 2 || v > 5 {
				return "", fmt.Errorf("pickle: unsupported protocol %d", v)
			}
			i++
		case opFrame:
			if err := need(8, "FRAME"); err != nil {
				return "", err
			}
			n := binary.LittleEndian.Uint64(b[i:])
			i += 8
			if n > uint64(len(b)-i) {
				return "", fmt.Errorf("pickle: frame of %d bytes at byte %d overruns the data (%d left)", n, at, len(b)-i)
			}
		case opShortBinUnicode, opBinUnicode:
			var n int
			if op == opShortBinUnicode {
				if err := need(1, "SHORT_BINUNICODE"); err != nil {
					return "", err
				}
				n = int(b[i])
				i++
			} else {
				if err := need(4, "BINUNICODE"); err != nil {
					return "", err
				}
				n = int(binary.LittleEndian.Uint32(b[i:]))
				i += 4
			}
			if err := need(n, "string"); err != nil {
				return "", err
			}
			s := b[i : i+n]
			i += n
			if !utf8.Valid(s) {
				return "", fmt.Errorf("pickle: string at byte %d is not valid UTF-8", at)
			}
			stack = append(stack, string(s))
		case opMemoize:
			if len(stack) == 0 {
				return "", fmt.Errorf("pickle: MEMOIZE on an empty stack at byte %d", at)
			}
		case opStop:
			if len(stack) != 1 {
				return "", fmt.Errorf("pickle: STOP with %d values on the stack, want one string", len(stack))
			}
			if i != len(b) {
				return "", fmt.Errorf("pickle: %d bytes after STOP", len(b)-i)
			}
			return stack[0], nil
		default:
			return "", fmt.Errorf("pickle: opcode 0x%02x at byte %d not allowed (only PROTO, FRAME, SHORT_BINUNICODE, BINUNICODE, MEMOIZE, STOP)", op, at)
		}
	}
	return "", fmt.Errorf("pickle: no STOP opcode")
}
