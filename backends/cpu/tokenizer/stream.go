package tokenizer

// StreamDecoder turns ids fed one at a time into text deltas, never emitting half a UTF-8
// character: bytes of an unfinished character are held until the ids that complete it arrive.
// The concatenation of every Add result and the final Flush equals Decode (or DecodeSkipSpecial)
// of all the ids. A StreamDecoder is not safe for concurrent use; make one per sequence.
type StreamDecoder struct {
	t *Tokenizer
	// SkipSpecial drops special tokens, as DecodeSkipSpecial does.
	SkipSpecial bool
	pending     []byte
	started     bool // for tokenizers without a ByteLevel decoder (tokens joined by spaces)
}

// NewStreamDecoder returns a streaming decoder for t.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder { return &StreamDecoder{t: t} }

// Add feeds one id and returns the text that became complete (possibly "").
func (d *StreamDecoder) Add(id int) string {
	if !d.t.byteLevelDecoder {
		tok, ok := d.t.token(id, d.SkipSpecial)
		if !ok {
			return ""
		}
		if d.started {
			tok = " " + tok
		}
		d.started = true
		return tok
	}
	d.pending = d.t.appendBytes(d.pending, id, d.SkipSpecial)
	keep := incompleteTail(d.pending)
	n := len(d.pending) - keep
	if n == 0 {
		return ""
	}
	out := lossyUTF8(d.pending[:n])
	d.pending = append(d.pending[:0], d.pending[n:]...)
	return out
}

// Flush returns whatever is still held (an unfinished character becomes U+FFFD) and resets the decoder.
func (d *StreamDecoder) Flush() string {
	out := lossyUTF8(d.pending)
	d.pending = d.pending[:0]
	d.started = false
	return out
}

// Pending reports whether bytes of an unfinished character are held.
func (d *StreamDecoder) Pending() bool { return len(d.pending) > 0 }
