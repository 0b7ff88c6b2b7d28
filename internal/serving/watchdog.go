package serving

import (
	"time"
)

// watchdog enforces the request timeout until Stop. It ticks on the
// service clock every tenth of the current RequestTimeout (between 1 ms
// and 1 s), and at once after SetRequestTimeout.
func (s *Service) watchdog() {
	for {
		tick := min(max(s.requestTimeout()/10, time.Millisecond), time.Second)
		select {
		case <-s.stop:
			return
		case <-s.timeoutSet:
		case <-s.clock.After(tick):
		}
		s.expire(s.clock.Now().UnixNano())
	}
}

// expire applies the request timeout at now (Unix ns): it kills every
// worker whose running request started timeout or more ago (that
// request's handler sees the worker die and answers 504), and answers 504,
// without killing anything, to requests that arrived timeout or more ago
// and that no worker has started: queued, or waiting in a worker's pipe.
func (s *Service) expire(now int64) {
	timeout := int64(s.requestTimeout())
	s.mu.Lock()
	pools := make([]*pool, 0, len(s.pools))
	for p := range s.pools {
		pools = append(pools, p)
	}
	s.mu.Unlock()
	for _, p := range pools {
		p.mu.Lock()
		slots := append([]*worker(nil), p.slots...)
		p.mu.Unlock()
		for _, w := range slots {
			if w != nil {
				w.expire(now, timeout)
			}
		}
		p.expireQueued(now, timeout)
	}
}
