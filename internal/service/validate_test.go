package service

import (
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"digits-svc":            "",
		"abc":                   "",
		strings.Repeat("a", 32): "",
		"a1-2":                  "",
		"":                      "is required",
		"ab":                    "must be 3 to 32 characters long (it has 2)",
		strings.Repeat("a", 33): "must be 3 to 32 characters long (it has 33)",
		"Digits":                "must start with a lowercase letter",
		"1abc":                  "must start with a lowercase letter",
		"ab_c":                  "contain only lowercase letters",
		"abc-":                  "must not end with '-'",
		"déjà":                  "contain only lowercase letters",
	} {
		p := ValidateName(name)
		switch {
		case want == "" && p != nil:
			t.Errorf("ValidateName(%q) = %v, want ok", name, p)
		case want != "" && (p == nil || p.Field != "name" || !strings.Contains(p.Message, want)):
			t.Errorf("ValidateName(%q) = %v, want a name problem containing %q", name, p, want)
		}
	}
}

func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"digits-svc", "ab", "abc-", "Déjà", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if ValidateName(name) != nil {
			return
		}
		if len(name) < 3 || len(name) > 32 || name[0] < 'a' || name[0] > 'z' || strings.HasSuffix(name, "-") || strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			t.Fatalf("ValidateName(%q) accepted a name against the rules", name)
		}
	})
}
