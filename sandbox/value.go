package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

// pyKind is the Python type of a value.
type pyKind uint8

const (
	pyNone pyKind = iota
	pyBool
	pyInt      // text: canonical decimal digits with an optional "-"
	pyFloat    // f
	pyStr      // text
	pyList     // items
	pyTuple    // items
	pyDict     // keys, items
	pyDecimal  // text: str(Decimal)
	pyFraction // text: "num/den"
	pyComplex  // items: real, imag (floats)
	pyOther    // text: the type's name; equal to nothing
)

// pyValue is a Python value as the driver encoded it (a program's answer) or as json.loads reads an expected
// output. Only the harness compares them, with Python's == semantics for these types (see pyEqual).
type pyValue struct {
	kind  pyKind
	b     bool
	f     float64
	text  string
	items []pyValue
	keys  []pyValue
}

// maxNesting bounds how deep a decoded value may be (the driver writes at most 1000 levels).
const maxNesting = 2000

// parseExpected reads an expected output as Python's json.loads does: integers (no ".", "e" or "E") are int,
// other numbers float, objects dicts with str keys.
func parseExpected(text string) (pyValue, error) {
	d := json.NewDecoder(strings.NewReader(text))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return pyValue{}, err
	}
	if d.More() {
		return pyValue{}, fmt.Errorf("trailing data after the JSON value")
	}
	return fromJSON(v, false, 0)
}

// parseAnswer reads the driver's encoding of a return value (driver.py _enc): plain JSON for None, bool, int,
// float, str and list; every object is a tag.
func parseAnswer(raw []byte) (pyValue, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return pyValue{}, err
	}
	return fromJSON(v, true, 0)
}

func fromJSON(v any, tagged bool, depth int) (pyValue, error) {
	if depth > maxNesting {
		return pyValue{}, fmt.Errorf("nested deeper than %d", maxNesting)
	}
	switch x := v.(type) {
	case nil:
		return pyValue{kind: pyNone}, nil
	case bool:
		return pyValue{kind: pyBool, b: x}, nil
	case json.Number:
		return numberValue(string(x))
	case string:
		return pyValue{kind: pyStr, text: x}, nil
	case []any:
		out := pyValue{kind: pyList, items: make([]pyValue, len(x))}
		for i, e := range x {
			var err error
			if out.items[i], err = fromJSON(e, tagged, depth+1); err != nil {
				return pyValue{}, err
			}
		}
		return out, nil
	case map[string]any:
		if !tagged {
			out := pyValue{kind: pyDict}
			ks := make([]string, 0, len(x))
			for k := range x {
				ks = append(ks, k)
			}
			sort.Strings(ks)
			for _, k := range ks {
				e, err := fromJSON(x[k], false, depth+1)
				if err != nil {
					return pyValue{}, err
				}
				out.keys = append(out.keys, pyValue{kind: pyStr, text: k})
				out.items = append(out.items, e)
			}
			return out, nil
		}
		return fromTag(x, depth)
	}
	return pyValue{}, fmt.Errorf("unexpected JSON value %T", v)
}

// numberValue classifies a JSON number as json.loads does.
func numberValue(s string) (pyValue, error) {
	if strings.ContainsAny(s, ".eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil && !isRangeErr(err) {
			return pyValue{}, fmt.Errorf("number %q: %v", truncate(s, 40), err)
		}
		return pyValue{kind: pyFloat, f: f}, nil // out of range: ±Inf or 0, as Python's float()
	}
	neg := strings.HasPrefix(s, "-")
	digits := strings.TrimLeft(strings.TrimPrefix(s, "-"), "0")
	if !isDigits(digits) {
		return pyValue{}, fmt.Errorf("number %q", truncate(s, 40))
	}
	if digits == "" {
		return pyValue{kind: pyInt, text: "0"}, nil
	}
	if neg {
		digits = "-" + digits
	}
	return pyValue{kind: pyInt, text: digits}, nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func fromTag(m map[string]any, depth int) (pyValue, error) {
	if len(m) != 1 {
		return pyValue{}, fmt.Errorf("tag object with %d keys", len(m))
	}
	for tag, v := range m {
		str, isStr := v.(string)
		arr, isArr := v.([]any)
		switch {
		case tag == "t" && isArr:
			l, err := fromJSON(arr, true, depth+1)
			l.kind = pyTuple
			return l, err
		case tag == "d" && isArr:
			out := pyValue{kind: pyDict}
			for _, kv := range arr {
				pair, ok := kv.([]any)
				if !ok || len(pair) != 2 {
					return pyValue{}, fmt.Errorf("dict entry is not a [key, value] pair")
				}
				k, err := fromJSON(pair[0], true, depth+1)
				if err != nil {
					return pyValue{}, err
				}
				e, err := fromJSON(pair[1], true, depth+1)
				if err != nil {
					return pyValue{}, err
				}
				out.keys = append(out.keys, k)
				out.items = append(out.items, e)
			}
			return out, nil
		case tag == "f" && isStr:
			switch str {
			case "inf":
				return pyValue{kind: pyFloat, f: math.Inf(1)}, nil
			case "-inf":
				return pyValue{kind: pyFloat, f: math.Inf(-1)}, nil
			case "nan":
				return pyValue{kind: pyFloat, f: math.NaN()}, nil
			}
		case tag == "D" && isStr:
			return pyValue{kind: pyDecimal, text: str}, nil
		case tag == "Q" && isArr && len(arr) == 2:
			n, okN := arr[0].(string)
			d, okD := arr[1].(string)
			if okN && okD {
				return pyValue{kind: pyFraction, text: n + "/" + d}, nil
			}
		case tag == "c" && isArr && len(arr) == 2:
			re, err1 := fromJSON(arr[0], true, depth+1)
			im, err2 := fromJSON(arr[1], true, depth+1)
			if err1 == nil && err2 == nil && re.kind == pyFloat && im.kind == pyFloat {
				return pyValue{kind: pyComplex, items: []pyValue{re, im}}, nil
			}
		case tag == "x" && isStr:
			return pyValue{kind: pyOther, text: str}, nil
		}
		return pyValue{}, fmt.Errorf("bad tag %q", tag)
	}
	panic("unreachable")
}

// pyEqual reports whether got == want in Python, for want as json.loads reads it (None, bool, int, float, str,
// list, dict with str keys) and got any decoded answer. Numbers of every kind compare by exact value (True == 1
// == 1.0 == Decimal("1.00") == Fraction(1)); NaN equals nothing; a list never equals a tuple; only str equals str;
// pyOther equals nothing.
func pyEqual(got, want pyValue) bool {
	switch want.kind {
	case pyNone:
		return got.kind == pyNone
	case pyStr:
		return got.kind == pyStr && got.text == want.text
	case pyList:
		if got.kind != pyList || len(got.items) != len(want.items) {
			return false
		}
		for i := range got.items {
			if !pyEqual(got.items[i], want.items[i]) {
				return false
			}
		}
		return true
	case pyDict:
		if got.kind != pyDict || len(got.keys) != len(want.keys) {
			return false
		}
		idx := make(map[string]int, len(want.keys))
		for i, k := range want.keys {
			idx[k.text] = i
		}
		// Each expected key must be matched exactly once: a forged encoding may repeat a key (a Python dict
		// cannot), and must not thereby skip another.
		for i, k := range got.keys {
			if k.kind != pyStr {
				return false // only a str equals a str key
			}
			j, ok := idx[k.text]
			if !ok || !pyEqual(got.items[i], want.items[j]) {
				return false
			}
			delete(idx, k.text)
		}
		return len(idx) == 0
	case pyBool, pyInt, pyFloat:
		return numEqual(got, want)
	}
	return false
}

// numEqual compares two numbers by exact value.
func numEqual(a, b pyValue) bool {
	if a.kind == pyFloat && b.kind == pyFloat {
		return a.f == b.f
	}
	if a.kind == pyInt && b.kind == pyInt {
		return a.text == b.text
	}
	if a.kind == pyComplex {
		if im := a.items[1].f; im != 0 {
			return false
		}
		return numEqual(a.items[0], b)
	}
	da, okA := exactDecimal(a)
	db, okB := exactDecimal(b)
	return okA && okB && da.equal(db)
}

// exactDecimal is the exact value of a number as a decimal (false: not a number, or a fraction whose value has no
// finite decimal expansion, which no int or float equals).
func exactDecimal(v pyValue) (decimal, bool) {
	switch v.kind {
	case pyBool:
		if v.b {
			return parseDecimal("1")
		}
		return parseDecimal("0")
	case pyInt:
		return parseDecimal(v.text)
	case pyFloat:
		return floatDecimal(v.f), true
	case pyDecimal:
		d, ok := parseDecimal(v.text)
		if ok && d.nan {
			return d, true // Decimal NaN: equal to nothing (decimal.equal)
		}
		return d, ok
	case pyFraction:
		num, den, _ := strings.Cut(v.text, "/")
		return fractionDecimal(num, den)
	}
	return decimal{}, false
}

// floatDecimal is the exact decimal value of a float64 (every finite binary float has one).
func floatDecimal(f float64) decimal {
	switch {
	case math.IsNaN(f):
		return decimal{nan: true}
	case math.IsInf(f, 0):
		return decimal{inf: true, neg: f < 0}
	case f == 0:
		return decimal{digits: "", exp: new(big.Int)}
	}
	mant, exp := math.Frexp(math.Abs(f)) // |f| = mant * 2^exp, mant in [0.5, 1)
	m := new(big.Int).SetUint64(uint64(mant * (1 << 53)))
	exp -= 53
	var digits *big.Int
	dexp := int64(0)
	if exp >= 0 {
		digits = m.Lsh(m, uint(exp))
	} else {
		// m / 2^k = m * 5^k / 10^k
		k := int64(-exp)
		digits = m.Mul(m, new(big.Int).Exp(big.NewInt(5), big.NewInt(k), nil))
		dexp = -k
	}
	d, _ := parseDecimal(digits.String())
	d.exp.Add(d.exp, big.NewInt(dexp))
	d.neg = f < 0
	return d
}

// fractionDecimal converts num/den (lowest terms, den > 0, as Python's Fraction keeps them) to an exact decimal
// when den is 2^a * 5^b, the only fractions an int or a float can equal.
func fractionDecimal(num, den string) (decimal, bool) {
	n, ok1 := new(big.Int).SetString(num, 10)
	d, ok2 := new(big.Int).SetString(den, 10)
	if !ok1 || !ok2 || d.Sign() <= 0 || len(den) > 2000 || len(num) > 1<<20 {
		return decimal{}, false
	}
	var a, b int64
	two, five := big.NewInt(2), big.NewInt(5)
	r := new(big.Int)
	for d.Cmp(big.NewInt(1)) > 0 {
		switch {
		case r.Mod(d, two).Sign() == 0:
			d.Quo(d, two)
			a++
		case r.Mod(d, five).Sign() == 0:
			d.Quo(d, five)
			b++
		default:
			return decimal{}, false
		}
	}
	// n / (2^a 5^b) = n * 2^(k-a) * 5^(k-b) / 10^k with k = max(a, b)
	k := max(a, b)
	n.Mul(n, new(big.Int).Exp(two, big.NewInt(k-a), nil))
	n.Mul(n, new(big.Int).Exp(five, big.NewInt(k-b), nil))
	neg := n.Sign() < 0
	dec, ok := parseDecimal(new(big.Int).Abs(n).String())
	if !ok {
		return decimal{}, false
	}
	dec.exp.Sub(dec.exp, big.NewInt(k))
	dec.neg = neg
	return dec, true
}

// topLevel applies the official harness's one conversion: a returned tuple is compared as a list.
func topLevel(v pyValue) pyValue {
	if v.kind == pyTuple {
		v.kind = pyList
	}
	return v
}

// repr renders a value roughly as Python's repr, for verdict details (at most about n bytes).
func (v pyValue) repr(n int) string {
	var b strings.Builder
	v.write(&b, n)
	return truncate(b.String(), n)
}

func (v pyValue) write(b *strings.Builder, n int) {
	if b.Len() > 2*n {
		return
	}
	switch v.kind {
	case pyNone:
		b.WriteString("None")
	case pyBool:
		if v.b {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case pyInt:
		b.WriteString(truncate(v.text, n))
	case pyFloat:
		switch {
		case math.IsNaN(v.f):
			b.WriteString("nan")
		case math.IsInf(v.f, 1):
			b.WriteString("inf")
		case math.IsInf(v.f, -1):
			b.WriteString("-inf")
		default:
			s := strconv.FormatFloat(v.f, 'g', -1, 64)
			if !strings.ContainsAny(s, ".eIN") {
				s += ".0"
			}
			b.WriteString(s)
		}
	case pyStr:
		b.WriteString(strconv.Quote(truncate(v.text, n)))
	case pyList, pyTuple:
		open, close := "[", "]"
		if v.kind == pyTuple {
			open, close = "(", ")"
		}
		b.WriteString(open)
		for i, e := range v.items {
			if i > 0 {
				b.WriteString(", ")
			}
			e.write(b, n)
			if b.Len() > 2*n {
				break
			}
		}
		b.WriteString(close)
	case pyDict:
		b.WriteString("{")
		for i := range v.keys {
			if i > 0 {
				b.WriteString(", ")
			}
			v.keys[i].write(b, n)
			b.WriteString(": ")
			v.items[i].write(b, n)
			if b.Len() > 2*n {
				break
			}
		}
		b.WriteString("}")
	case pyDecimal:
		fmt.Fprintf(b, "Decimal(%q)", truncate(v.text, n))
	case pyFraction:
		num, den, _ := strings.Cut(v.text, "/")
		fmt.Fprintf(b, "Fraction(%s, %s)", truncate(num, n), truncate(den, n))
	case pyComplex:
		b.WriteString("complex(")
		v.items[0].write(b, n)
		b.WriteString(", ")
		v.items[1].write(b, n)
		b.WriteString(")")
	case pyOther:
		fmt.Fprintf(b, "<%s>", truncate(v.text, 80))
	}
}
