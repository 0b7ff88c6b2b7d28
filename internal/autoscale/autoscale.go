package autoscale

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hangar-ml/hangar/internal/node"
)

// NodeView is what Decide needs to know about one node of the compute.
type NodeView struct {
	ID        string
	State     node.State
	CreatedAt time.Time
	// IdleSince is when the node last became idle. When it is zero for an
	// idle node, CreatedAt is used instead.
	IdleSince time.Time
	// Busy is the number of attempts on the node (assigned or running).
	Busy int
}

// Policy is the compute's scaling settings and the quota it may use.
type Policy struct {
	// MinNodes is kept counted at all times; negative means 0.
	MinNodes int
	// MaxNodes caps counted nodes; negative means 0.
	MaxNodes int
	// IdleAfter is idle_seconds_before_scaledown: how long a node stays idle
	// before it is removed. 0 (or negative) removes it as soon as it is idle.
	IdleAfter time.Duration
	// VCPUsPerNode is the vCPU count of the compute's VM size. 0 (or
	// negative) means nodes cost no quota, so quota never limits them.
	VCPUsPerNode int
	// QuotaVCPUs is the vCPUs still free in the workspace's quota for this VM
	// family and priority, NOT counting this compute's own counted nodes
	// (the caller computes limit − used by other computes). Negative means
	// none is left.
	QuotaVCPUs int
	// QuotaName names the quota in Decision.Blocked, e.g.
	// "standardDv2Family dedicated". Empty leaves it out of the message.
	QuotaName string
}

// Observed is the state of the compute that Decide reacts to.
type Observed struct {
	// Nodes are the compute's nodes in any state, in any order. IDs are
	// unique.
	Nodes []NodeView
	// Demand is the number of nodes wanted by waiting runs: the sum of
	// node_count of the runs waiting for this compute. Negative means 0.
	Demand int
}

// Removal is one node to scale down, with the reason to record.
type Removal struct {
	NodeID string
	Reason string // e.g. "idle for 5s (idle_seconds_before_scaledown=5)"
}

// Decision is what the autoscaler should do now. The zero Decision (apart
// from Target) means "nothing to do".
type Decision struct {
	// Create is how many nodes to create; CreateReason says why, e.g.
	// "scale-up: 3 node(s) wanted by waiting runs, 1 idle or preparing" or
	// "min_nodes: keep at least 2 node(s), 1 counted".
	Create       int
	CreateReason string
	// Remove lists idle nodes to remove, oldest-idle first.
	Remove []Removal
	// Target is target_node_count after this decision: live nodes (counted,
	// not leaving) plus Create minus Remove.
	Target int
	// Blocked is non-empty when demand cannot be met because of max_nodes
	// or quota, e.g. "max_nodes (2) reached". Limits are joined by "; ".
	Blocked string
	// NextCheck is the earliest time the decision could change without new
	// events (the next idle expiry that would remove a node); zero if none.
	NextCheck time.Time
}

// Decide returns what to do with the compute's nodes at time now. It is pure
// and deterministic; see the package documentation for the rules.
func Decide(o Observed, p Policy, now time.Time) Decision {
	minNodes := max(p.MinNodes, 0)
	maxNodes := max(p.MaxNodes, 0)
	idleAfter := max(p.IdleAfter, 0)
	demand := max(o.Demand, 0)

	var counted, leaving, preparingFree int
	var idleFree []NodeView // idle, Busy == 0: free now, and the only removable nodes
	for _, n := range o.Nodes {
		if !n.State.Counted() {
			continue
		}
		counted++
		switch {
		case n.State == node.Leaving:
			leaving++
		case n.State == node.Preparing && n.Busy == 0:
			preparingFree++
		case n.State == node.Idle && n.Busy == 0:
			idleFree = append(idleFree, n)
		}
	}
	live := counted - leaving
	free := len(idleFree) + preparingFree

	var d Decision

	// Scale up.
	wanted := max(demand-free, 0)
	forMin := max(minNodes-counted, 0)
	room := max(maxNodes-counted, 0)
	quotaRoom := math.MaxInt // nodes that cost no vCPUs are not limited by quota
	if p.VCPUsPerNode > 0 {
		quotaRoom = max(max(p.QuotaVCPUs, 0)/p.VCPUsPerNode-counted, 0)
	}
	d.Create = min(max(wanted, forMin), room, quotaRoom)
	switch {
	case d.Create == 0:
	case wanted >= forMin:
		d.CreateReason = fmt.Sprintf("scale-up: %d node(s) wanted by waiting runs, %d idle or preparing", demand, free)
	default:
		d.CreateReason = fmt.Sprintf("min_nodes: keep at least %d node(s), %d counted", minNodes, counted)
	}
	if wanted > d.Create {
		var why []string
		if room < wanted {
			why = append(why, fmt.Sprintf("max_nodes (%d) reached", maxNodes))
		}
		if quotaRoom < wanted {
			why = append(why, quotaMessage(p, counted+d.Create))
		}
		d.Blocked = strings.Join(why, "; ")
	}

	slices.SortFunc(idleFree, func(a, b NodeView) int {
		return cmp.Or(idleStart(a).Compare(idleStart(b)), strings.Compare(a.ID, b.ID))
	})
	// Over max_nodes (it was lowered): idle nodes beyond it go at once,
	// whatever their idle time; busy ones go when they become idle.
	if over := live - maxNodes; over > 0 && minNodes <= maxNodes {
		for _, n := range idleFree[:min(over, len(idleFree))] {
			d.Remove = append(d.Remove, Removal{NodeID: n.ID,
				Reason: fmt.Sprintf("max_nodes is %d and the cluster has %d live node(s)", maxNodes, live)})
		}
		idleFree = idleFree[len(d.Remove):]
	}
	// Scale down: at most the idle free nodes that waiting runs will not
	// take, and never below min_nodes live.
	canRemove := min(len(idleFree)-demand, live-len(d.Remove)-minNodes)
	if canRemove > 0 {
		removedOver := len(d.Remove)
		for _, n := range idleFree {
			if len(d.Remove)-removedOver == canRemove {
				break
			}
			expiry := idleStart(n).Add(idleAfter)
			if expiry.After(now) {
				// Sorted oldest-idle first, so this is the next expiry;
				// nodes after it expire no sooner.
				d.NextCheck = expiry
				break
			}
			d.Remove = append(d.Remove, Removal{
				NodeID: n.ID,
				Reason: fmt.Sprintf("idle for %s (idle_seconds_before_scaledown=%s)",
					now.Sub(idleStart(n)).Truncate(time.Second),
					strconv.FormatFloat(idleAfter.Seconds(), 'f', -1, 64)),
			})
		}
	}
	d.Target = live + d.Create - len(d.Remove)
	return d
}

// idleStart is when n became idle, falling back to its creation time.
func idleStart(n NodeView) time.Time {
	if n.IdleSince.IsZero() {
		return n.CreatedAt
	}
	return n.IdleSince
}

// quotaMessage says how much quota is left once total nodes are counted.
func quotaMessage(p Policy, total int) string {
	left := 0
	// total*VCPUsPerNode may overflow; total > QuotaVCPUs/VCPUsPerNode
	// already means nothing is left.
	if q := max(p.QuotaVCPUs, 0); total <= q/p.VCPUsPerNode {
		left = q - total*p.VCPUsPerNode
	}
	of := ""
	if p.QuotaName != "" {
		of = " of " + p.QuotaName
	}
	return fmt.Sprintf("quota: %d vCPUs%s left, a node needs %d", left, of, p.VCPUsPerNode)
}
