package sched_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-ml/hangar/internal/sched"
)

type placeCase struct {
	name  string
	queue []sched.QueuedRun
	free  []sched.FreeNode
	want  []sched.Assignment
}

func run(id, compute string, nodes int) sched.QueuedRun {
	return sched.QueuedRun{ID: id, Compute: compute, NodeCount: nodes}
}

func fn(id, compute string, slots int) sched.FreeNode {
	return sched.FreeNode{ID: id, Compute: compute, FreeSlots: slots}
}

func as(runID string, nodeIDs ...string) sched.Assignment {
	return sched.Assignment{RunID: runID, NodeIDs: nodeIDs}
}

// placeCases are shared by TestPlace and the seeds of FuzzPlace.
var placeCases = []placeCase{
	{name: "nothing queued", free: []sched.FreeNode{fn("a", "c", 1)}},
	{name: "no free nodes", queue: []sched.QueuedRun{run("r1", "c", 1)}},
	{
		name:  "one run one node",
		queue: []sched.QueuedRun{run("r1", "c", 1)},
		free:  []sched.FreeNode{fn("a", "c", 1)},
		want:  []sched.Assignment{as("r1", "a")},
	},
	{
		name:  "oldest run first",
		queue: []sched.QueuedRun{run("r1", "c", 1), run("r2", "c", 1)},
		free:  []sched.FreeNode{fn("a", "c", 1)},
		want:  []sched.Assignment{as("r1", "a")},
	},
	{
		name:  "most free slots first",
		queue: []sched.QueuedRun{run("r1", "c", 1)},
		free:  []sched.FreeNode{fn("a", "c", 1), fn("b", "c", 3)},
		want:  []sched.Assignment{as("r1", "b")},
	},
	{
		name:  "ties broken by node ID",
		queue: []sched.QueuedRun{run("r1", "c", 1)},
		free:  []sched.FreeNode{fn("b", "c", 2), fn("a", "c", 2)},
		want:  []sched.Assignment{as("r1", "a")},
	},
	{
		name:  "each placement takes a slot",
		queue: []sched.QueuedRun{run("r1", "c", 1), run("r2", "c", 1), run("r3", "c", 1), run("r4", "c", 1)},
		free:  []sched.FreeNode{fn("b", "c", 1), fn("a", "c", 2)},
		want:  []sched.Assignment{as("r1", "a"), as("r2", "a"), as("r3", "b")},
	},
	{
		name:  "a multi-node run gets distinct nodes, most slots first",
		queue: []sched.QueuedRun{run("r1", "c", 3), run("r2", "c", 2)},
		free:  []sched.FreeNode{fn("a", "c", 1), fn("b", "c", 4), fn("c", "c", 2)},
		want:  []sched.Assignment{as("r1", "b", "c", "a"), as("r2", "b", "c")},
	},
	{
		name:  "a multi-node run never takes two slots of one node",
		queue: []sched.QueuedRun{run("r1", "c", 2)},
		free:  []sched.FreeNode{fn("a", "c", 8)},
	},
	{
		name:  "a blocked multi-node run stops its compute",
		queue: []sched.QueuedRun{run("r1", "c", 1), run("big", "c", 3), run("r3", "c", 1)},
		free:  []sched.FreeNode{fn("a", "c", 1), fn("b", "c", 1), fn("c", "c", 1)},
		want:  []sched.Assignment{as("r1", "a")},
	},
	{
		name: "a blocked multi-node run does not stop other computes",
		queue: []sched.QueuedRun{
			run("big", "c1", 2), run("r2", "c2", 1), run("r3", "c1", 1), run("r4", "c2", 1),
		},
		free: []sched.FreeNode{fn("a", "c1", 1), fn("x", "c2", 1), fn("y", "c2", 1)},
		want: []sched.Assignment{as("r2", "x"), as("r4", "y")},
	},
	{
		name:  "runs only use nodes of their compute",
		queue: []sched.QueuedRun{run("r1", "c1", 1), run("r2", "c2", 1), run("r3", "c3", 1)},
		free:  []sched.FreeNode{fn("a", "c2", 5), fn("b", "c1", 1)},
		want:  []sched.Assignment{as("r1", "b"), as("r2", "a")},
	},
	{
		name:  "invalid node count is skipped and blocks nothing",
		queue: []sched.QueuedRun{run("r0", "c", 0), run("rn", "c", -2), run("r1", "c", 1)},
		free:  []sched.FreeNode{fn("a", "c", 1)},
		want:  []sched.Assignment{as("r1", "a")},
	},
	{
		name:  "nodes without free slots are ignored",
		queue: []sched.QueuedRun{run("r1", "c", 1), run("r2", "c", 1)},
		free:  []sched.FreeNode{fn("a", "c", 0), fn("b", "c", -1), fn("c", "c", 1)},
		want:  []sched.Assignment{as("r1", "c")},
	},
	{
		name:  "a repeated node ID keeps its first entry",
		queue: []sched.QueuedRun{run("r1", "c", 1), run("r2", "c", 1), run("r3", "c", 2)},
		free:  []sched.FreeNode{fn("a", "c", 1), fn("a", "c", 5), fn("b", "c", 0), fn("b", "c", 3)},
		want:  []sched.Assignment{as("r1", "a")},
	},
	{
		name: "interleaved computes keep their own order",
		queue: []sched.QueuedRun{
			run("r1", "c1", 1), run("r2", "c2", 2), run("r3", "c1", 1), run("r4", "c2", 1), run("r5", "c1", 1),
		},
		free: []sched.FreeNode{fn("a", "c1", 2), fn("x", "c2", 1), fn("y", "c2", 2)},
		want: []sched.Assignment{as("r1", "a"), as("r2", "y", "x"), as("r3", "a"), as("r4", "y")},
	},
}

func TestPlace(t *testing.T) {
	t.Parallel()
	for _, tc := range placeCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := sched.Place(tc.queue, tc.free)
			if diff := cmp.Diff(sched.Plan{Assignments: tc.want}, got); diff != "" {
				t.Errorf("Place() mismatch (-want +got):\n%s", diff)
			}
			if err := checkPlan(tc.queue, tc.free, got); err != nil {
				t.Errorf("invariant: %v", err)
			}
		})
	}
}
