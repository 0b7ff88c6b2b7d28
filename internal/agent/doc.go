// Package agent is the `hangar agent` runtime: the process on every node
// that dials the server, receives attempts, runs them and reports back
// (protocol in package agentproto).
//
// # Loops
//
// Run heartbeats (POST /heartbeat) at the interval the server asks for and
// long-polls GET /work. Both answers may cancel attempts or ask the agent to
// shut down. A new assignment (keyed by attempt id) is run once: the agent
// creates the attempt's log file with O_EXCL before anything else, and that
// file in Dir/attempts is the record that the attempt was received, so a
// restarted agent does not run it again.
//
// # One attempt
//
//  1. Wait for a free slot (Config.Slots).
//  2. POST start; only a 200 lets the attempt go on.
//  3. Fetch the snapshot and inputs (cached by digest in Dir/blobs), extract
//     the snapshot into Dir/attempts/<attempt>/ (the working directory),
//     place inputs read-only under inputs/NAME, create outputs/ and logs/.
//  4. Start the process in its own process group, with stdout and stderr
//     appended to Dir/attempts/<attempt>.log and an environment built from
//     an allow-list (see Config). The process gets SIGKILL if the agent dies.
//  5. While it runs: ship new log bytes every 500 ms, upload outputs/ and
//     logs/ files changed since the last upload every
//     OutputsIntervalSeconds, and stop it (SIGTERM, Config.KillGrace,
//     SIGKILL) on cancel, on MaxDurationSeconds, or on shutdown.
//  6. After it ends: ship the rest of the log, upload outputs/ and logs/ in
//     full, POST finish.
//
// # Failures
//
// Every report is retried with backoff (capped at 2 s) until the server
// answers, so a server that is down, or killed and restarted, receives
// everything. A 409 from any call about an attempt means the attempt is
// fenced: the agent kills its process group and forgets it without
// finishing. Any other 4xx drops that one report (it would fail the same
// way again). On shutdown (the server's Shutdown, or ctx canceled by
// SIGTERM to the agent) every process gets SIGTERM, the grace period and
// SIGKILL, and the agent tries for 2 s to report the attempts finished with
// reason "preempted" before Run returns.
package agent
