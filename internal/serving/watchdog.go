package serving

import (
	"time"
)

// watchdog kills workers whose request is past its deadline, until Stop.
// It ticks on the service clock every tenth of RequestTimeout (between
// 1 ms and 1 s).
func (s *Service) watchdog() {
	tick := min(max(s.timeout/10, time.Millisecond), time.Second)
	for {
		select {
		case <-s.stop:
			return
		case <-s.clock.After(tick):
		}
		s.expire(s.clock.Now().UnixNano())
	}
}

// expire kills every worker running a request whose deadline is before
// now (the request's handler sees the worker die and answers 504) and
// fails queued requests past their deadline.
func (s *Service) expire(now int64) {
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
				w.expire(now)
			}
		}
		p.expireQueued(now)
	}
}
