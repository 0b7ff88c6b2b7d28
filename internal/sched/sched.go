package sched

import (
	"cmp"
	"slices"
	"strings"
)

// QueuedRun is a run waiting for nodes. Place takes them in queue order,
// oldest first; each run appears once.
type QueuedRun struct {
	ID        string
	Compute   string
	NodeCount int
}

// FreeNode is a node that can take more attempts.
type FreeNode struct {
	ID      string
	Compute string
	// FreeSlots is how many more attempts the node can run now; ≤ 0 means
	// none.
	FreeSlots int
}

// Assignment places one run on NodeIDs: len(NodeIDs) == NodeCount, all
// distinct, all of the run's compute, most free slots first.
type Assignment struct {
	RunID   string
	NodeIDs []string
}

// Plan is what to start now. Assignments are in queue order.
type Plan struct {
	Assignments []Assignment
}

// Place decides which queued runs start on which free nodes. It is pure and
// deterministic; see the package documentation for the rules.
func Place(queue []QueuedRun, free []FreeNode) Plan {
	// Number the nodes in ID order so that the heaps compare ints, not
	// strings: a lower index is a lower ID. Duplicate IDs keep their
	// first entry.
	order := make([]int32, len(free))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		return cmp.Or(strings.Compare(free[a].ID, free[b].ID), cmp.Compare(a, b))
	})
	ids := make([]string, 0, len(free))
	slots := make([]int, 0, len(free))
	pools := map[string]*pool{}
	for i, j := range order {
		n := free[j]
		if (i > 0 && n.ID == free[order[i-1]].ID) || n.FreeSlots <= 0 {
			continue
		}
		p := pools[n.Compute]
		if p == nil {
			p = &pool{}
			pools[n.Compute] = p
		}
		p.heap = append(p.heap, int32(len(ids)))
		ids = append(ids, n.ID)
		slots = append(slots, n.FreeSlots)
	}
	for _, p := range pools {
		p.slots = slots
		// Sorted by (most slots, lowest ID) is a valid heap.
		slices.SortFunc(p.heap, func(a, b int32) int {
			return cmp.Or(cmp.Compare(slots[b], slots[a]), cmp.Compare(a, b))
		})
	}

	// At most one assignment per run and per free slot: bounded by the
	// input, and tight when slots are scarce.
	totalSlots := 0
	for _, s := range slots {
		totalSlots += min(s, len(queue)-totalSlots)
	}
	var plan Plan      // no assignments: nil, as the zero Plan
	var taken []string // backing array for the assignments' NodeIDs, see below
	var buf []int32    // nodes taken by a multi-node run, until pushed back
	var last string
	var p *pool
	for _, r := range queue {
		if r.NodeCount < 1 {
			continue
		}
		if p == nil || r.Compute != last {
			p, last = pools[r.Compute], r.Compute
		}
		if p == nil || p.done {
			continue
		}
		if len(p.heap) < r.NodeCount {
			// A multi-node run blocks its compute; a single-node run is
			// blocked only when no node is left, so nothing else fits.
			p.done = true
			continue
		}
		if len(taken)+r.NodeCount > cap(taken) {
			// A new chunk rather than append's copy: earlier NodeIDs keep
			// pointing into the old chunk, and nothing is copied.
			taken = make([]string, 0, max(2*cap(taken), r.NodeCount, 64))
		}
		start := len(taken)
		if r.NodeCount == 1 {
			n := p.heap[0]
			taken = append(taken, ids[n])
			if slots[n]--; slots[n] == 0 {
				p.pop()
			} else {
				p.down(0)
			}
		} else {
			buf = buf[:0]
			for range r.NodeCount {
				n := p.pop()
				taken = append(taken, ids[n])
				slots[n]--
				buf = append(buf, n)
			}
			for _, n := range buf {
				if slots[n] > 0 {
					p.push(n)
				}
			}
		}
		if plan.Assignments == nil {
			plan.Assignments = make([]Assignment, 0, min(len(queue), totalSlots))
		}
		plan.Assignments = append(plan.Assignments, Assignment{
			RunID:   r.ID,
			NodeIDs: taken[start:len(taken):len(taken)],
		})
	}
	return plan
}

// pool is one compute's nodes with a free slot: a binary heap of node
// indexes, most free slots first, then lowest index (ID).
type pool struct {
	heap  []int32
	slots []int // shared by all pools, indexed by node
	done  bool  // nothing more is placed on this compute
}

func (p *pool) before(a, b int32) bool {
	return p.slots[a] > p.slots[b] || (p.slots[a] == p.slots[b] && a < b)
}

func (p *pool) push(n int32) {
	p.heap = append(p.heap, n)
	h := p.heap
	i := len(h) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if !p.before(h[i], h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (p *pool) pop() int32 {
	h := p.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	p.heap = h[:last]
	if last > 0 {
		p.down(0)
	}
	return top
}

func (p *pool) down(i int) {
	h := p.heap
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		c := l
		if r := l + 1; r < len(h) && p.before(h[r], h[l]) {
			c = r
		}
		if !p.before(h[c], h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}
