package storetest_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// t0 has microseconds, the precision the store keeps.
var t0 = time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// mustGet returns v, failing the test on err.
func mustGet[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want errors.Is(err, %v)", err, target)
	}
}

func wantDiff(t *testing.T, what string, want, got any, opts ...cmp.Option) {
	t.Helper()
	if d := cmp.Diff(want, got, opts...); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

func wantCAS(t *testing.T, what string, want bool, got bool, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got != want {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

// wantDistinctVersions calls create from n goroutines at once and checks
// that each got its own version between 1 and n: creates of one name that
// race must never take the same next version.
func wantDistinctVersions(t *testing.T, n int, create func() (version int, err error)) {
	t.Helper()
	versions := make(chan int, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			v, err := create()
			if err != nil {
				errs <- err
				return
			}
			versions <- v
		})
	}
	wg.Wait()
	close(versions)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	seen := map[int]bool{}
	for v := range versions {
		if v < 1 || v > n || seen[v] {
			t.Errorf("version %d repeated or out of 1..%d", v, n)
		}
		seen[v] = true
	}
}
