package model

import (
	"strings"
	"testing"
)

var refTests = []struct {
	ref     string
	name    string
	version int
	ok      bool
}{
	{"digits", "digits", 0, true},
	{"digits:3", "digits", 3, true},
	{"my.model-v2:10", "my.model-v2", 10, true},
	{"digits:0", "", 0, false},
	{"digits:-1", "", 0, false},
	{"digits:x", "", 0, false},
	{"digits:", "", 0, false},
	{":3", "", 0, false},
	{"", "", 0, false},
	{"a:1:2", "", 0, false},
}

func TestParseRef(t *testing.T) {
	t.Parallel()
	for _, tt := range refTests {
		name, version, err := ParseRef(tt.ref)
		if (err == nil) != tt.ok || name != tt.name || version != tt.version {
			t.Errorf("ParseRef(%q) = %q, %d, %v; want %q, %d, ok %v", tt.ref, name, version, err, tt.name, tt.version, tt.ok)
		}
	}
}

func FuzzParseRef(f *testing.F) {
	for _, tt := range refTests {
		f.Add(tt.ref)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		name, version, err := ParseRef(ref)
		if err != nil {
			return
		}
		if name == "" || strings.Contains(name, ":") || version < 0 {
			t.Fatalf("ParseRef(%q) = %q, %d", ref, name, version)
		}
	})
}

func TestValidateName(t *testing.T) {
	t.Parallel()
	for name, ok := range map[string]bool{
		"digits": true, "Digits_2.v-1": true, "9lives": true, strings.Repeat("m", 255): true,
		"": false, "-m": false, "_m": false, ".m": false, "a b": false, "a/b": false, "a:b": false, strings.Repeat("m", 256): false,
	} {
		if got := ValidateName(name) == nil; got != ok {
			t.Errorf("ValidateName(%q) ok = %v, want %v", name, got, ok)
		}
	}
}
