package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/hangar-ml/hangar/internal/agentproto"
)

// Log shipping bounds.
const (
	logChunk       = 1 << 20 // bytes per POST
	errorTailLines = 30
	errorTailBytes = 8 << 10
)

// errNoProgress is returned when the server stores none of the bytes sent.
var errNoProgress = errors.New("server stored none of the log bytes sent")

// shipLogsPeriodically sends new log bytes every logInterval until ctx
// ends, backing off while the server does not answer.
func (a *Agent) shipLogsPeriodically(ctx context.Context, at *attempt) {
	var b backoff
	wait := a.logInterval
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.clock.After(wait):
		}
		_, err := a.shipLogs(ctx, at)
		switch {
		case err == nil:
			b.reset()
			wait = a.logInterval
		case ctx.Err() != nil:
			return
		case errors.Is(err, errFenced):
			at.fence()
			return
		case permanent(err):
			a.log.Error("server refused log bytes; log shipping stopped", keyAttempt, at.id, keyErr, err)
			at.logBroken = true
			return
		default:
			wait = max(a.logInterval, b.next())
		}
	}
}

// shipLogsFinal sends the log to its end, retrying until the server has it
// all, and returns the log's length.
func (a *Agent) shipLogsFinal(ctx context.Context, at *attempt) (int64, error) {
	fi, err := os.Stat(at.logPath)
	if err != nil {
		return 0, err
	}
	if at.logBroken {
		return fi.Size(), nil
	}
	err = a.retry(ctx, func(ctx context.Context) error {
		size, err := a.shipLogs(ctx, at)
		if err == nil && at.logOffset < size {
			err = errNoProgress
		}
		return err
	})
	return fi.Size(), err
}

// shipLogs sends the log from the server's stored offset up to the file's
// current size, in chunks, and returns that size. The server's "stored"
// answer moves the offset, also backwards if it lost bytes.
func (a *Agent) shipLogs(ctx context.Context, at *attempt) (int64, error) {
	f, err := os.Open(at.logPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	size := fi.Size()
	buf := make([]byte, min(logChunk, max(size-at.logOffset, 0)))
	for at.logOffset < size {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-at.logOffset)], at.logOffset)
		if err != nil && !errors.Is(err, io.EOF) {
			return size, err
		}
		if n == 0 {
			return size, fmt.Errorf("log %s shrank", at.logPath)
		}
		var ack agentproto.LogAck
		q := "offset=" + strconv.FormatInt(at.logOffset, 10)
		err = a.call(ctx, "send log", http.MethodPost, at.path("logs"), q,
			rawBody(buf[:n], "application/octet-stream"), &ack, callTimeout)
		if err != nil {
			return size, err
		}
		old := at.logOffset
		at.logOffset = min(max(ack.Stored, 0), size)
		if at.logOffset <= old {
			// The server took nothing (or went back to bytes it lost,
			// which the next try resends); let the caller back off.
			return size, errNoProgress
		}
	}
	return size, nil
}

// errorTail returns the last lines of the log (at most errorTailBytes).
func errorTail(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-errorTailBytes, 0)
	b := make([]byte, fi.Size()-off)
	n, _ := f.ReadAt(b, off)
	b = bytes.TrimRight(b[:n], "\n")
	if off > 0 {
		// Drop the partial first line.
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	for i, cut := len(b), 0; i > 0; i-- {
		if b[i-1] == '\n' {
			cut++
			if cut == lines {
				b = b[i:]
				break
			}
		}
	}
	return string(bytes.ToValidUTF8(b, []byte("\uFFFD")))
}
