package storetest_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/internal/run"
	"github.com/hangar-ml/hangar/internal/store"
	"github.com/hangar-ml/hangar/internal/store/storetest"
)

// newRun returns a queued run with every field set but StartedAt, EndedAt
// and Error.
func newRun(ws, id string, created time.Time) run.Run {
	return run.Run{
		ID:                   id,
		Workspace:            ws,
		Experiment:           "digits",
		ComputeName:          "cpu-cluster",
		Status:               run.Queued,
		StatusReason:         "waiting for a node",
		Script:               "train.py",
		Args:                 []string{"--epochs", "3", ""},
		Env:                  map[string]string{"SEED": "1", "EMPTY": ""},
		Python:               "python3.12",
		Environment:          "torch:2",
		SnapshotDigest:       "sha256:abc",
		Inputs:               []run.Input{{Name: "data", Digest: "sha256:def", Dir: true}, {Name: "cfg", Digest: "sha256:123"}},
		NodeCount:            2,
		MaxRetries:           3,
		MaxPreemptionRetries: 5,
		MaxDurationSeconds:   86400,
		Tags:                 map[string]string{"owner": "alice"},
		CreatedBy:            "alice",
		CreatedAt:            created,
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		get := mustGet[run.Run](t)

		full := newRun("ws", "run-1", t0)
		full.Status, full.Command, full.Script = run.Failed, "python -c 'raise SystemExit(1)'", ""
		full.Retries, full.PreemptionRetries, full.Attempt = 1, 2, 4
		full.StartedAt, full.EndedAt = at(time.Minute), at(time.Hour)
		full.Error = &run.Error{Code: "UserError", Message: "exit code 1", Details: "Traceback…\nSystemExit: 1"}
		must(t, s.RunCreate(ctx, full))
		wantDiff(t, "RunGet", full, get(s.RunGet(ctx, "ws", "run-1")))
		wantDiff(t, "RunGet any workspace", full, get(s.RunGet(ctx, "", "run-1")))

		bare := run.Run{ID: "run-2", Workspace: "ws", Status: run.NotStarted}
		must(t, s.RunCreate(ctx, bare))
		wantDiff(t, "bare run", bare, get(s.RunGet(ctx, "ws", "run-2")))
		empty := newRun("ws", "run-3", t0)
		empty.Args, empty.Env, empty.Inputs, empty.Tags = []string{}, map[string]string{}, []run.Input{}, map[string]string{}
		must(t, s.RunCreate(ctx, empty))
		wantDiff(t, "empty collections", empty, get(s.RunGet(ctx, "ws", "run-3")))

		wantErr(t, s.RunCreate(ctx, newRun("other", "run-1", t0)), store.ErrConflict)
		_, err := s.RunGet(ctx, "other", "run-1")
		wantErr(t, err, run.ErrNotFound)
		_, err = s.RunGet(ctx, "ws", "run-9")
		wantErr(t, err, run.ErrNotFound)

		// RunUpdateCounters writes the counters and nothing else.
		changed := empty
		changed.Attempt, changed.Retries, changed.PreemptionRetries = 3, 1, 2
		changed.Status, changed.Experiment = run.Running, "other"
		must(t, s.RunUpdateCounters(ctx, changed))
		want := empty
		want.Attempt, want.Retries, want.PreemptionRetries = 3, 1, 2
		wantDiff(t, "after RunUpdateCounters", want, get(s.RunGet(ctx, "ws", "run-3")))
		wantErr(t, s.RunUpdateCounters(ctx, run.Run{ID: "run-9"}), run.ErrNotFound)
	})
}

func TestRunList(t *testing.T) {
	t.Parallel()
	mk := func(ws, id, exp, comp string, st run.Status, d time.Duration) run.Run {
		r := newRun(ws, id, at(d))
		r.Experiment, r.ComputeName, r.Status = exp, comp, st
		return r
	}
	runs := []run.Run{
		mk("a", "r1", "e1", "CPU", run.Queued, 0),
		mk("a", "r2", "e2", "gpu", run.Running, time.Minute),
		mk("a", "r3", "e1", "cpu", run.Completed, 2*time.Minute),
		mk("b", "r4", "e1", "cpu", run.Queued, 3*time.Minute),
		mk("a", "r0", "e1", "cpu", run.Queued, 0), // same time as r1: id breaks the tie
	}
	tests := []struct {
		name string
		f    store.RunFilter
		want []string
	}{
		{"everything", store.RunFilter{}, []string{"r4", "r3", "r2", "r1", "r0"}},
		{"workspace", store.RunFilter{Workspace: "a"}, []string{"r3", "r2", "r1", "r0"}},
		{"experiment", store.RunFilter{Workspace: "a", Experiment: "e1"}, []string{"r3", "r1", "r0"}},
		{"compute ignoring case", store.RunFilter{Workspace: "a", ComputeName: "Cpu"}, []string{"r3", "r1", "r0"}},
		{"statuses", store.RunFilter{Workspace: "a", Statuses: []run.Status{run.Queued, run.Running}}, []string{"r2", "r1", "r0"}},
		{"limit", store.RunFilter{Workspace: "a", Limit: 2}, []string{"r3", "r2"}},
		{"all filters", store.RunFilter{Workspace: "a", Experiment: "e1", ComputeName: "CPU", Statuses: []run.Status{run.Completed}, Limit: 5}, []string{"r3"}},
		{"no match", store.RunFilter{Experiment: "none"}, nil},
	}
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for _, r := range runs {
			must(t, s.RunCreate(ctx, r))
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var got []string
				for _, r := range mustGet[[]run.Run](t)(s.RunList(ctx, tt.f)) {
					got = append(got, r.ID)
				}
				wantDiff(t, "RunList IDs", tt.want, got)
			})
		}
	})
}

func TestRunListActive(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for i, st := range []run.Status{run.Queued, run.Completed, run.Running, run.Failed, run.Canceled, run.CancelRequested, run.NotStarted} {
			r := newRun("ws", fmt.Sprintf("r%d", i), at(time.Duration(10-i)*time.Minute))
			r.Status = st
			must(t, s.RunCreate(ctx, r))
		}
		var got []string
		for _, r := range mustGet[[]run.Run](t)(s.RunListActive(ctx)) {
			got = append(got, r.ID)
		}
		wantDiff(t, "RunListActive IDs (oldest first)", []string{"r6", "r5", "r2", "r0"}, got)
	})
}

func TestRunSetStatusIf(t *testing.T) {
	t.Parallel()
	fail := &run.Error{Code: "UserError", Message: "exit code 1"}
	// Steps apply in order to one queued run; the store does not check the
	// transition table (run.CanTransition), only From.
	steps := []struct {
		name        string
		from        []run.Status
		to          run.Status
		now         time.Time
		err         *run.Error
		wantOK      bool
		wantStatus  run.Status
		wantStarted time.Time
		wantEnded   time.Time
		wantErr     *run.Error
	}{
		{name: "placed", from: []run.Status{run.Queued}, to: run.Preparing, now: at(1 * time.Minute), wantOK: true, wantStatus: run.Preparing},
		{name: "lost race", from: []run.Status{run.Queued}, to: run.Running, now: at(2 * time.Minute), wantStatus: run.Preparing},
		{name: "started", from: []run.Status{run.Preparing}, to: run.Running, now: at(3 * time.Minute), wantOK: true, wantStatus: run.Running, wantStarted: at(3 * time.Minute)},
		{name: "preempted", from: []run.Status{run.Running, run.Finalizing}, to: run.Queued, now: at(4 * time.Minute), wantOK: true, wantStatus: run.Queued, wantStarted: at(3 * time.Minute)},
		{name: "restarted keeps first start", from: []run.Status{run.Queued}, to: run.Running, now: at(5 * time.Minute), wantOK: true, wantStatus: run.Running, wantStarted: at(3 * time.Minute)},
		{name: "failed", from: []run.Status{run.Running}, to: run.Failed, now: at(6 * time.Minute), err: fail, wantOK: true, wantStatus: run.Failed, wantStarted: at(3 * time.Minute), wantEnded: at(6 * time.Minute), wantErr: fail},
		{name: "ended is final", from: []run.Status{run.Running, run.CancelRequested}, to: run.Canceled, now: at(7 * time.Minute), wantStatus: run.Failed, wantStarted: at(3 * time.Minute), wantEnded: at(6 * time.Minute), wantErr: fail},
	}
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		r := newRun("ws", "run-1", t0)
		must(t, s.RunCreate(ctx, r))
		reason := r.StatusReason
		for _, st := range steps {
			ok, err := s.RunSetStatusIf(ctx, store.RunSetStatusIfParams{ID: "run-1", From: st.from, To: st.to, Reason: st.name, Error: st.err, Now: st.now})
			wantCAS(t, st.name, st.wantOK, ok, err)
			if st.wantOK {
				reason = st.name
			}
			want := r
			want.Status, want.StatusReason, want.StartedAt, want.EndedAt, want.Error = st.wantStatus, reason, st.wantStarted, st.wantEnded, st.wantErr
			wantDiff(t, st.name, want, mustGet[run.Run](t)(s.RunGet(ctx, "ws", "run-1")))
		}

		// A nil Error leaves the stored one; completing stamps EndedAt.
		r2 := newRun("ws", "run-2", t0)
		r2.Error = fail
		must(t, s.RunCreate(ctx, r2))
		ok, err := s.RunSetStatusIf(ctx, store.RunSetStatusIfParams{ID: "run-2", From: []run.Status{run.Queued}, To: run.Completed, Now: at(time.Hour)})
		wantCAS(t, "queued to completed", true, ok, err)
		r2.Status, r2.StatusReason, r2.EndedAt = run.Completed, "", at(time.Hour)
		wantDiff(t, "run-2", r2, mustGet[run.Run](t)(s.RunGet(ctx, "ws", "run-2")))

		_, err = s.RunSetStatusIf(ctx, store.RunSetStatusIfParams{ID: "nope", From: []run.Status{run.Queued}, To: run.Failed, Now: t0})
		wantErr(t, err, run.ErrNotFound)
		if _, err := s.RunSetStatusIf(ctx, store.RunSetStatusIfParams{ID: "run-1", To: run.Failed, Now: t0}); err == nil {
			t.Error("RunSetStatusIf with no From statuses: no error")
		}
	})
}

// TestRunSetStatusIfRace has many goroutines race the same compare-and-set:
// exactly one wins each round.
func TestRunSetStatusIfRace(t *testing.T) {
	t.Parallel()
	const rounds, racers = 5, 16
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		for round := range rounds {
			id := fmt.Sprintf("run-%d", round)
			must(t, s.RunCreate(ctx, newRun("ws", id, t0)))

			var (
				wg     sync.WaitGroup
				start  = make(chan struct{})
				mu     sync.Mutex
				wins   []string
				errors []error
			)
			for i := range racers {
				wg.Go(func() {
					<-start
					reason := fmt.Sprintf("racer %d", i)
					ok, err := s.RunSetStatusIf(ctx, store.RunSetStatusIfParams{
						ID: id, From: []run.Status{run.Queued}, To: run.Preparing, Reason: reason, Now: at(time.Minute),
					})
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errors = append(errors, err)
					}
					if ok {
						wins = append(wins, reason)
					}
				})
			}
			close(start)
			wg.Wait()
			if len(errors) > 0 {
				t.Fatalf("round %d: errors: %v", round, errors)
			}
			if len(wins) != 1 {
				t.Fatalf("round %d: %d winners %v, want exactly 1", round, len(wins), wins)
			}
			got := mustGet[run.Run](t)(s.RunGet(ctx, "ws", id))
			if got.Status != run.Preparing || got.StatusReason != wins[0] {
				t.Errorf("round %d: run is %s (%q), want Preparing (%q)", round, got.Status, got.StatusReason, wins[0])
			}
		}
	})
}

func intp(i int) *int { return &i }

func TestAttempt(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, s store.Store) {
		ctx := t.Context()
		get := mustGet[run.Attempt](t)
		list := mustGet[[]run.Attempt](t)
		must(t, s.RunCreate(ctx, newRun("ws", "r", t0)))

		a1 := run.Attempt{ID: run.AttemptID("r", 1), RunID: "r", Number: 1, NodeID: "n1", State: run.AttemptEnded,
			CreatedAt: at(time.Minute), StartedAt: at(2 * time.Minute), EndedAt: at(3 * time.Minute),
			ExitCode: intp(-9), Reason: run.ReasonPreempted}
		a3 := run.Attempt{ID: run.AttemptID("r", 3), RunID: "r", Number: 3, NodeID: "n3", State: run.AttemptAssigned, CreatedAt: at(5 * time.Minute)}
		a2 := run.Attempt{ID: run.AttemptID("r", 2), RunID: "r", Number: 2, NodeID: "n2", State: run.AttemptRunning,
			CreatedAt: at(4 * time.Minute), StartedAt: at(4 * time.Minute)}
		for _, a := range []run.Attempt{a3, a1, a2} {
			must(t, s.AttemptCreate(ctx, a))
		}
		wantDiff(t, "AttemptGet", a1, get(s.AttemptGet(ctx, a1.ID)))
		wantDiff(t, "AttemptListByRun", []run.Attempt{a1, a2, a3}, list(s.AttemptListByRun(ctx, "r")))
		wantDiff(t, "AttemptListLive", []run.Attempt{a2, a3}, list(s.AttemptListLive(ctx)))

		wantErr(t, s.AttemptCreate(ctx, a1), store.ErrConflict)
		wantErr(t, s.AttemptCreate(ctx, run.Attempt{ID: "r-x", RunID: "r", Number: 2, State: run.AttemptAssigned}), store.ErrConflict)
		wantErr(t, s.AttemptCreate(ctx, run.Attempt{ID: "q-1", RunID: "q", Number: 1, State: run.AttemptAssigned}), run.ErrNotFound)
		_, err := s.AttemptGet(ctx, "r-9")
		wantErr(t, err, store.ErrNotFound)

		// Start: assigned → running, once.
		ok, err := s.AttemptStartIf(ctx, a3.ID, at(6*time.Minute))
		wantCAS(t, "start assigned", true, ok, err)
		ok, err = s.AttemptStartIf(ctx, a3.ID, at(7*time.Minute))
		wantCAS(t, "start running", false, ok, err)
		a3.State, a3.StartedAt = run.AttemptRunning, at(6*time.Minute)
		wantDiff(t, "started", a3, get(s.AttemptGet(ctx, a3.ID)))

		// End: any live state → ended, once.
		ok, err = s.AttemptEndIf(ctx, a3.ID, intp(0), run.ReasonCompleted, at(8*time.Minute))
		wantCAS(t, "end running", true, ok, err)
		ok, err = s.AttemptEndIf(ctx, a3.ID, intp(1), run.ReasonFailed, at(9*time.Minute))
		wantCAS(t, "end ended", false, ok, err)
		ok, err = s.AttemptStartIf(ctx, a3.ID, at(9*time.Minute))
		wantCAS(t, "start ended", false, ok, err)
		a3.State, a3.ExitCode, a3.Reason, a3.EndedAt = run.AttemptEnded, intp(0), run.ReasonCompleted, at(8*time.Minute)
		wantDiff(t, "ended", a3, get(s.AttemptGet(ctx, a3.ID)))

		a4 := run.Attempt{ID: run.AttemptID("r", 4), RunID: "r", Number: 4, NodeID: "n4", State: run.AttemptAssigned, CreatedAt: at(10 * time.Minute)}
		must(t, s.AttemptCreate(ctx, a4))
		ok, err = s.AttemptEndIf(ctx, a4.ID, nil, run.ReasonNodeLost, at(11*time.Minute))
		wantCAS(t, "end assigned", true, ok, err)
		a4.State, a4.Reason, a4.EndedAt = run.AttemptEnded, run.ReasonNodeLost, at(11*time.Minute)
		wantDiff(t, "ended without exit code", a4, get(s.AttemptGet(ctx, a4.ID)))
		wantDiff(t, "AttemptListLive after ends", []run.Attempt{a2}, list(s.AttemptListLive(ctx)))

		_, err = s.AttemptStartIf(ctx, "r-9", t0)
		wantErr(t, err, store.ErrNotFound)
		_, err = s.AttemptEndIf(ctx, "r-9", nil, "", t0)
		wantErr(t, err, store.ErrNotFound)
	})
}
