package sched_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hangar-ml/hangar/internal/sched"
)

// BenchmarkPlace5kNodes100kRuns places 100,000 queued runs on 5,000 free
// nodes spread over 20 computes. A decision is one queued run placed or
// found not to fit; decisions/s is the figure to keep above 100,000.
//
//   - mixed: 1–8 free slots per node (~22,500 slots), 10% of runs need 2–4
//     nodes. Computes fill up, and blocked multi-node runs stop them.
//   - all-placed: 24 slots per node (~6,000 per compute), single-node runs
//     only: every run is placed through the heap (the worst case per
//     decision).
func BenchmarkPlace5kNodes100kRuns(b *testing.B) {
	const nodes, runs, computes = 5_000, 100_000, 20
	for _, bc := range []struct {
		name     string
		slots    func(r *rand.Rand) int
		multiPct int
	}{
		{"mixed", func(r *rand.Rand) int { return 1 + r.IntN(8) }, 10},
		{"all-placed", func(*rand.Rand) int { return 24 }, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			free := make([]sched.FreeNode, nodes)
			for i := range free {
				free[i] = sched.FreeNode{
					ID:        fmt.Sprintf("cluster-%02d-n%05d", i%computes, i),
					Compute:   fmt.Sprintf("cluster-%02d", i%computes),
					FreeSlots: bc.slots(r),
				}
			}
			queue := make([]sched.QueuedRun, runs)
			for i := range queue {
				k := 1
				if r.IntN(100) < bc.multiPct {
					k = 2 + r.IntN(3)
				}
				queue[i] = sched.QueuedRun{
					ID:        fmt.Sprintf("run-%06d", i),
					Compute:   fmt.Sprintf("cluster-%02d", r.IntN(computes)),
					NodeCount: k,
				}
			}
			var placed int
			b.ReportAllocs()
			for b.Loop() {
				placed = len(sched.Place(queue, free).Assignments)
			}
			b.ReportMetric(float64(runs)*float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
			b.ReportMetric(float64(placed), "placed/op")
		})
	}
}
