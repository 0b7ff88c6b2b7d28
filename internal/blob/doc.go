// Package blob is a content-addressed store of immutable byte blobs on local
// disk, named by the SHA-256 of their content ("sha256:<64 hex>").
//
// A blob lives at <dir>/sha256/<first 2 hex>/<remaining 62 hex>. Put streams
// into <dir>/tmp, hashes as it writes, fsyncs and renames the file into
// place, so a blob is either absent or complete, and concurrent Puts of the
// same content (from goroutines or processes) are safe: the last rename
// replaces an identical file. Temporary files left by a crash stay in
// <dir>/tmp; anything there older than the longest Put may be removed.
package blob
