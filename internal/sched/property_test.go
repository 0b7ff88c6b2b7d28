package sched_test

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/hangar-ml/hangar/internal/sched"
)

// checkPlan reports every broken invariant of plan = Place(queue, free).
func checkPlan(queue []sched.QueuedRun, free []sched.FreeNode, plan sched.Plan) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	// The first entry of a node ID is the one that counts.
	nodes := map[string]sched.FreeNode{}
	for _, n := range free {
		if _, ok := nodes[n.ID]; !ok {
			nodes[n.ID] = n
		}
	}
	left := map[string]int{}
	for id, n := range nodes {
		left[id] = max(n.FreeSlots, 0)
	}

	// Assignments follow the queue (run IDs are unique in these tests).
	placed := make([]bool, len(queue))
	qi := 0
	for _, a := range plan.Assignments {
		for qi < len(queue) && queue[qi].ID != a.RunID {
			qi++
		}
		if qi == len(queue) {
			bad("assignment of %q is not in queue order (or not queued)", a.RunID)
			break
		}
		r := queue[qi]
		placed[qi] = true
		qi++
		if len(a.NodeIDs) != r.NodeCount {
			bad("run %q needs %d nodes, got %v", r.ID, r.NodeCount, a.NodeIDs)
		}
		seen := map[string]bool{}
		for _, id := range a.NodeIDs {
			n, ok := nodes[id]
			switch {
			case !ok:
				bad("run %q got unknown node %q", r.ID, id)
			case n.Compute != r.Compute:
				bad("run %q of %q got node %q of %q", r.ID, r.Compute, id, n.Compute)
			case seen[id]:
				bad("run %q got node %q twice", r.ID, id)
			}
			seen[id] = true
			left[id]--
		}
	}
	for id, l := range left {
		if l < 0 {
			bad("node %q got %d more attempts than its %d free slots", id, -l, nodes[id].FreeSlots)
		}
	}

	// FIFO, no starvation and no idle capacity left behind: per compute,
	// the placed runs are a prefix of its valid runs, and the first run
	// not placed needs more nodes than still have a free slot.
	stopped := map[string]bool{}
	for i, r := range queue {
		if r.NodeCount < 1 {
			if placed[i] {
				bad("run %q with node count %d placed", r.ID, r.NodeCount)
			}
			continue
		}
		switch {
		case placed[i] && stopped[r.Compute]:
			bad("run %q placed after an earlier run of %q was not", r.ID, r.Compute)
		case !placed[i] && !stopped[r.Compute]:
			stopped[r.Compute] = true
			withSlots := 0
			for id, n := range nodes {
				if n.Compute == r.Compute && left[id] > 0 {
					withSlots++
				}
			}
			if withSlots >= r.NodeCount {
				bad("run %q needs %d nodes and %d of %q have a free slot, yet it was not placed", r.ID, r.NodeCount, withSlots, r.Compute)
			}
		}
	}
	return errors.Join(errs...)
}

// placeModel is Place written the slow, obvious way: for every run, sort
// its compute's nodes with a free slot and take the first k.
func placeModel(queue []sched.QueuedRun, free []sched.FreeNode) sched.Plan {
	type slot struct {
		id, compute string
		left        int
	}
	var nodes []*slot
	seen := map[string]bool{}
	for _, n := range free {
		if seen[n.ID] {
			continue
		}
		seen[n.ID] = true
		if n.FreeSlots > 0 {
			nodes = append(nodes, &slot{n.ID, n.Compute, n.FreeSlots})
		}
	}
	var plan sched.Plan
	stopped := map[string]bool{}
	for _, r := range queue {
		if r.NodeCount < 1 || stopped[r.Compute] {
			continue
		}
		var cands []*slot
		for _, n := range nodes {
			if n.compute == r.Compute && n.left > 0 {
				cands = append(cands, n)
			}
		}
		if len(cands) < r.NodeCount {
			if r.NodeCount > 1 {
				stopped[r.Compute] = true // no backfill past a multi-node run
			}
			continue // backfill: a later run may fit
		}
		slices.SortFunc(cands, func(a, b *slot) int {
			return cmp.Or(cmp.Compare(b.left, a.left), strings.Compare(a.id, b.id))
		})
		a := sched.Assignment{RunID: r.ID}
		for _, n := range cands[:r.NodeCount] {
			n.left--
			a.NodeIDs = append(a.NodeIDs, n.id)
		}
		plan.Assignments = append(plan.Assignments, a)
	}
	return plan
}

func randomQueue(r *rand.Rand) ([]sched.QueuedRun, []sched.FreeNode) {
	computes := 1 + r.IntN(4)
	var free []sched.FreeNode
	for range r.IntN(30) {
		free = append(free, sched.FreeNode{
			ID:        fmt.Sprintf("n%02d", r.IntN(40)), // sometimes repeated
			Compute:   fmt.Sprintf("c%d", r.IntN(computes)),
			FreeSlots: r.IntN(5) - 1,
		})
	}
	var queue []sched.QueuedRun
	for i := range r.IntN(60) {
		k := 1
		if r.IntN(4) == 0 {
			k = r.IntN(6) - 1
		}
		queue = append(queue, sched.QueuedRun{
			ID:        fmt.Sprintf("r%03d", i),
			Compute:   fmt.Sprintf("c%d", r.IntN(computes+1)), // sometimes one without nodes
			NodeCount: k,
		})
	}
	return queue, free
}

func TestPlaceProperties(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3, 42, 2025} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(seed, 0x73636865_64))
			for i := range 3000 {
				queue, free := randomQueue(r)
				queueCopy, freeCopy := slices.Clone(queue), slices.Clone(free)
				got := sched.Place(queue, free)
				if err := checkPlan(queue, free, got); err != nil {
					t.Fatalf("case %d: %v\nqueue: %+v\nfree: %+v\nplan: %+v", i, err, queue, free, got)
				}
				if diff := gocmp.Diff(placeModel(queue, free), got); diff != "" {
					t.Fatalf("case %d: Place differs from the model (-model +Place):\n%s\nqueue: %+v\nfree: %+v", i, diff, queue, free)
				}
				if !slices.Equal(queue, queueCopy) || !slices.Equal(free, freeCopy) {
					t.Fatalf("case %d: Place modified its arguments", i)
				}
				// Deterministic, whatever the order of the free list
				// (apart from which entry of a repeated ID comes first).
				if diff := gocmp.Diff(got, sched.Place(queue, free)); diff != "" {
					t.Fatalf("case %d: second Place differs:\n%s", i, diff)
				}
				if !hasRepeatedID(free) {
					shuffled := slices.Clone(free)
					r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
					if diff := gocmp.Diff(got, sched.Place(queue, shuffled)); diff != "" {
						t.Fatalf("case %d: shuffled free list changed the plan:\n%s", i, diff)
					}
				}
			}
		})
	}
}

func hasRepeatedID(free []sched.FreeNode) bool {
	seen := map[string]bool{}
	for _, n := range free {
		if seen[n.ID] {
			return true
		}
		seen[n.ID] = true
	}
	return false
}

// Fuzz input: byte 0 is the number of free nodes; then 3 bytes per node
// (ID, compute, signed free slots), then 2 bytes per run (compute, signed
// node count). Names are small numbers, so IDs repeat and computes collide.
func decodePlace(b []byte) ([]sched.QueuedRun, []sched.FreeNode) {
	if len(b) == 0 {
		return nil, nil
	}
	nn := int(b[0])
	b = b[1:]
	var free []sched.FreeNode
	for ; nn > 0 && len(b) >= 3; nn, b = nn-1, b[3:] {
		free = append(free, sched.FreeNode{
			ID:        fmt.Sprintf("n%d", b[0]),
			Compute:   fmt.Sprintf("c%d", b[1]%8),
			FreeSlots: int(int8(b[2])),
		})
	}
	var queue []sched.QueuedRun
	for i := 0; len(b) >= 2; i, b = i+1, b[2:] {
		queue = append(queue, sched.QueuedRun{
			ID:        fmt.Sprintf("r%d", i),
			Compute:   fmt.Sprintf("c%d", b[0]%8),
			NodeCount: int(int8(b[1])),
		})
	}
	return queue, free
}

func encodePlace(queue []sched.QueuedRun, free []sched.FreeNode) []byte {
	index := func(names *[]string, s string) byte {
		if i := slices.Index(*names, s); i >= 0 {
			return byte(i)
		}
		*names = append(*names, s)
		return byte(len(*names) - 1)
	}
	var ids, computes []string
	b := []byte{byte(len(free))}
	for _, n := range free {
		b = append(b, index(&ids, n.ID), index(&computes, n.Compute), byte(int8(n.FreeSlots)))
	}
	for _, r := range queue {
		b = append(b, index(&computes, r.Compute), byte(int8(r.NodeCount)))
	}
	return b
}

func FuzzPlace(f *testing.F) {
	for _, tc := range placeCases {
		f.Add(encodePlace(tc.queue, tc.free))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		queue, free := decodePlace(data)
		got := sched.Place(queue, free)
		if err := checkPlan(queue, free, got); err != nil {
			t.Fatalf("%v\nqueue: %+v\nfree: %+v\nplan: %+v", err, queue, free, got)
		}
		if diff := gocmp.Diff(placeModel(queue, free), got); diff != "" {
			t.Fatalf("Place differs from the model (-model +Place):\n%s", diff)
		}
	})
}

func TestFuzzEncoding(t *testing.T) {
	t.Parallel()
	// The seeds must decode to the same shape as the table cases.
	for _, tc := range placeCases {
		queue, free := decodePlace(encodePlace(tc.queue, tc.free))
		if len(queue) != len(tc.queue) || len(free) != len(tc.free) {
			t.Errorf("%s: decoded %d runs, %d nodes; want %d, %d", tc.name, len(queue), len(free), len(tc.queue), len(tc.free))
		}
		want, got := sched.Place(tc.queue, tc.free), sched.Place(queue, free)
		if len(want.Assignments) != len(got.Assignments) {
			t.Errorf("%s: decoded case places %d runs, want %d", tc.name, len(got.Assignments), len(want.Assignments))
		}
	}
}
