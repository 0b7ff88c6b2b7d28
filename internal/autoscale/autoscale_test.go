package autoscale_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/hangar-ml/hangar/internal/autoscale"
	"github.com/hangar-ml/hangar/internal/node"
)

// t0 is "now" in the table tests; node times are relative to it.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) time.Time { return t0.Add(-d) }

// idle is a free idle node that became idle d ago.
func idle(id string, d time.Duration) autoscale.NodeView {
	return autoscale.NodeView{ID: id, State: node.Idle, CreatedAt: ago(time.Hour), IdleSince: ago(d)}
}

func nodeIn(id string, s node.State, busy int) autoscale.NodeView {
	return autoscale.NodeView{ID: id, State: s, CreatedAt: ago(time.Hour), Busy: busy}
}

type decideCase struct {
	name     string
	observed autoscale.Observed
	policy   autoscale.Policy
	want     autoscale.Decision
}

// decideCases are shared by TestDecide and the seeds of FuzzDecide.
var decideCases = []decideCase{
	{
		name:   "nothing to do",
		policy: autoscale.Policy{MaxNodes: 4, VCPUsPerNode: 2, QuotaVCPUs: 100},
		want:   autoscale.Decision{},
	},
	{
		name:     "scale up from zero",
		observed: autoscale.Observed{Demand: 3},
		policy:   autoscale.Policy{MaxNodes: 4, VCPUsPerNode: 2, QuotaVCPUs: 100},
		want: autoscale.Decision{
			Create: 3, CreateReason: "scale-up: 3 node(s) wanted by waiting runs, 0 idle or preparing",
			Target: 3,
		},
	},
	{
		name: "idle and preparing nodes absorb demand",
		observed: autoscale.Observed{Demand: 3, Nodes: []autoscale.NodeView{
			idle("n1", time.Second), nodeIn("n2", node.Preparing, 0), nodeIn("n3", node.Running, 1),
		}},
		policy: autoscale.Policy{MaxNodes: 4, VCPUsPerNode: 2, QuotaVCPUs: 100, IdleAfter: time.Minute},
		want: autoscale.Decision{
			Create: 1, CreateReason: "scale-up: 3 node(s) wanted by waiting runs, 2 idle or preparing",
			Target: 4,
		},
	},
	{
		name: "nodes with an attempt are not free",
		observed: autoscale.Observed{Demand: 2, Nodes: []autoscale.NodeView{
			nodeIn("n1", node.Idle, 1), nodeIn("n2", node.Preparing, 1),
		}},
		policy: autoscale.Policy{MaxNodes: 4},
		want: autoscale.Decision{
			Create: 2, CreateReason: "scale-up: 2 node(s) wanted by waiting runs, 0 idle or preparing",
			Target: 4,
		},
	},
	{
		name: "max_nodes reached",
		observed: autoscale.Observed{Demand: 1, Nodes: []autoscale.NodeView{
			nodeIn("n1", node.Running, 1), nodeIn("n2", node.Running, 1),
		}},
		policy: autoscale.Policy{MaxNodes: 2, VCPUsPerNode: 2, QuotaVCPUs: 100},
		want:   autoscale.Decision{Target: 2, Blocked: "max_nodes (2) reached"},
	},
	{
		name:     "max_nodes cuts a scale-up",
		observed: autoscale.Observed{Demand: 3},
		policy:   autoscale.Policy{MaxNodes: 2, VCPUsPerNode: 2, QuotaVCPUs: 100},
		want: autoscale.Decision{
			Create: 2, CreateReason: "scale-up: 3 node(s) wanted by waiting runs, 0 idle or preparing",
			Target: 2, Blocked: "max_nodes (2) reached",
		},
	},
	{
		name:     "quota cuts a scale-up",
		observed: autoscale.Observed{Demand: 3},
		policy: autoscale.Policy{
			MaxNodes: 10, VCPUsPerNode: 8, QuotaVCPUs: 20, QuotaName: "standardDv2Family dedicated",
		},
		want: autoscale.Decision{
			Create: 2, CreateReason: "scale-up: 3 node(s) wanted by waiting runs, 0 idle or preparing",
			Target: 2, Blocked: "quota: 4 vCPUs of standardDv2Family dedicated left, a node needs 8",
		},
	},
	{
		name: "leaving nodes use quota and max_nodes",
		observed: autoscale.Observed{Demand: 2, Nodes: []autoscale.NodeView{
			nodeIn("n1", node.Leaving, 0),
		}},
		policy: autoscale.Policy{MaxNodes: 10, VCPUsPerNode: 8, QuotaVCPUs: 16},
		want: autoscale.Decision{
			Create: 1, CreateReason: "scale-up: 2 node(s) wanted by waiting runs, 0 idle or preparing",
			Target: 1, Blocked: "quota: 0 vCPUs left, a node needs 8",
		},
	},
	{
		name:     "both limits named",
		observed: autoscale.Observed{Demand: 2},
		policy:   autoscale.Policy{MaxNodes: 1, VCPUsPerNode: 4, QuotaVCPUs: 3, QuotaName: "standardNCFamily lowpriority"},
		want: autoscale.Decision{
			Blocked: "max_nodes (1) reached; quota: 3 vCPUs of standardNCFamily lowpriority left, a node needs 4",
		},
	},
	{
		name: "preempted and unusable nodes do not count",
		observed: autoscale.Observed{Demand: 2, Nodes: []autoscale.NodeView{
			nodeIn("n1", node.Preempted, 0), nodeIn("n2", node.Unusable, 0),
		}},
		policy: autoscale.Policy{MaxNodes: 2, VCPUsPerNode: 4, QuotaVCPUs: 8},
		want: autoscale.Decision{
			Create: 2, CreateReason: "scale-up: 2 node(s) wanted by waiting runs, 0 idle or preparing",
			Target: 2,
		},
	},
	{
		name:   "create to reach min_nodes",
		policy: autoscale.Policy{MinNodes: 2, MaxNodes: 4},
		want: autoscale.Decision{
			Create: 2, CreateReason: "min_nodes: keep at least 2 node(s), 0 counted", Target: 2,
		},
	},
	{
		name:     "min_nodes larger than demand",
		observed: autoscale.Observed{Demand: 1, Nodes: []autoscale.NodeView{nodeIn("n1", node.Running, 1)}},
		policy:   autoscale.Policy{MinNodes: 3, MaxNodes: 4},
		want: autoscale.Decision{
			Create: 2, CreateReason: "min_nodes: keep at least 3 node(s), 1 counted", Target: 3,
		},
	},
	{
		name:   "min_nodes above quota is not a blocked run",
		policy: autoscale.Policy{MinNodes: 2, MaxNodes: 4, VCPUsPerNode: 8, QuotaVCPUs: 8},
		want: autoscale.Decision{
			Create: 1, CreateReason: "min_nodes: keep at least 2 node(s), 0 counted", Target: 1,
		},
	},
	{
		name:     "leaving nodes count toward min_nodes until gone",
		observed: autoscale.Observed{Nodes: []autoscale.NodeView{nodeIn("n1", node.Leaving, 0)}},
		policy:   autoscale.Policy{MinNodes: 1, MaxNodes: 1},
		want:     autoscale.Decision{Target: 0},
	},
	{
		name:     "remove a node idle long enough",
		observed: autoscale.Observed{Nodes: []autoscale.NodeView{idle("n1", 5*time.Second)}},
		policy:   autoscale.Policy{MaxNodes: 4, IdleAfter: 5 * time.Second},
		want: autoscale.Decision{
			Remove: []autoscale.Removal{{NodeID: "n1", Reason: "idle for 5s (idle_seconds_before_scaledown=5)"}},
		},
	},
	{
		name:     "wait for a node to be idle long enough",
		observed: autoscale.Observed{Nodes: []autoscale.NodeView{idle("n1", 3*time.Second)}},
		policy:   autoscale.Policy{MaxNodes: 4, IdleAfter: 5 * time.Second},
		want:     autoscale.Decision{Target: 1, NextCheck: t0.Add(2 * time.Second)},
	},
	{
		name:     "idle_seconds_before_scaledown 0 removes at once",
		observed: autoscale.Observed{Nodes: []autoscale.NodeView{idle("n1", 0)}},
		policy:   autoscale.Policy{MaxNodes: 4},
		want: autoscale.Decision{
			Remove: []autoscale.Removal{{NodeID: "n1", Reason: "idle for 0s (idle_seconds_before_scaledown=0)"}},
		},
	},
	{
		name:     "fractional idle_seconds_before_scaledown",
		observed: autoscale.Observed{Nodes: []autoscale.NodeView{idle("n1", 90*time.Second+300*time.Millisecond)}},
		policy:   autoscale.Policy{MaxNodes: 4, IdleAfter: 1500 * time.Millisecond},
		want: autoscale.Decision{
			Remove: []autoscale.Removal{{NodeID: "n1", Reason: "idle for 1m30s (idle_seconds_before_scaledown=1.5)"}},
		},
	},
	{
		name: "oldest idle first, never below min_nodes",
		observed: autoscale.Observed{Nodes: []autoscale.NodeView{
			idle("n3", 10*time.Second), idle("n1", 30*time.Second), idle("n2", 20*time.Second),
		}},
		policy: autoscale.Policy{MinNodes: 1, MaxNodes: 4, IdleAfter: 5 * time.Second},
		want: autoscale.Decision{
			Remove: []autoscale.Removal{
				{NodeID: "n1", Reason: "idle for 30s (idle_seconds_before_scaledown=5)"},
				{NodeID: "n2", Reason: "idle for 20s (idle_seconds_before_scaledown=5)"},
			},
			Target: 1,
		},
	},
	{
		name: "equal idle times break ties by ID",
		observed: autoscale.Observed{Nodes: []autoscale.NodeView{
			idle("n2", 10*time.Second), idle("n1", 10*time.Second),
		}},
		policy: autoscale.Policy{MinNodes: 1, MaxNodes: 4, IdleAfter: 5 * time.Second},
		want: autoscale.Decision{
			Remove: []autoscale.Removal{{NodeID: "n1", Reason: "idle for 10s (idle_seconds_before_scaledown=5)"}},
			Target: 1,
		},
	},
	{
		name: "leaving nodes are not removed twice",
		observed: autoscale.Observed{Nodes: []autoscale.NodeView{
			nodeIn("n0", node.Leaving, 0), idle("n1", time.Minute), idle("n2", 2*time.Minute),
		}},
		policy: autoscale.Policy{MinNodes: 1, MaxNodes: 4, IdleAfter: 5 * time.Second},
		want: autoscale.Decision{
			Remove: []autoscale.Removal{{NodeID: "n2", Reason: "idle for 2m0s (idle_seconds_before_scaledown=5)"}},
			Target: 1,
		},
	},
	{
		name: "waiting runs keep the idle nodes they will take",
		observed: autoscale.Observed{Demand: 1, Nodes: []autoscale.NodeView{
			idle("n1", time.Minute), idle("n2", 2*time.Minute),
		}},
		policy: autoscale.Policy{MaxNodes: 4, IdleAfter: 5 * time.Second},
		want: autoscale.Decision{
			Remove: []autoscale.Removal{{NodeID: "n2", Reason: "idle for 2m0s (idle_seconds_before_scaledown=5)"}},
			Target: 1,
		},
	},
	{
		name: "demand above free capacity removes nothing",
		observed: autoscale.Observed{Demand: 3, Nodes: []autoscale.NodeView{
			idle("n1", time.Hour),
		}},
		policy: autoscale.Policy{MaxNodes: 4, IdleAfter: 5 * time.Second},
		want: autoscale.Decision{
			Create: 2, CreateReason: "scale-up: 3 node(s) wanted by waiting runs, 1 idle or preparing",
			Target: 3,
		},
	},
	{
		name: "a preparing node does not free an idle one",
		observed: autoscale.Observed{Demand: 1, Nodes: []autoscale.NodeView{
			idle("n1", time.Hour), nodeIn("n2", node.Preparing, 0),
		}},
		policy: autoscale.Policy{MaxNodes: 4, IdleAfter: 5 * time.Second},
		want:   autoscale.Decision{Target: 2},
	},
	{
		name: "busy and non-idle nodes are never removed",
		observed: autoscale.Observed{Nodes: []autoscale.NodeView{
			{ID: "n1", State: node.Idle, IdleSince: ago(time.Hour), Busy: 1},
			{ID: "n2", State: node.Running, IdleSince: ago(time.Hour)},
			{ID: "n3", State: node.Preparing, IdleSince: ago(time.Hour)},
			{ID: "n4", State: node.Unusable, IdleSince: ago(time.Hour)},
			{ID: "n5", State: node.Preempted, IdleSince: ago(time.Hour)},
			{ID: "n6", State: node.Leaving, IdleSince: ago(time.Hour)},
		}},
		policy: autoscale.Policy{MaxNodes: 10, IdleAfter: time.Second},
		want:   autoscale.Decision{Target: 3},
	},
	{
		name: "next check is the next expiry once expired nodes are removed",
		observed: autoscale.Observed{Nodes: []autoscale.NodeView{
			idle("n1", time.Minute), idle("n2", 2*time.Second), idle("n3", 4*time.Second),
		}},
		policy: autoscale.Policy{MaxNodes: 4, IdleAfter: 10 * time.Second},
		want: autoscale.Decision{
			Remove:    []autoscale.Removal{{NodeID: "n1", Reason: "idle for 1m0s (idle_seconds_before_scaledown=10)"}},
			Target:    2,
			NextCheck: t0.Add(6 * time.Second),
		},
	},
	{
		name: "no next check at the min_nodes floor",
		observed: autoscale.Observed{Nodes: []autoscale.NodeView{
			idle("n1", time.Minute), idle("n2", 2*time.Second),
		}},
		policy: autoscale.Policy{MinNodes: 1, MaxNodes: 4, IdleAfter: 10 * time.Second},
		want: autoscale.Decision{
			Remove: []autoscale.Removal{{NodeID: "n1", Reason: "idle for 1m0s (idle_seconds_before_scaledown=10)"}},
			Target: 1,
		},
	},
	{
		name: "zero IdleSince falls back to CreatedAt",
		observed: autoscale.Observed{Nodes: []autoscale.NodeView{
			{ID: "n1", State: node.Idle, CreatedAt: ago(7 * time.Second)},
		}},
		policy: autoscale.Policy{MaxNodes: 4, IdleAfter: 5 * time.Second},
		want: autoscale.Decision{
			Remove: []autoscale.Removal{{NodeID: "n1", Reason: "idle for 7s (idle_seconds_before_scaledown=5)"}},
		},
	},
	{
		name: "over max_nodes after it was lowered: no create, idle nodes go at once",
		observed: autoscale.Observed{Demand: 1, Nodes: []autoscale.NodeView{
			nodeIn("n1", node.Running, 1), nodeIn("n2", node.Running, 1), nodeIn("n3", node.Running, 1),
			idle("n4", time.Hour), idle("n5", time.Hour),
		}},
		policy: autoscale.Policy{MaxNodes: 2, IdleAfter: time.Minute},
		want: autoscale.Decision{
			Remove: []autoscale.Removal{
				{NodeID: "n4", Reason: "max_nodes is 2 and the cluster has 5 live node(s)"},
				{NodeID: "n5", Reason: "max_nodes is 2 and the cluster has 5 live node(s)"},
			},
			Target: 3,
		},
	},
	{
		name:     "negative quota means none left",
		observed: autoscale.Observed{Demand: 1},
		policy:   autoscale.Policy{MaxNodes: 2, VCPUsPerNode: 2, QuotaVCPUs: -6},
		want:     autoscale.Decision{Blocked: "quota: 0 vCPUs left, a node needs 2"},
	},
	{
		name:     "min_nodes above max_nodes is capped by max_nodes",
		observed: autoscale.Observed{Nodes: []autoscale.NodeView{idle("n1", time.Hour)}},
		policy:   autoscale.Policy{MinNodes: 5, MaxNodes: 2},
		want: autoscale.Decision{
			Create: 1, CreateReason: "min_nodes: keep at least 5 node(s), 1 counted", Target: 2,
		},
	},
}

func TestDecide(t *testing.T) {
	t.Parallel()
	for _, tc := range decideCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := autoscale.Decide(tc.observed, tc.policy, t0)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decide() mismatch (-want +got):\n%s", diff)
			}
			if err := checkDecision(tc.observed, tc.policy, t0, got); err != nil {
				t.Errorf("invariant: %v", err)
			}
		})
	}
}

func TestDecideMaxNodesLowered(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	idle := func(id string, since time.Duration) autoscale.NodeView {
		return autoscale.NodeView{ID: id, State: node.Idle, CreatedAt: now.Add(-time.Hour), IdleSince: now.Add(-since)}
	}
	o := autoscale.Observed{Nodes: []autoscale.NodeView{
		idle("n1", time.Second), idle("n2", 2*time.Second), idle("n3", 3*time.Second),
		{ID: "n4", State: node.Running, Busy: 1, CreatedAt: now.Add(-time.Hour)},
	}}
	d := autoscale.Decide(o, autoscale.Policy{MinNodes: 0, MaxNodes: 1, IdleAfter: time.Hour}, now)
	var got []string
	for _, r := range d.Remove {
		got = append(got, r.NodeID)
		if !strings.Contains(r.Reason, "max_nodes is 1") {
			t.Errorf("reason %q does not name max_nodes", r.Reason)
		}
	}
	// Three idle nodes over the maximum go at once (oldest idle first); the
	// busy one stays until it is idle.
	if want := []string{"n3", "n2", "n1"}; !slices.Equal(got, want) {
		t.Errorf("removed %v, want %v", got, want)
	}
	if d.Target != 1 {
		t.Errorf("target = %d, want 1", d.Target)
	}
}
