package tokenizer

import (
	"strings"
	"unicode/utf8"
)

// byteToRune is GPT-2's bytes_to_unicode table: every byte maps to a printable rune,
// and runeToByte is its inverse.
var (
	byteToRune [256]rune
	// runeToByte is indexed by rune (all byte-level runes are below 324); -1 marks other runes.
	runeToByte [324]int16
	// byteToString caches string(byteToRune[b]) so that mapping a piece allocates once.
	byteToString [256]string
)

func init() {
	for i := range runeToByte {
		runeToByte[i] = -1
	}
	n := 0
	for b := 0; b < 256; b++ {
		printable := (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
		if printable {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
		runeToByte[byteToRune[b]] = int16(b)
		byteToString[b] = string(byteToRune[b])
	}
}

// byteLevelMap maps the raw bytes of s to GPT-2's printable runes.
func byteLevelMap(s string) string {
	return string(appendByteLevelMapped(make([]byte, 0, 2*len(s)), s))
}

// appendByteLevelMapped appends the byte-level runes of the bytes of s, UTF-8 encoded.
func appendByteLevelMapped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		dst = append(dst, byteToString[s[i]]...)
	}
	return dst
}

// appendByteLevelDecoded appends the bytes that token stands for, as the ByteLevel decoder does:
// each rune is mapped back to its byte; a token holding any rune outside the table (an added token
// such as "<｜User｜>") contributes its own UTF-8 bytes unchanged.
func appendByteLevelDecoded(dst []byte, token string) []byte {
	start := len(dst)
	for _, r := range token {
		if r >= rune(len(runeToByte)) || runeToByte[r] < 0 {
			return append(dst[:start], token...)
		}
		dst = append(dst, byte(runeToByte[r]))
	}
	return dst
}

// lossyUTF8 converts b to a string the way Rust's String::from_utf8_lossy does: every maximal
// ill-formed subsequence becomes one U+FFFD (Unicode's "substitution of maximal subparts").
func lossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 8)
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || size > 1 {
			sb.Write(b[i : i+size])
			i += size
			continue
		}
		sb.WriteRune(utf8.RuneError)
		i += maximalSubpart(b[i:])
	}
	return sb.String()
}

// maximalSubpart returns the length (at least 1) of the maximal prefix of b that is a prefix of some
// well-formed UTF-8 sequence; b must not start with a complete valid sequence.
func maximalSubpart(b []byte) int {
	n := expectedLen(b[0])
	if n == 0 {
		return 1
	}
	lo, hi := secondByteRange(b[0])
	i := 1
	for ; i < n && i < len(b); i++ {
		c := b[i]
		if i == 1 {
			if c < lo || c > hi {
				break
			}
		} else if c < 0x80 || c > 0xBF {
			break
		}
	}
	return i
}

// expectedLen is the length of the UTF-8 sequence that lead byte c starts (0 if c cannot start one).
func expectedLen(c byte) int {
	switch {
	case c < 0x80:
		return 1
	case c >= 0xC2 && c <= 0xDF:
		return 2
	case c >= 0xE0 && c <= 0xEF:
		return 3
	case c >= 0xF0 && c <= 0xF4:
		return 4
	}
	return 0
}

// secondByteRange is the range of valid second bytes after lead byte c (Unicode Table 3-7).
func secondByteRange(c byte) (byte, byte) {
	switch c {
	case 0xE0:
		return 0xA0, 0xBF
	case 0xED:
		return 0x80, 0x9F
	case 0xF0:
		return 0x90, 0xBF
	case 0xF4:
		return 0x80, 0x8F
	}
	return 0x80, 0xBF
}

// incompleteTail returns how many trailing bytes of b form a valid but unfinished UTF-8 sequence
// (0 when b ends on a character boundary or with bytes that can never become valid).
func incompleteTail(b []byte) int {
	for k := 1; k <= 3 && k <= len(b); k++ {
		lead := b[len(b)-k]
		if lead >= 0x80 && lead < 0xC0 {
			continue // continuation byte: look further back
		}
		n := expectedLen(lead)
		if n <= k || maximalSubpart(b[len(b)-k:]) != k {
			return 0
		}
		return k
	}
	return 0
}
