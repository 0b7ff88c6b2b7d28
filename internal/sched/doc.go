// Package sched places queued runs on free node slots. [Place] is a pure
// function: it takes the queue and the free nodes and returns a [Plan]; it does
// no I/O, starts no goroutines and never sleeps. The loop that applies a plan
// (creating attempts with compare-and-set status writes) lives elsewhere.
//
// # Rules
//
//   - FIFO per compute: runs are considered in queue order (oldest first). A
//     run needing k nodes gets k distinct nodes of its compute with a free
//     slot, one slot on each, or nothing.
//   - Node choice: the node with the most free slots first, ties broken by
//     node ID, so that load spreads and the plan is deterministic. For a
//     multi-node run, NodeIDs are in that order.
//   - Backfill: when a run cannot be placed, later runs of the same compute
//     that fit may still be placed, EXCEPT when the blocked run is multi-node
//     (NodeCount > 1): then nothing more is placed on that compute, so that
//     big runs are not starved by a stream of small ones. Since runs ask only
//     for a node count, a run of k nodes is blocked exactly when fewer than k
//     nodes have a free slot; after a blocked single-node run no node has one,
//     so today both cases end placement on the compute. The distinction
//     matters once runs ask for more than a node count.
//   - A run with NodeCount < 1 is invalid (submit refuses it); it is never
//     placed and blocks nothing.
//   - Free nodes with FreeSlots ≤ 0 are ignored; if a node ID is listed more
//     than once, only its first entry counts.
//
// # Cost
//
// Place sorts the free nodes once and keeps a heap of nodes with free slots
// per compute: O(n log n + r + a log n) for n free nodes, r queued runs and a
// node slots assigned. It does not modify its arguments.
package sched
