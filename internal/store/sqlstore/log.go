package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/hangar-ml/hangar/internal/store"
)

// An attempt's log is a sequence of chunks (attempt_id, pos, data) with no
// gaps or overlaps; attempts.log_size is their total length. Appends move
// log_size by compare-and-set, so concurrent retries of the same append
// store its bytes once.

// LogAppend stores data at byte offset of the attempt's log and returns the
// log's length afterwards. Bytes already stored are not rewritten: an
// append wholly inside the stored log is a no-op, and one that overlaps its
// end stores only the new tail, so an agent may retry an append safely. An
// offset past the end (a gap) is refused with an error wrapping
// store.ErrConflict, returning the stored length so the caller can resend
// from there. An unknown attempt is store.ErrNotFound.
func (s *Store) LogAppend(ctx context.Context, attemptID string, offset int64, data []byte) (int64, error) {
	if offset < 0 {
		return 0, fmt.Errorf("append to log of attempt %s: negative offset %d", attemptID, offset)
	}
	var stored int64
	err := s.inTx(ctx, func(tx *Store) error {
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			var size int64
			err := tx.r.QueryRowContext(ctx, `SELECT log_size FROM attempts WHERE id = ?`, attemptID).Scan(&size)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("log of attempt %s: %w", attemptID, store.ErrNotFound)
			}
			if err != nil {
				return err
			}
			stored = size
			if offset > size {
				return fmt.Errorf("log of attempt %s has %d bytes; append at %d would leave a gap: %w",
					attemptID, size, offset, store.ErrConflict)
			}
			end := offset + int64(len(data))
			if end <= size {
				return nil // already stored
			}
			n, err := affected(tx.w.ExecContext(ctx, `UPDATE attempts SET log_size = ? WHERE id = ? AND log_size = ?`, end, attemptID, size))
			if err != nil {
				return err
			}
			if n == 0 {
				continue // a concurrent append moved the end; look again
			}
			if _, err := tx.w.ExecContext(ctx, `INSERT INTO log_chunks (attempt_id, pos, data) VALUES (?, ?, ?)`,
				attemptID, size, data[size-offset:]); err != nil {
				return err
			}
			stored = end
			return nil
		}
	})
	if err != nil && !errors.Is(err, store.ErrConflict) && !errors.Is(err, store.ErrNotFound) {
		err = fmt.Errorf("append to log of attempt %s: %w", attemptID, err)
	}
	return stored, err
}

// LogRead returns the run's log from byte offset: the logs of all its
// attempts, in attempt-number order, as one stream. An offset at or past the
// end, or a run without log, gives no bytes.
func (s *Store) LogRead(ctx context.Context, runID string, offset int64) ([]byte, error) {
	return s.LogReadRange(ctx, runID, offset, 0)
}

// LogReadRange is LogRead returning at most limit bytes (limit <= 0: all),
// so a reader can stream a large log in bounded memory.
func (s *Store) LogReadRange(ctx context.Context, runID string, offset, limit int64) ([]byte, error) {
	type part struct {
		id   string
		size int64
	}
	parts, err := queryList(ctx, s.r, func(r rowScanner) (part, error) {
		var p part
		err := r.Scan(&p.id, &p.size)
		return p, err
	}, `SELECT id, log_size FROM attempts WHERE run_id = ? AND log_size > 0 ORDER BY number`, runID)
	if err != nil {
		return nil, fmt.Errorf("read log of run %s: %w", runID, err)
	}
	offset = max(offset, 0)
	var out []byte
	base := int64(0) // where the current attempt starts in the run's log
	for _, p := range parts {
		if base+p.size <= offset {
			base += p.size
			continue
		}
		from := max(offset-base, 0) // offset within this attempt's log
		to := p.size
		if limit > 0 {
			to = min(to, from+limit-int64(len(out)))
		}
		if err := s.readChunks(ctx, p.id, from, to, &out); err != nil {
			return nil, fmt.Errorf("read log of run %s: %w", runID, err)
		}
		base += p.size
		if limit > 0 && int64(len(out)) >= limit {
			break
		}
	}
	return out, nil
}

// readChunks appends bytes [from, size) of an attempt's log to out. size is
// the log_size read before, so bytes appended since are left for the next
// read.
func (s *Store) readChunks(ctx context.Context, attemptID string, from, size int64, out *[]byte) error {
	rows, err := s.r.QueryContext(ctx, `SELECT pos, data FROM log_chunks
WHERE attempt_id = ? AND pos < ?
AND pos >= (SELECT COALESCE(MAX(pos), 0) FROM log_chunks WHERE attempt_id = ? AND pos <= ?)
ORDER BY pos`, attemptID, size, attemptID, from)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			pos  int64
			data []byte
		)
		if err := rows.Scan(&pos, &data); err != nil {
			return err
		}
		if end := pos + int64(len(data)); end > size {
			data = data[:size-pos]
		}
		if pos < from {
			data = data[from-pos:]
		}
		*out = append(*out, data...)
	}
	return rows.Err()
}
