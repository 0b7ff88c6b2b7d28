package sqlstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hangar-ml/hangar/internal/run"
	"github.com/hangar-ml/hangar/internal/store"
	"github.com/hangar-ml/hangar/internal/store/sqlstore"
	"github.com/hangar-ml/hangar/internal/store/storetest"
)

// BenchmarkRunCreate measures run submission as the API does it: RunCreate
// plus its EventAdd. The target is at least 2,000 submissions/s on SQLite.
//
//	go test -run '^$' -bench RunCreate ./internal/store/sqlstore
//
// "serial" is one client; "parallel" is GOMAXPROCS clients at once (the
// API's concurrency). The postgres cases run when HANGAR_TEST_POSTGRES_URL
// is set.
func BenchmarkRunCreate(b *testing.B) {
	for _, engine := range []struct {
		name string
		url  func(testing.TB) string
	}{
		{"sqlite", storetest.SQLiteURL},
		{"postgres", storetest.PostgresURL},
	} {
		for _, parallel := range []bool{false, true} {
			name := engine.name + "/serial"
			if parallel {
				name = engine.name + "/parallel"
			}
			b.Run(name, func(b *testing.B) {
				s, err := sqlstore.Open(context.Background(), engine.url(b))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				benchmarkSubmit(b, s, parallel)
			})
		}
	}
}

func benchmarkSubmit(b *testing.B, s *sqlstore.Store, parallel bool) {
	ctx := context.Background()
	var seq atomic.Int64
	submit := func() error {
		n := seq.Add(1)
		id := fmt.Sprintf("run-%012d", n)
		now := time.Unix(1700000000, 0).Add(time.Duration(n) * time.Microsecond)
		r := run.Run{
			ID: id, Workspace: "ws", Experiment: "bench", ComputeName: "cpu-cluster",
			Status: run.Queued, StatusReason: "waiting for a node", Script: "train.py",
			Args: []string{"--epochs", "3"}, Env: map[string]string{"SEED": "1"},
			SnapshotDigest: "sha256:0123456789abcdef", NodeCount: 1, MaxRetries: 3,
			Tags: map[string]string{"team": "bench"}, CreatedBy: "bench", CreatedAt: now,
		}
		if err := s.RunCreate(ctx, r); err != nil {
			return err
		}
		return s.EventAdd(ctx, store.Event{Workspace: "ws", Kind: "run", Object: id, Compute: "cpu-cluster",
			Type: "Queued", Message: "run submitted", Time: now})
	}

	b.ReportAllocs()
	start := time.Now()
	if parallel {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := submit(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for b.Loop() {
			if err := submit(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(seq.Load())/time.Since(start).Seconds(), "submissions/s")
}
