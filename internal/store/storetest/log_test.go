package storetest_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hangar-ml/hangar/internal/run"
	"github.com/hangar-ml/hangar/internal/store"
	"github.com/hangar-ml/hangar/internal/store/storetest"
)

func createAttempts(t *testing.T, s store.Store, runID string, numbers ...int) {
	t.Helper()
	ctx := t.Context()
	must(t, s.RunCreate(ctx, newRun("ws", runID, t0)))
	for _, n := range numbers {
		must(t, s.AttemptCreate(ctx, run.Attempt{ID: run.AttemptID(runID, n), RunID: runID, Number: n, State: run.AttemptAssigned, CreatedAt: t0}))
	}
}

func TestLogAppend(t *testing.T) {
	t.Parallel()
	// Steps apply in order to the log of attempt r-1.
	steps := []struct {
		name       string
		offset     int64
		data       string
		wantStored int64
		wantErr    error
	}{
		{"first", 0, "hello ", 6, nil},
		{"retry", 0, "hello ", 6, nil},
		{"next", 6, "world\n", 12, nil},
		{"overlap stores the tail", 9, "ld\nmore\n", 17, nil},
		{"inside is a no-op", 2, "llo", 17, nil},
		{"empty at end", 17, "", 17, nil},
		{"gap", 20, "x", 17, store.ErrConflict},
		{"after gap refused", 17, "end\n", 21, nil},
	}
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		createAttempts(t, s, "r", 1)
		id := run.AttemptID("r", 1)
		for _, st := range steps {
			stored, err := s.LogAppend(ctx, id, st.offset, []byte(st.data))
			switch {
			case st.wantErr != nil:
				wantErr(t, err, st.wantErr)
			case err != nil:
				t.Fatalf("%s: %v", st.name, err)
			}
			if stored != st.wantStored {
				t.Fatalf("%s: stored = %d, want %d", st.name, stored, st.wantStored)
			}
		}
		got := mustGet[[]byte](t)(s.LogRead(ctx, "r", 0))
		if want := "hello world\nmore\nend\n"; string(got) != want {
			t.Errorf("LogRead = %q, want %q", got, want)
		}

		_, err := s.LogAppend(ctx, "r-9", 0, []byte("x"))
		wantErr(t, err, store.ErrNotFound)
		if _, err := s.LogAppend(ctx, id, -1, []byte("x")); err == nil || errors.Is(err, store.ErrConflict) {
			t.Errorf("LogAppend at offset -1: error = %v, want a non-conflict error", err)
		}
	})
}

func TestLogRead(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		// Attempts are created out of order and attempt 2 has no log: the
		// run's log is attempt 1's, then attempt 3's.
		createAttempts(t, s, "r", 3, 1, 2)
		createAttempts(t, s, "other", 1)
		for _, a := range []struct {
			n      int
			chunks []string
		}{
			{3, []string{"third\n", "attempt\n"}},
			{1, []string{"ab", "cdef", "g\n"}},
		} {
			var off int64
			for _, c := range a.chunks {
				off = mustGet[int64](t)(s.LogAppend(ctx, run.AttemptID("r", a.n), off, []byte(c)))
			}
		}
		_ = mustGet[int64](t)(s.LogAppend(ctx, run.AttemptID("other", 1), 0, []byte("not mine")))

		const full = "abcdefg\nthird\nattempt\n"
		for _, off := range []int64{-5, 0, 1, 2, 5, 7, 8, 9, 14, 20, 21, 22, 23, 1000} {
			t.Run(fmt.Sprint(off), func(t *testing.T) {
				got := mustGet[[]byte](t)(s.LogRead(ctx, "r", off))
				want := full[min(max(off, 0), int64(len(full))):]
				if string(got) != want {
					t.Errorf("LogRead(%d) = %q, want %q", off, got, want)
				}
			})
		}
		// Ranges: every offset and limit gives the matching slice, across
		// chunk and attempt boundaries.
		for off := int64(0); off <= int64(len(full)); off++ {
			for limit := int64(1); limit <= 6; limit++ {
				got := mustGet[[]byte](t)(s.LogReadRange(ctx, "r", off, limit))
				want := full[off:min(off+limit, int64(len(full)))]
				if string(got) != want {
					t.Errorf("LogReadRange(%d, %d) = %q, want %q", off, limit, got, want)
				}
			}
		}
		for _, id := range []string{"no-attempts", "unknown"} {
			if id == "no-attempts" {
				createAttempts(t, s, id)
			}
			if got := mustGet[[]byte](t)(s.LogRead(ctx, id, 0)); len(got) != 0 {
				t.Errorf("LogRead(%s) = %q, want nothing", id, got)
			}
		}
	})
}

// TestLogAppendConcurrent has several senders append the same log at once,
// as an agent retrying through flaky connections might: every byte is
// stored once, in order.
func TestLogAppendConcurrent(t *testing.T) {
	t.Parallel()
	var chunks []string
	for i := range 20 {
		chunks = append(chunks, fmt.Sprintf("line %02d %s\n", i, strings.Repeat("x", i)))
	}
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		createAttempts(t, s, "r", 1)
		id := run.AttemptID("r", 1)
		var wg sync.WaitGroup
		errs := make(chan error, 8*len(chunks))
		for range 8 {
			wg.Go(func() {
				var off int64
				for _, c := range chunks {
					stored, err := s.LogAppend(ctx, id, off, []byte(c))
					if err != nil {
						errs <- err
						return
					}
					off += int64(len(c))
					if stored < off {
						errs <- fmt.Errorf("stored %d after appending up to %d", stored, off)
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		got := mustGet[[]byte](t)(s.LogRead(ctx, "r", 0))
		if want := strings.Join(chunks, ""); string(got) != want {
			t.Errorf("log = %q, want %q", got, want)
		}
	})
}
