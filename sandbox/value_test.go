package sandbox

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TestPyEqual compares answers as the driver encodes them with expected outputs as json.loads reads them; the
// wanted results are Python's == (checked with CPython 3.11), except where a forged encoding describes a value no
// Python object has.
func TestPyEqual(t *testing.T) {
	cases := []struct {
		name, got, want string
		equal           bool
	}{
		{"int", `3`, `3`, true},
		{"int differs", `3`, `4`, false},
		{"negative zero int", `0`, `-0`, true},
		{"big int", `123456789012345678901234567890`, `123456789012345678901234567890`, true},
		{"big int last digit", `123456789012345678901234567891`, `123456789012345678901234567890`, false},
		{"True == 1", `true`, `1`, true},
		{"False == 0.0", `false`, `0.0`, true},
		{"1 == true", `1`, `true`, true},
		{"2 != true", `2`, `true`, false},
		{"float == int", `2.0`, `2`, true},
		{"1e16 == 10**16", `1e+16`, `10000000000000000`, true},
		{"1e23 != 10**23", `1e+23`, `100000000000000000000000`, false},
		{"float vs float", `0.30000000000000004`, `0.3`, false},
		{"float same", `0.1`, `0.1`, true},
		{"-0.0 == 0", `-0.0`, `0`, true},
		{"inf == 1e999", `{"f":"inf"}`, `1e999`, true},
		{"-inf != 1e999", `{"f":"-inf"}`, `1e999`, false},
		{"nan", `{"f":"nan"}`, `0`, false},
		{"str", `"abc"`, `"abc"`, true},
		{"str vs int", `"1"`, `1`, false},
		{"None", `null`, `null`, true},
		{"None vs 0", `null`, `0`, false},
		{"0 vs None", `0`, `null`, false},
		{"list", `[1,"a",[2.0]]`, `[1, "a", [2]]`, true},
		{"list length", `[1]`, `[1, 2]`, false},
		{"top-level tuple is a list (official rule)", `{"t":[1,2]}`, `[1, 2]`, true},
		{"nested tuple is not a list", `[{"t":[1]}]`, `[[1]]`, false},
		{"dict", `{"d":[["b",2],["a",1]]}`, `{"a": 1, "b": 2}`, true},
		{"dict value differs", `{"d":[["a",1],["b",3]]}`, `{"a": 1, "b": 2}`, false},
		{"dict int key", `{"d":[[1,1]]}`, `{"1": 1}`, false},
		{"dict extra key", `{"d":[["a",1],["b",2],["c",3]]}`, `{"a": 1, "b": 2}`, false},
		{"forged dict repeating a key", `{"d":[["a",1],["a",1]]}`, `{"a": 1, "b": 2}`, false},
		{"dict vs list", `{"d":[]}`, `[]`, false},
		{"Decimal", `{"D":"2.50"}`, `2.5`, true},
		{"Decimal int", `{"D":"1E+2"}`, `100`, true},
		{"Decimal NaN", `{"D":"NaN"}`, `0`, false},
		{"Decimal huge exponent", `{"D":"1E+999999999999"}`, `1e308`, false},
		{"Fraction", `{"Q":["5","4"]}`, `1.25`, true},
		{"Fraction third", `{"Q":["1","3"]}`, `0.3333333333333333`, false},
		{"Fraction int", `{"Q":["-6","1"]}`, `-6`, true},
		{"complex real", `{"c":[2.0,0.0]}`, `2`, true},
		{"complex imaginary", `{"c":[2.0,1.0]}`, `2`, false},
		{"other type", `{"x":"set"}`, `[1, 2]`, false},
		{"other type vs null", `{"x":"A"}`, `null`, false},
		{"subnormal float vs decimal int", `5e-324`, `0`, false},
		{"max float vs int", `1.7976931348623157e+308`, `179769313486231570814527423731704356798070567525844996598917476803157260780028538760589558632766878171540458953514382464234321326889464182768467546703537516986049910576551282076245490090389328944075868508455133942304583236903222948165808559332123348274797826204144723168738177180919299881250404026184124858368`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseAnswer([]byte(c.got))
			if err != nil {
				t.Fatalf("parseAnswer(%s): %v", c.got, err)
			}
			want, err := parseExpected(c.want)
			if err != nil {
				t.Fatalf("parseExpected(%s): %v", c.want, err)
			}
			if eq := pyEqual(topLevel(got), want); eq != c.equal {
				t.Errorf("%s == %s: %v, want %v", c.got, c.want, eq, c.equal)
			}
		})
	}
}

func TestParseAnswerRejects(t *testing.T) {
	bad := []string{``, `{`, `{"q":1}`, `{"t":1}`, `{"d":[1]}`, `{"d":[[1]]}`, `{"f":"big"}`, `{"c":[1,2]}`,
		`{"Q":[1,2]}`, `{"a":1,"b":2}`, strings.Repeat("[", maxNesting+2) + strings.Repeat("]", maxNesting+2)}
	for _, b := range bad {
		if _, err := parseAnswer([]byte(b)); err == nil {
			t.Errorf("parseAnswer(%.40q) accepted", b)
		}
	}
	if _, err := parseExpected(`1 2`); err == nil {
		t.Error("parseExpected accepted trailing data")
	}
}

func TestFloatDecimal(t *testing.T) {
	cases := []struct {
		f    float64
		want string
	}{
		{0.5, "5e-1"}, {1, "1e0"}, {100, "1e2"}, {-2.25, "-225e-2"}, {0.1, "1000000000000000055511151231257827021181583404541015625e-55"},
	}
	for _, c := range cases {
		d := floatDecimal(c.f)
		sign := ""
		if d.neg {
			sign = "-"
		}
		if got := sign + d.digits + "e" + d.exp.String(); got != c.want {
			t.Errorf("floatDecimal(%v) = %s, want %s", c.f, got, c.want)
		}
	}
	if d := floatDecimal(math.SmallestNonzeroFloat64); len(d.digits) < 700 {
		t.Errorf("smallest subnormal has %d digits", len(d.digits))
	}
}

func TestRepr(t *testing.T) {
	v, err := parseAnswer([]byte(`[1, 2.0, "a", null, true, {"t":[1]}, {"d":[["k",{"f":"nan"}]]}, {"x":"set"}, {"D":"1.5"}, {"Q":["1","3"]}, {"c":[1.0,2.0]}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := `[1, 2.0, "a", None, True, (1), {"k": nan}, <set>, Decimal("1.5"), Fraction(1, 3), complex(1.0, 2.0)]`
	if got := v.repr(300); got != want {
		t.Errorf("repr = %s, want %s", got, want)
	}
	long, _ := parseAnswer([]byte("[" + strings.Repeat("1,", 10000) + "1]"))
	if got := long.repr(100); len(got) > 200 {
		t.Errorf("repr of a long list is %d bytes", len(got))
	}
}

// FuzzAnswer feeds arbitrary answer channels (what a hostile program writes) through the harness's decoding and
// comparison: never a panic, and whenever an answer is equal to an expected value both render the same canonical
// text (exact decimals, sorted keys, repeated keys kept), so no encoding can match what it does not describe.
func FuzzAnswer(f *testing.F) {
	f.Add([]byte(`{"d":[["a",1],["a",1]]}`), `{"a": 1, "b": 2}`)
	f.Add([]byte(`[1, {"t":[2.5, {"f":"inf"}]}, {"D":"1E+99999999999"}]`), `[1, [2.5, 1e999], 1]`)
	f.Add([]byte(`{"Q":["4","8"]}`), `0.5`)
	f.Add([]byte(`{"c":[1.0, -0.0]}`), `true`)
	f.Add([]byte(`{"d":[["b",[true]],["a",null]]}`), `{"a": null, "b": [1.0]}`)
	f.Fuzz(func(t *testing.T, answer []byte, expected string) {
		got, err := parseAnswer(answer)
		if err != nil {
			return
		}
		_ = got.repr(300)
		want, err := parseExpected(expected)
		if err != nil {
			return
		}
		if pyEqual(topLevel(got), want) {
			if a, b := canon(topLevel(got)), canon(want); a != b {
				t.Errorf("%s == %s but they render %s and %s", answer, expected, a, b)
			}
		}
	})
}

// canon renders a value canonically under Python's ==: every number as its exact decimal, dicts by sorted key.
func canon(v pyValue) string {
	switch v.kind {
	case pyNone:
		return "None"
	case pyStr:
		return strconv.Quote(v.text)
	case pyList, pyTuple:
		parts := make([]string, len(v.items))
		for i, e := range v.items {
			parts[i] = canon(e)
		}
		if v.kind == pyTuple {
			return "(" + strings.Join(parts, ",") + ")"
		}
		return "[" + strings.Join(parts, ",") + "]"
	case pyDict:
		parts := make([]string, len(v.keys))
		for i := range v.keys {
			parts[i] = canon(v.keys[i]) + ":" + canon(v.items[i])
		}
		sort.Strings(parts)
		return "{" + strings.Join(parts, ",") + "}"
	case pyComplex:
		if v.items[1].f == 0 {
			return canon(v.items[0])
		}
		return "complex"
	case pyOther:
		return "<" + v.text + ">"
	}
	d, ok := exactDecimal(v)
	switch {
	case !ok:
		return "inexact"
	case d.nan:
		return "nan"
	case d.inf && d.neg:
		return "-inf"
	case d.inf:
		return "inf"
	case d.digits == "":
		return "0"
	case d.neg:
		return "-" + d.digits + "e" + d.exp.String()
	}
	return d.digits + "e" + d.exp.String()
}
