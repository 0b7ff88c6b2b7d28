package serving

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// pipelineDepth is how many calls a worker holds at once: the one it runs
// and one waiting in its request pipe, so it starts the next request
// without sleeping in between. Idle workers are always chosen first, and a
// waiting call never runs twice: if the worker dies or times out before
// starting it, it is dispatched again.
const pipelineDepth = 2

// inlineSendMax is the largest frame that the goroutine freeing a worker's
// capacity writes for a queued call itself. With pipelineDepth 2 two such
// frames fit in a pipe buffer (64 KiB on Linux), so that write never
// blocks; a larger queued call is woken to write its own frame.
const inlineSendMax = (64 << 10) / pipelineDepth

// callQueue is a FIFO of calls waiting for a worker.
type callQueue struct {
	q    []*call
	head int
}

func (q *callQueue) len() int { return len(q.q) - q.head }

func (q *callQueue) push(c *call) {
	if q.head > 0 && q.head == len(q.q) {
		q.q, q.head = q.q[:0], 0
	}
	q.q = append(q.q, c)
}

func (q *callQueue) pop() *call {
	if q.head == len(q.q) {
		return nil
	}
	c := q.q[q.head]
	q.q[q.head] = nil
	q.head++
	return c
}

// remove takes c out of the queue; false if it is not there.
func (q *callQueue) remove(c *call) bool {
	for i := q.head; i < len(q.q); i++ {
		if q.q[i] == c {
			copy(q.q[i:], q.q[i+1:])
			q.q[len(q.q)-1] = nil
			q.q = q.q[:len(q.q)-1]
			return true
		}
	}
	return false
}

// dispatch runs c on a worker of the serving pool and waits for its
// answer: at once on the least loaded worker below pipelineDepth, else
// through the bounded queue. A call that a worker failed before starting
// it (or that a retiring pool gave back) is dispatched again.
func (s *Service) dispatch(ctx context.Context, c *call) (*pool, *httpError) {
	for {
		p := s.cur.Load()
		if p == nil {
			return nil, s.notReady()
		}
		w, queued, herr := p.assign(c)
		if herr != nil {
			return p, herr
		}
		switch {
		case w != nil:
			if !w.send(c) {
				p.unassign(w)
				continue
			}
			<-c.done
		case queued:
			select {
			case <-c.done:
			case <-ctx.Done():
				if p.dequeue(c) {
					return p, &httpError{status: 499, code: "ClientClosedRequest", msg: "the client went away"}
				}
				<-c.done
			}
			if w := c.sendTo; w != nil { // a large queued call writes its own frame
				c.sendTo = nil
				if !w.send(c) {
					p.unassign(w)
					continue
				}
				<-c.done
			}
		default:
			continue // the pool is retiring: try the serving one
		}
		switch c.err {
		case errNotStarted:
			c.err = nil
			if now := s.clock.Now().UnixNano(); now-c.arrival >= int64(s.requestTimeout()) {
				return p, s.queueTimeoutError(c, now)
			}
			continue
		case errQueueTimeout:
			c.err = nil
			return p, s.queueTimeoutError(c, s.clock.Now().UnixNano())
		}
		return p, nil
	}
}

// assign counts c on the least loaded usable worker below pipelineDepth
// (returned: the caller sends), or queues it (queued: it is sent for the
// caller, or handed back with sendTo, and done receives when it ends). Both
// zero mean the pool is retiring.
func (p *pool) assign(c *call) (w *worker, queued bool, herr *httpError) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.retiring {
		return nil, false, nil
	}
	if w := p.pickLocked(); w != nil {
		w.load++
		p.busy++
		return w, false, nil
	}
	if p.up == 0 && p.down == p.n {
		return nil, false, &httpError{status: http.StatusServiceUnavailable, code: "NoWorker", retry: true,
			msg: "no worker is running: their restarts fail (see hangar service show " + p.s.name + ")"}
	}
	if p.pending.len() >= p.maxQueue {
		p.s.m.overloaded.Add(1)
		return nil, false, &httpError{status: http.StatusServiceUnavailable, code: "Overloaded", retry: true,
			msg: fmt.Sprintf("all %d workers are busy and %d requests are waiting; retry later", p.n, p.maxQueue)}
	}
	p.pending.push(c)
	return nil, true, nil
}

// dequeue takes a queued call back; false if a worker took it already.
func (p *pool) dequeue(c *call) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pending.remove(c)
}

// pickLocked is the usable worker with the lowest load below pipelineDepth.
func (p *pool) pickLocked() *worker {
	var best *worker
	for _, w := range p.slots {
		if w != nil && w.usable && w.load < pipelineDepth && (best == nil || w.load < best.load) {
			best = w
			if w.load == 0 {
				break
			}
		}
	}
	return best
}

// answered uncounts a call that w answered and gives w's free capacity to
// queued calls (see feedLocked).
func (p *pool) answered(w *worker) {
	p.mu.Lock()
	if w.usable {
		w.load--
		p.busy--
	}
	p.feedLocked(w)
}

// unassign uncounts a call that could not be sent to w: w is dying (it
// refuses sends only then), so it leaves the rotation at once.
func (p *pool) unassign(w *worker) {
	p.mu.Lock()
	p.disableLocked(w)
	p.mu.Unlock()
}

// disableLocked takes w out of the rotation; its calls are all ending.
func (p *pool) disableLocked(w *worker) {
	if !w.usable {
		return
	}
	w.usable = false
	p.up--
	p.busy -= w.load
	w.load = 0
	if p.retiring && p.busy == 0 {
		p.drained.Broadcast()
	}
}

// feedLocked assigns queued calls to w up to pipelineDepth, unlocks p.mu,
// and sends them. The caller holds p.mu.
func (p *pool) feedLocked(w *worker) {
	var next [pipelineDepth]*call
	n := 0
	if w.usable && !p.retiring {
		for w.load < pipelineDepth && p.pending.len() > 0 {
			next[n] = p.pending.pop()
			n++
			w.load++
			p.busy++
		}
	}
	if p.retiring && p.busy == 0 {
		p.drained.Broadcast()
	}
	p.mu.Unlock()
	for _, c := range next[:n] {
		if c.n+frameHeader > inlineSendMax {
			c.sendTo = w
			c.done <- struct{}{}
			continue
		}
		if !w.send(c) {
			p.unassign(w)
			c.err = errNotStarted
			c.done <- struct{}{}
		}
	}
}

// expireQueued fails the queued calls that arrived timeout or more before
// now (Unix ns).
func (p *pool) expireQueued(now, timeout int64) {
	p.mu.Lock()
	var expired []*call
	for i := p.pending.head; i < len(p.pending.q); i++ {
		if c := p.pending.q[i]; now-c.arrival >= timeout {
			expired = append(expired, c)
		}
	}
	for _, c := range expired {
		p.pending.remove(c)
	}
	p.mu.Unlock()
	for _, c := range expired {
		c.err = errQueueTimeout
		c.done <- struct{}{}
	}
}

// queueTimeoutError answers a call that no worker started within the
// request timeout; no worker was stopped for it.
func (s *Service) queueTimeoutError(c *call, now int64) *httpError {
	waited := time.Duration(now - c.arrival).Round(time.Millisecond)
	return &httpError{status: http.StatusGatewayTimeout, code: "Timeout",
		msg: fmt.Sprintf("the request waited in the queue for %s and no worker started it within the request timeout (%s): every worker was busy with earlier requests; retry later", waited, s.requestTimeout())}
}
