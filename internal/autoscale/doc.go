// Package autoscale decides how a cluster's node count should change
// (DESIGN §5). [Decide] is a pure function: it takes what was observed, the
// compute's policy and the current time, and returns a [Decision]. It does no
// I/O, starts no goroutines and never sleeps; the loop that applies a decision
// (creating and deleting nodes, recording events) lives elsewhere.
//
// # Words
//
//   - counted: a node whose state is preparing, idle, running or leaving
//     ([node.State.Counted]). Counted nodes count toward max_nodes, the
//     current node count and the vCPU quota. Preempted and unusable nodes do
//     not: they are on their way out and may be replaced.
//   - live: a counted node that is not leaving. Leaving nodes still count
//     toward max_nodes and quota until they are gone, but they are already
//     being removed, so they never count toward keeping min_nodes up.
//   - free: a node that could take a waiting run: idle with no attempt on it
//     (Busy == 0), or preparing with no attempt on it.
//   - demand: the number of nodes wanted by runs waiting for this compute.
//
// # Scaling up
//
// Demand not met by free nodes asks for that many new nodes. Independently,
// if fewer than min_nodes nodes are counted, enough nodes are created to reach
// min_nodes. The larger of the two is created, then cut so that
//
//   - counted + created never exceeds max_nodes, and
//   - (counted + created) × vCPUs per node never exceeds the vCPUs left in the
//     workspace's quota for this VM family and priority.
//
// When a cut leaves demand unmet, [Decision.Blocked] names every limit that
// alone would leave it unmet ("max_nodes (2) reached", "quota: 4 vCPUs of
// standardDv2Family dedicated left, a node needs 8"); the caller shows it as
// the waiting runs' reason. A compute already over its quota (quota shrunk)
// is not scaled down for it; it just creates nothing.
//
// # Scaling down
//
// A compute with more live nodes than max_nodes (it was lowered) removes
// idle free nodes over the maximum at once, oldest-idle first, whatever
// their idle time and the demand; busy nodes over it go once they are idle.
//
// Otherwise, // An idle node with no attempt on it that has been idle for at least
// idle_seconds_before_scaledown is removed, oldest-idle first (ties by node
// ID), subject to two floors:
//
//   - live nodes never drop below min_nodes through removals, and
//   - waiting runs take idle nodes before preparing ones, so at least demand
//     idle free nodes are kept. In particular, when demand exceeds free
//     capacity nothing is removed.
//
// A node with an attempt on it, or in any state other than idle, is never
// removed. Leaving nodes are not removed again.
//
// # Time
//
// [Decision.NextCheck] is the earliest time at which the decision could change
// with no new event: the moment the next idle node expires, if that expiry
// would remove it. The caller may sleep until then (or until an event).
//
// Output is deterministic: it does not depend on the order of the observed
// nodes.
package autoscale
