package httpapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// logChunk bounds how much of a log is held in memory while sending it.
const logChunk = 1 << 20

// logPoll is how often a followed log is read again for new bytes.
const logPoll = 250 * time.Millisecond

// logSource is a log sendLog can send: a run's log in the store or a
// service's log file.
type logSource struct {
	// read returns at most limit bytes of the log from offset, and the
	// offset they start at: a log that shrank (was rewritten) is read again
	// from 0, so at may be below offset. A log that does not exist yet
	// reads as empty.
	read func(ctx context.Context, offset, limit int64) (data []byte, at int64, err error)
	// ended reports whether the log will grow no more (the run ended, the
	// service is gone). It is asked only when following, before each pass
	// over the log, so every byte written before the end is still sent; an
	// error counts as ended.
	ended func(ctx context.Context) (bool, error)
	// attrs name the log in the server's own log when sending fails.
	attrs []any
}

// sendLog writes src from ?offset= in chunks of at most logChunk bytes, so
// a long log never sits whole in memory. With ?follow=true it keeps the
// response open, reading again every logPoll, until src has ended or the
// client goes away. A read error before the first byte is returned, so the
// client gets an error document; after it the status is sent and the
// response just ends.
func (a *API) sendLog(w http.ResponseWriter, r *http.Request, src logSource) error {
	offset, err := queryInt(r, "offset", 0)
	if err != nil {
		return err
	}
	follow := queryBool(r, "follow")
	ctx := r.Context()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	flusher, _ := w.(http.Flusher)
	wroteHeader := false
	for {
		ended := false
		if follow {
			var err error
			ended, err = src.ended(ctx)
			ended = ended || err != nil
		}
		for {
			data, at, err := src.read(ctx, offset, logChunk)
			if err != nil {
				if !wroteHeader {
					return err
				}
				if ctx.Err() == nil {
					a.log.ErrorContext(ctx, "send log", append(src.attrs, "err", err)...)
				}
				return nil
			}
			if !wroteHeader {
				w.WriteHeader(http.StatusOK)
				wroteHeader = true
			}
			if _, err := w.Write(data); err != nil {
				return nil
			}
			offset = at + int64(len(data))
			if flusher != nil {
				flusher.Flush()
			}
			if len(data) < logChunk {
				break // all there is for now
			}
		}
		if !follow || ended {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-a.cfg.Clock.After(logPoll):
		}
	}
}

// readLogFile reads at most limit bytes of the file at p from offset. A
// missing file (or p "") reads as empty; a file shorter than offset was
// rewritten and is read from 0.
func readLogFile(p string, offset, limit int64) ([]byte, int64, error) {
	if p == "" {
		return nil, offset, nil
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, offset, nil
	}
	if err != nil {
		return nil, offset, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, offset, err
	}
	if fi.Size() < offset {
		offset = 0
	}
	data, err := io.ReadAll(io.NewSectionReader(f, offset, min(fi.Size()-offset, limit)))
	return data, offset, err
}
