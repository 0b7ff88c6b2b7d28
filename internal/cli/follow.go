package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hangar-ml/hangar/api"
	"github.com/hangar-ml/hangar/client"
)

// followRetry is the retry policy of the loops that follow something on the
// server (run logs -f, run submit --stream, service logs -f). A server
// that was never reached is an error at once, as for every command; one
// that answered before is retried, since a dropped connection or a
// restarting server is no reason to stop following, but only until it has
// failed for limit without a break. Errors that retrying cannot fix (a
// 4xx: no such run, a refused token) stop at once. It does no I/O; the
// loop passes the time.
type followRetry struct {
	limit   time.Duration
	reached bool      // the server has answered
	since   time.Time // when the current run of failures began; zero when none
}

// ok records an answer from the server and reports whether it ends a run
// of failures.
func (p *followRetry) ok() (recovered bool) {
	recovered = !p.since.IsZero()
	p.reached, p.since = true, time.Time{}
	return recovered
}

// failed records err at now and decides. A nil stop means retry; first is
// set on the first failure of a run, so that the loop says so once.
// Otherwise the loop returns stop: err itself, or a *lostError when the
// server has failed for the whole limit.
func (p *followRetry) failed(err error, now time.Time) (first bool, stop error) {
	var unreachable *client.UnreachableError
	switch {
	case !retryable(err):
		return false, err
	case !p.reached && errors.As(err, &unreachable):
		return false, err
	}
	if p.since.IsZero() {
		p.since = now
		first = true
	}
	if d := now.Sub(p.since); d >= p.limit {
		return first, &lostError{For: d, Err: err}
	}
	return first, nil
}

// lostError means a followed server stopped answering for good.
type lostError struct {
	For time.Duration // how long it failed without a break
	Err error         // the last failure
}

func (e *lostError) Error() string {
	cause := e.Err
	var unreachable *client.UnreachableError
	if errors.As(cause, &unreachable) {
		return fmt.Sprintf("gave up after %s without an answer from the Hangar server at %s (%v)", shortDuration(e.For), unreachable.URL, unreachable.Err)
	}
	return fmt.Sprintf("gave up after %s without a good answer from the Hangar server (%v)", shortDuration(e.For), cause)
}

func (e *lostError) Unwrap() error { return e.Err }

// followFailed applies p to err, saying on stderr when a run of failures
// begins, and returns the error to stop with (nil: retry).
func (a *app) followFailed(p *followRetry, err error) error {
	first, stop := p.failed(err, a.now())
	if stop == nil && first {
		a.progress("Lost the connection to the server (%v); retrying for up to %s…\n", failureCause(err), shortDuration(p.limit))
	}
	return stop
}

// followOK records an answer, saying so when it ends a run of failures.
func (a *app) followOK(p *followRetry) {
	if p.ok() {
		a.progress("Reconnected; following again\n")
	}
}

// failureCause is err without the words the warning already says.
func failureCause(err error) error {
	var unreachable *client.UnreachableError
	if errors.As(err, &unreachable) && unreachable.Err != nil {
		return unreachable.Err
	}
	return err
}

// retryable reports whether a failed call may succeed if tried again: the
// network failed, or the server had a fault of its own.
func retryable(err error) bool {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Status >= 500
	}
	return !errors.Is(err, context.Canceled)
}

// stopFollowing turns the error a follow loop stops with into what the
// user sees: Ctrl-C and a lost server both say that what was followed goes
// on on the server (what, e.g. "run run-x") and how to follow it again.
func stopFollowing(ctx context.Context, err error, what, resume string) error {
	if ctx.Err() != nil {
		return &interruptedError{What: what + " goes on on the server", Hint: resume}
	}
	var lost *lostError
	if errors.As(err, &lost) {
		return &hintError{Err: fmt.Errorf("%w; %s goes on on the server", lost, what), Hint: resume}
	}
	return err
}
