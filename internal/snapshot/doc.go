// Package snapshot packs a run's source directory into a deterministic
// tar.gz and unpacks such archives safely; it also moves file trees such as
// a run's outputs/ between the node agent and the server.
//
// # Snapshots
//
// Write walks a directory, leaving out what ignore files exclude, and writes
// a gzip-compressed tar whose bytes depend only on the tree's paths, file
// contents, executable bits and symlink targets: entries are sorted by path,
// modification times are the Unix epoch, owners are zero and empty, files
// are 0644 or 0755 and directories 0755. Storing the result in a
// content-addressed store (package blob) therefore gives one digest per
// source tree, however often it is uploaded. The bytes can change with the
// Go version's compress/flate, so digests are stable within one build.
//
// Ignore files are .gitignore, .amlignore and .hangarignore, read in the
// snapshot root and in every directory below it, with git's rules
// (gitignore(5)): patterns in a subdirectory's file are relative to that
// subdirectory, the last matching pattern wins, "!" re-includes, and nothing
// inside an excluded directory can be re-included. All three files apply
// together; in one directory .amlignore overrides .gitignore and
// .hangarignore overrides both. Directories and files named .git are always
// left out. Sockets, FIFOs and devices are skipped.
//
// Symlinks are stored as symlinks when they resolve inside the directory
// (an absolute target inside it is rewritten as a relative one); a symlink
// that leads outside makes Write fail with an error naming it.
//
// Before writing anything Write counts files and bytes against Limits and
// returns a *LimitError that says what to exclude.
//
// # Extraction
//
// Extract and MergeTree unpack archives made by Write and WriteTree, and
// refuse anything that could touch a file outside the target directory:
// absolute names, ".." elements, symlinks whose target leads outside, hard
// links, devices and FIFOs. All file operations go through an os.Root, so
// even an archive that chains symlinks cleverly cannot write outside, and
// symlinks are checked again once the whole archive is unpacked. Archives
// larger than MaxExtractBytes or with more than MaxExtractEntries entries
// are refused.
//
// # Output trees
//
// WriteTree packs the regular files under a directory modified since a
// time, for the node agent's periodic upload of outputs/; MergeTree unpacks
// such an archive over the server's copy, replacing files atomically and
// keeping the others.
//
// # Single files and folders
//
// WritePath packs one file or folder under its own name (a registered
// model's files: "model.pkl", or "model/…"), deterministically and without
// ignore files; ListArchive checks an archive uploaded by a client before
// the server relies on it.
package snapshot
