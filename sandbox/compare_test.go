package sandbox

import "testing"

// Expected values were computed with CPython 3.11's decimal.Decimal.
func TestParseDecimal(t *testing.T) {
	ok := []string{"1", "1.0", "01", "-0", "+0.0", "0e5", "1E+2", ".5", "5.", "1_000", "1__0", "_1", "1_", "__1__",
		"1_e5", "1._5", "1e_5", "inf", "-Infinity", "INF", "nan", "NaN12", "sNaN", "n_an", "1e-2", "1e999999999999",
		"١٢", "１２", "٣.٥"}
	bad := []string{"_", "1e", "e5", "abc", "1.2.3", "0x10", "+", "-", ".", "1.5e", "1,000", "nanx", "1e+", "--1"}
	for _, s := range ok {
		if _, good := parseDecimal(s); !good {
			t.Errorf("parseDecimal(%q) failed; Python accepts it", s)
		}
	}
	for _, s := range bad {
		if _, good := parseDecimal(s); good {
			t.Errorf("parseDecimal(%q) succeeded; Python rejects it", s)
		}
	}
	eq := []struct {
		a, b string
		want bool
	}{
		{"1", "1.0", true}, {"-0", "0", true}, {"0e5", "0", true}, {"1e2", "100", true}, {"1E+2", "100", true},
		{".5", "0.5", true}, {"5.", "5", true}, {"1_000", "1000", true}, {"1e-2", "0.01", true},
		{"3.14159", "3.1415899", false}, {"-1.5", "-1.50", true}, {"1e999999999999", "10e999999999998", true},
		{"inf", "INF", true}, {"-Infinity", "inf", false}, {"nan", "nan", false}, {"1", "-1", false},
		{"2", "2.0000000000000000000001", false}, {"١٢", "12", true},
	}
	for _, c := range eq {
		a, _ := parseDecimal(c.a)
		b, _ := parseDecimal(c.b)
		if got := a.equal(b); got != c.want {
			t.Errorf("Decimal(%q) == Decimal(%q): got %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestCompareStdout(t *testing.T) {
	cases := []struct {
		name, got, want string
		pass            bool
	}{
		{"exact", "YES\nNO\n", "YES\nNO\n", true},
		{"trailing whitespace", "YES  \nNO\t\n\n\n", "YES\nNO", true},
		{"leading blank lines", "\n\n3\n", "3\n", true},
		{"case matters", "Yes\n", "YES\n", false},
		{"float formatting exact decimal", "0.50\n", "0.5\n", true},
		{"float rounding is wrong", "0.3333333\n", "0.333333333\n", false},
		{"scientific", "1e3\n", "1000\n", true},
		{"tokens spacing", "1   2\t3\n", "1 2 3\n", true},
		{"extra token", "1 2 3 4\n", "1 2 3\n", false},
		{"missing line", "1\n", "1\n2\n", false},
		{"blank line inside counts", "1\n\n2\n", "1\n2\n", false},
		{"empty output", "", "0\n", false},
		{"both empty", "", "\n", true},
		{"large integers", "123456789012345678901234567890\n", "123456789012345678901234567890\n", true},
		{"large integers differ in last digit", "50000000000000000\n", "50000000000000001\n", false},
		{"words then numbers", "Case 1: 2.0\n", "Case 1: 2\n", false},
		{"crlf", "1\r\n2\r\n", "1\n2\n", true},
		{"python whitespace \\x1c", "1\x1c2\n", "1 2\n", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ok, why := CompareStdout(c.got, c.want)
			if ok != c.pass {
				t.Errorf("CompareStdout(%q, %q) = %v (%s), want %v", c.got, c.want, ok, why, c.pass)
			}
		})
	}
}

func FuzzCompareStdout(f *testing.F) {
	f.Add("1.0 2\n", "1 2.00\n")
	f.Add("YES\n", "yes")
	f.Add("1e999999 _1", "nan")
	f.Fuzz(func(t *testing.T, a, b string) {
		ok, _ := CompareStdout(a, b)
		if ok2, _ := CompareStdout(b, a); ok != ok2 {
			t.Errorf("not symmetric: %q %q", a, b)
		}
		if ok3, _ := CompareStdout(a, a); !ok3 {
			t.Errorf("not reflexive: %q", a)
		}
	})
}
