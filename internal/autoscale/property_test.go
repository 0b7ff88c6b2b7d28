package autoscale_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-ml/hangar/internal/autoscale"
	"github.com/hangar-ml/hangar/internal/node"
)

// checkDecision reports every broken invariant of d = Decide(o, p, now).
func checkDecision(o autoscale.Observed, p autoscale.Policy, now time.Time, d autoscale.Decision) error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	minNodes, maxNodes, demand := max(p.MinNodes, 0), max(p.MaxNodes, 0), max(o.Demand, 0)
	byID := map[string]autoscale.NodeView{}
	var counted, leaving, idleFree, free int
	for _, n := range o.Nodes {
		byID[n.ID] = n
		if !n.State.Counted() {
			continue
		}
		counted++
		if n.State == node.Leaving {
			leaving++
		}
		if n.Busy == 0 && n.State == node.Idle {
			idleFree++
		}
		if n.Busy == 0 && (n.State == node.Idle || n.State == node.Preparing) {
			free++
		}
	}
	live := counted - leaving

	if d.Create < 0 {
		bad("Create = %d < 0", d.Create)
	}
	if (d.Create > 0) != (d.CreateReason != "") {
		bad("Create = %d with reason %q", d.Create, d.CreateReason)
	}
	// Never above max_nodes, unless it already was (then nothing is created).
	if counted <= maxNodes && counted+d.Create > maxNodes {
		bad("counted %d + create %d > max_nodes %d", counted, d.Create, maxNodes)
	}
	if counted > maxNodes && d.Create != 0 {
		bad("already over max_nodes (%d > %d) but Create = %d", counted, maxNodes, d.Create)
	}
	// Quota never exceeded by creates.
	if p.VCPUsPerNode > 0 && d.Create > 0 && counted+d.Create > max(p.QuotaVCPUs, 0)/p.VCPUsPerNode {
		bad("(counted %d + create %d) × %d vCPUs > quota %d", counted, d.Create, p.VCPUsPerNode, p.QuotaVCPUs)
	}
	// Nothing created beyond what demand or min_nodes ask for.
	if wanted, forMin := max(demand-free, 0), max(minNodes-counted, 0); d.Create > max(wanted, forMin) {
		bad("Create = %d > max(wanted %d, for min %d)", d.Create, wanted, forMin)
	}
	if wanted := max(demand-free, 0); (wanted > d.Create) != (d.Blocked != "") {
		bad("wanted %d, Create %d, Blocked %q", wanted, d.Create, d.Blocked)
	}

	// Nodes over max_nodes (it was lowered) go at once, oldest idle first,
	// whatever their idle time and the demand.
	overRemoved := 0
	if minNodes <= maxNodes {
		overRemoved = min(max(live-maxNodes, 0), idleFree)
	}
	seen := map[string]bool{}
	for i, r := range d.Remove {
		n, ok := byID[r.NodeID]
		switch {
		case !ok:
			bad("removed unknown node %q", r.NodeID)
		case seen[r.NodeID]:
			bad("removed %q twice", r.NodeID)
		case n.State != node.Idle:
			bad("removed %q in state %s", r.NodeID, n.State)
		case n.Busy != 0:
			bad("removed %q with %d attempts on it", r.NodeID, n.Busy)
		case i >= overRemoved && now.Sub(idleStart(n)) < p.IdleAfter:
			bad("removed %q idle for %v < %v", r.NodeID, now.Sub(idleStart(n)), p.IdleAfter)
		case r.Reason == "":
			bad("removed %q without a reason", r.NodeID)
		}
		seen[r.NodeID] = true
		if i > 0 && idleStart(byID[d.Remove[i-1].NodeID]).After(idleStart(n)) {
			bad("removals not oldest-idle first: %q before %q", d.Remove[i-1].NodeID, r.NodeID)
		}
	}
	if len(d.Remove) > 0 {
		if live-len(d.Remove) < minNodes {
			bad("live %d − removed %d < min_nodes %d", live, len(d.Remove), minNodes)
		}
		if len(d.Remove) > overRemoved && idleFree-len(d.Remove) < demand {
			bad("removed %d of %d idle free nodes with demand %d", len(d.Remove), idleFree, demand)
		}
		if d.Create > 0 {
			bad("creates %d and removes %d at once", d.Create, len(d.Remove))
		}
	}
	if want := live + d.Create - len(d.Remove); d.Target != want {
		bad("Target = %d, want live %d + create %d − removed %d", d.Target, live, d.Create, len(d.Remove))
	}
	if !d.NextCheck.IsZero() && !d.NextCheck.After(now) {
		bad("NextCheck %v not after now %v", d.NextCheck, now)
	}
	return errors.Join(errs...)
}

func idleStart(n autoscale.NodeView) time.Time {
	if n.IdleSince.IsZero() {
		return n.CreatedAt
	}
	return n.IdleSince
}

var genStates = []node.State{node.Preparing, node.Idle, node.Idle, node.Idle, node.Running, node.Leaving, node.Preempted, node.Unusable}

// randomInput draws an observed state and policy around now.
func randomInput(r *rand.Rand, now time.Time) (autoscale.Observed, autoscale.Policy) {
	var o autoscale.Observed
	for i := range r.IntN(24) {
		n := autoscale.NodeView{
			ID:        fmt.Sprintf("n%02d", i),
			State:     genStates[r.IntN(len(genStates))],
			CreatedAt: now.Add(-time.Duration(r.IntN(3600)) * time.Second),
		}
		if r.IntN(4) == 0 {
			n.Busy = 1 + r.IntN(2)
		}
		switch r.IntN(6) {
		case 0: // zero: falls back to CreatedAt
		case 1: // in the future (clock skew)
			n.IdleSince = now.Add(time.Duration(r.IntN(10)) * time.Second)
		default: // coarse times make ties
			n.IdleSince = now.Add(-time.Duration(r.IntN(120)) * 5 * time.Second)
		}
		o.Nodes = append(o.Nodes, n)
	}
	o.Demand = r.IntN(16) - 1
	p := autoscale.Policy{
		MinNodes:     r.IntN(6) - 1,
		MaxNodes:     r.IntN(16) - 1,
		IdleAfter:    time.Duration(r.IntN(4)) * time.Duration(r.IntN(300)) * time.Second,
		VCPUsPerNode: r.IntN(17) - 1,
		QuotaVCPUs:   r.IntN(200) - 10,
	}
	return o, p
}

// removedIDs is the part of a decision that does not drift with now.
func removedIDs(d autoscale.Decision) []string {
	var ids []string
	for _, r := range d.Remove {
		ids = append(ids, r.NodeID)
	}
	return ids
}

func TestDecideProperties(t *testing.T) {
	t.Parallel()
	for _, seed := range []uint64{1, 2, 3, 42, 2025} {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(seed, 0x6861_6e67_6172))
			for i := range 5000 {
				o, p := randomInput(r, t0)
				d := autoscale.Decide(o, p, t0)
				if err := checkDecision(o, p, t0, d); err != nil {
					t.Fatalf("case %d: %v\nobserved: %+v\npolicy: %+v\ndecision: %+v", i, err, o, p, d)
				}

				// The order of the observed nodes does not matter.
				shuffled := o
				shuffled.Nodes = slices.Clone(o.Nodes)
				r.Shuffle(len(shuffled.Nodes), func(i, j int) {
					shuffled.Nodes[i], shuffled.Nodes[j] = shuffled.Nodes[j], shuffled.Nodes[i]
				})
				if diff := cmp.Diff(d, autoscale.Decide(shuffled, p, t0)); diff != "" {
					t.Fatalf("case %d: shuffled nodes changed the decision (-first +shuffled):\n%s", i, diff)
				}

				// Nothing changes before NextCheck; something does at it.
				if d.NextCheck.IsZero() {
					later := autoscale.Decide(o, p, t0.Add(24*time.Hour))
					if !slices.Equal(removedIDs(d), removedIDs(later)) {
						t.Fatalf("case %d: no NextCheck, but a day later removes %v instead of %v", i, removedIDs(later), removedIDs(d))
					}
					continue
				}
				before := autoscale.Decide(o, p, d.NextCheck.Add(-time.Nanosecond))
				if !slices.Equal(removedIDs(d), removedIDs(before)) || before.Create != d.Create || before.Blocked != d.Blocked {
					t.Fatalf("case %d: decision changed before NextCheck %v: %+v vs %+v", i, d.NextCheck, before, d)
				}
				at := autoscale.Decide(o, p, d.NextCheck)
				if len(at.Remove) <= len(d.Remove) {
					t.Fatalf("case %d: nothing more removed at NextCheck %v: %+v", i, d.NextCheck, at)
				}
			}
		})
	}
}

// Fuzz inputs encode nodes as fixed-size records, times in ms relative to
// fuzzNow, so that the fuzzer can mutate them freely.
const nodeRecord = 10 // state, busy, created (int32 ms ago), idle since (int32 ms ago)

var fuzzNow = t0

// zeroIdle in a record's idle field means IdleSince is the zero time.
var zeroIdle int32 = math.MinInt32

var fuzzStates = []node.State{node.Preparing, node.Idle, node.Running, node.Leaving, node.Preempted, node.Unusable, ""}

func encodeNodes(nodes []autoscale.NodeView) []byte {
	var b []byte
	for _, n := range nodes {
		ms := func(t time.Time) uint32 { return uint32(int32(fuzzNow.Sub(t).Milliseconds())) }
		idle := uint32(zeroIdle)
		if !n.IdleSince.IsZero() {
			idle = ms(n.IdleSince)
		}
		b = append(b, byte(slices.Index(fuzzStates, n.State)), byte(n.Busy))
		b = binary.LittleEndian.AppendUint32(b, ms(n.CreatedAt))
		b = binary.LittleEndian.AppendUint32(b, idle)
	}
	return b
}

func decodeNodes(b []byte) []autoscale.NodeView {
	var nodes []autoscale.NodeView
	for i := 0; len(b) >= nodeRecord; i, b = i+1, b[nodeRecord:] {
		n := autoscale.NodeView{
			ID:        fmt.Sprintf("n%d", i),
			State:     fuzzStates[int(b[0])%len(fuzzStates)],
			Busy:      int(b[1] % 4),
			CreatedAt: fuzzNow.Add(-time.Duration(int32(binary.LittleEndian.Uint32(b[2:]))) * time.Millisecond),
		}
		if idle := int32(binary.LittleEndian.Uint32(b[6:])); idle != zeroIdle {
			n.IdleSince = fuzzNow.Add(-time.Duration(idle) * time.Millisecond)
		}
		nodes = append(nodes, n)
	}
	return nodes
}

func FuzzDecide(f *testing.F) {
	for _, tc := range decideCases {
		p := tc.policy
		f.Add(encodeNodes(tc.observed.Nodes), tc.observed.Demand, p.MinNodes, p.MaxNodes,
			int64(p.IdleAfter/time.Millisecond), p.VCPUsPerNode, p.QuotaVCPUs)
	}
	f.Fuzz(func(t *testing.T, nodes []byte, demand, minNodes, maxNodes int, idleAfterMS int64, vcpus, quota int) {
		o := autoscale.Observed{Nodes: decodeNodes(nodes), Demand: demand}
		p := autoscale.Policy{
			MinNodes: minNodes, MaxNodes: maxNodes,
			// Bounded so that idle expiries stay well inside time.Time's range.
			IdleAfter:    time.Duration(idleAfterMS%(1<<40)) * time.Millisecond,
			VCPUsPerNode: vcpus, QuotaVCPUs: quota, QuotaName: "standardDv2Family dedicated",
		}
		d := autoscale.Decide(o, p, fuzzNow)
		if err := checkDecision(o, p, fuzzNow, d); err != nil {
			t.Fatalf("%v\nobserved: %+v\npolicy: %+v\ndecision: %+v", err, o, p, d)
		}
	})
}

func BenchmarkDecide(b *testing.B) {
	for _, size := range []int{10, 1000} {
		b.Run(fmt.Sprint("nodes=", size), func(b *testing.B) {
			r := rand.New(rand.NewPCG(7, 7))
			var o autoscale.Observed
			for i := range size {
				o.Nodes = append(o.Nodes, autoscale.NodeView{
					ID:        fmt.Sprintf("n%05d", i),
					State:     genStates[r.IntN(len(genStates))],
					CreatedAt: t0.Add(-time.Hour),
					IdleSince: t0.Add(-time.Duration(r.IntN(600)) * time.Second),
				})
			}
			p := autoscale.Policy{MinNodes: 1, MaxNodes: size * 2, IdleAfter: 5 * time.Minute, VCPUsPerNode: 4, QuotaVCPUs: size * 6}
			b.ReportAllocs()
			for b.Loop() {
				autoscale.Decide(o, p, t0)
			}
		})
	}
}
