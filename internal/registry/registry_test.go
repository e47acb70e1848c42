package registry

import (
	"reflect"
	"strings"
	"testing"
)

func TestRegistry(t *testing.T) {
	r := New[int]("widget")
	r.Register("b", 2)
	r.Register("a", 1)
	if got := r.Names(); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("Names %v", got)
	}
	if v, err := r.Lookup("b"); err != nil || v != 2 {
		t.Errorf("Lookup b: %v, %v", v, err)
	}
	if _, err := r.Lookup("c"); err == nil || !strings.Contains(err.Error(), `unknown widget "c" (known: [a b])`) {
		t.Errorf("Lookup c: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("duplicate registration did not panic")
		}
	}()
	r.Register("a", 3)
}
